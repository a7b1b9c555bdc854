"""Import a DeepMimic character file (+ its PD controller file) as a charctl character: URDF + YAML.

DeepMimic's format (JSON): Skeleton.Joints (ID, Name, Type, Parent, Attach offsets, limits, TorqueLim,
IsEndEffector, DiffWeight) and BodyDefs (shape, mass, attach offset per joint's body). Shapes: sphere
Param0 = diameter; capsule Param0 = diameter, Param1 = cylinder length along local y; box = full extents.

Optional `splits` insert extra joints by splitting segments (the 82-DoF dog is dog3d plus six ball joints):
every split keeps the rest-pose positions of all existing joints and the total mass, so clips recorded on the
source skeleton play unchanged with the new joints at identity.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from charctl.util.errors import CharctlError
from charctl.util.typed_config import build, checked_fields


@dataclass
class Shape:
    kind: str  # sphere | capsule | box
    size: list[float]  # sphere [diameter]; capsule [diameter, length]; box [x, y, z]
    center: list[float]  # in the joint frame
    euler_xyz: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # DeepMimic AttachTheta
    color: list[float] = field(default_factory=lambda: [0.47, 0.55, 0.69, 1.0])


@dataclass
class JointDef:
    name: str
    kind: str  # root | spherical | revolute | fixed
    parent: str | None
    offset: np.ndarray
    limits: list[list[float]]
    torque_limit: float
    reward_weight: float
    end_effector: bool
    kp: float
    kd: float
    mass: float
    shape: Shape


@dataclass
class SplitSettings:
    """One entry of a recipe's `splits:` list: a new ball joint inserted by splitting a segment."""

    name: str
    parent: str  # the joint whose segment is split
    at: list[float]  # where the new joint sits, in the parent's frame (metres)
    children: list[str]  # the parent's children re-attached to the new joint (keeping their rest positions)
    mass_from: str  # the body giving up `mass`
    mass: float  # kg
    shape: dict  # the new body's Shape (kind, size, center, euler_xyz)
    gains_from: str | None = None  # the joint whose gains, torque limit and reward weight it takes (default: parent)
    donor_shape: dict | None = None  # a new Shape for the `mass_from` body


@dataclass
class RecipeSettings:
    """A character recipe (configs/characters/<name>.yaml): `charctl import-character` builds characters/ from it."""

    name: str
    source: str  # DeepMimic character file, relative to the recipe
    controller: str  # its PD controller file
    ground_contact_bodies: list[str]
    notes: str = ""  # written as the character YAML's header
    splits: list[dict] = field(default_factory=list)


def read_recipe(path: Path) -> tuple[RecipeSettings, list[SplitSettings]]:
    """A recipe file, every key and value checked (one-line errors naming the file and the key)."""
    from charctl.util.fileio import read_yaml_mapping

    recipe = build(RecipeSettings, read_yaml_mapping(path, "recipe settings"), path)
    splits = [build(SplitSettings, split, f"{path}: splits[{i}]") for i, split in enumerate(recipe.splits)]
    return recipe, splits


def _shape(values: dict, color: list[float], where: str) -> Shape:
    return Shape(color=color, **checked_fields(Shape, values, where))


def read_deepmimic_character(char_path: Path, ctrl_path: Path) -> list[JointDef]:
    char = _read_json(char_path)
    ctrl = _read_json(ctrl_path)
    try:
        joints = char["Skeleton"]["Joints"]
        bodies = {b["ID"]: b for b in char["BodyDefs"]}
        gains = {c["ID"]: c for c in ctrl["PDControllers"]}
    except (KeyError, TypeError) as err:
        raise CharctlError(f"{char_path}: missing DeepMimic key {err}") from None
    names = {j["ID"]: j["Name"] for j in joints}
    out = []
    for j in joints:
        jid, name = j["ID"], j["Name"]
        if jid not in bodies or jid not in gains:
            raise CharctlError(f"{char_path}: joint '{name}' has no body or no PD controller entry")
        kind = {"none": "root", "spherical": "spherical", "revolute": "revolute", "fixed": "fixed"}.get(j["Type"])
        if kind is None:
            raise CharctlError(f"{char_path}: joint '{name}': unsupported type '{j['Type']}'")
        b = bodies[jid]
        shape = Shape(
            kind=b["Shape"],
            size={"sphere": [b["Param0"]], "capsule": [b["Param0"], b["Param1"]],
                  "box": [b["Param0"], b["Param1"], b["Param2"]]}[b["Shape"]],
            center=[b["AttachX"], b["AttachY"], b["AttachZ"]],
            euler_xyz=[b["AttachThetaX"], b["AttachThetaY"], b["AttachThetaZ"]],
            color=[b["ColorR"], b["ColorG"], b["ColorB"], b["ColorA"]],
        )
        n_axes = {"spherical": 3, "revolute": 1}.get(kind, 0)
        limits = []
        for axis in range(n_axes):
            low, high = float(j[f"LimLow{axis}"]), float(j[f"LimHigh{axis}"])
            if low > high:  # DeepMimic writes an unlimited axis as low > high
                low, high = -math.pi, math.pi
            limits.append([low, high])
        out.append(JointDef(
            name=name, kind=kind, parent=names.get(j["Parent"]),
            offset=np.zeros(3) if kind == "root" else np.array([j["AttachX"], j["AttachY"], j["AttachZ"]], float),
            limits=limits, torque_limit=float(j.get("TorqueLim", 0) or 0), reward_weight=float(j["DiffWeight"]),
            end_effector=bool(j.get("IsEndEffector", 0)), kp=float(gains[jid]["Kp"]), kd=float(gains[jid]["Kd"]),
            mass=float(b["Mass"]), shape=shape,
        ))
    return out


def apply_splits(joints: list[JointDef], splits: list[SplitSettings], source: Path) -> list[JointDef]:
    """Insert new joints between existing ones; each child keeps its rest position, total mass is unchanged."""
    joints = list(joints)
    for split in splits:
        by_name = {j.name: j for j in joints}
        name, parent = split.name, split.parent
        if parent not in by_name:
            raise CharctlError(f"{source}: split '{name}': unknown parent joint '{parent}'")
        at = np.asarray(split.at, float)
        like = by_name[split.gains_from or parent]
        donor = by_name[split.mass_from]
        mass = split.mass
        if not 0 < mass < donor.mass:
            raise CharctlError(f"{source}: split '{name}': mass {mass} must be below {donor.name}'s {donor.mass}")
        donor.mass -= mass
        if split.donor_shape is not None:
            donor.shape = _shape(split.donor_shape, donor.shape.color, f"{source}: split '{name}': donor_shape")
        new = JointDef(
            name=name, kind="spherical", parent=parent, offset=at, limits=[list(pair) for pair in like.limits]
            if like.kind == "spherical" else [[-math.pi, math.pi]] * 3, torque_limit=like.torque_limit,
            reward_weight=like.reward_weight, end_effector=False, kp=like.kp, kd=like.kd, mass=mass,
            shape=_shape(split.shape, like.shape.color, f"{source}: split '{name}': shape"),
        )
        for child_name in split.children:
            child = by_name.get(child_name)
            if child is None or child.parent != parent:
                raise CharctlError(f"{source}: split '{name}': '{child_name}' is not a child of '{parent}'")
            child.parent = name
            child.offset = child.offset - at
        # Insert right after the parent's subtree head so the URDF lists parents before children.
        joints.insert(joints.index(by_name[parent]) + 1, new)
    return _topological(joints)


def _topological(joints: list[JointDef]) -> list[JointDef]:
    """Depth-first order, children in list order: the order PyBullet gives a URDF's links."""
    ordered = []

    def visit(parent: str | None) -> None:
        for j in joints:
            if j.parent == parent:
                ordered.append(j)
                visit(j.name)

    visit(None)
    return ordered


def _shape_origin(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    rot = Rotation.from_euler("xyz", shape.euler_xyz)
    if shape.kind == "capsule":  # DeepMimic capsules lie along local y, URDF capsules along z
        rot = rot * Rotation.from_euler("x", math.pi / 2)
    return np.asarray(shape.center, float), rot


def _inertia(shape: Shape, mass: float) -> np.ndarray:
    """Principal moments of a solid shape in its own frame (capsule along z)."""
    if shape.kind == "sphere":
        r = shape.size[0] / 2
        return np.full(3, 0.4 * mass * r * r)
    if shape.kind == "box":
        x, y, z = shape.size
        return mass / 12 * np.array([y * y + z * z, x * x + z * z, x * x + y * y])
    r, h = shape.size[0] / 2, shape.size[1]  # capsule approximated by a cylinder of the full length
    full = h + 2 * r
    return np.array([mass * (3 * r * r + full * full) / 12] * 2 + [0.5 * mass * r * r])


def _geometry(shape: Shape) -> str:
    if shape.kind == "sphere":
        return f'<sphere radius="{shape.size[0] / 2:.9g}"/>'
    if shape.kind == "capsule":
        return f'<capsule radius="{shape.size[0] / 2:.9g}" length="{shape.size[1]:.9g}"/>'
    return f'<box size="{_fmt(shape.size)}"/>'


def _fmt(values) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def collision_shape(shape: Shape) -> Shape:
    """The shape PyBullet collides and weighs: the shape itself, except a capsule that does not lie along its
    link's y axis, which becomes its bounding box, axis-aligned in the link frame.

    Why (measured, tests/test_sim.py): PyBullet's stable PD diverged on the dog's capsules lying along x (neck
    and tail) within one control step, the tail spinning at the 100 rad/s velocity cap, whatever the inertia
    tensor in the URDF said; the same links as boxes track their targets. Our reading: the PD's own model of the
    body (DeepMimic's) takes every capsule to lie along its link's y axis, as DeepMimic's capsules do."""
    if shape.kind != "capsule":
        return shape
    axis = Rotation.from_euler("xyz", shape.euler_xyz).apply([0.0, 1.0, 0.0])
    along = int(np.argmax(np.abs(axis)))
    if along == 1 or not np.isclose(abs(axis[along]), 1.0, atol=1e-6):
        return shape  # along y already, or oblique (kept: no shipped character has one)
    diameter, length = shape.size
    extents = [diameter] * 3
    extents[along] = length + diameter
    return Shape(kind="box", size=extents, center=list(shape.center), color=shape.color)


def write_urdf(name: str, joints: list[JointDef]) -> str:
    lines = ['<?xml version="1.0"?>',
             f'<!-- {name}: generated by charctl import-character; y-up joint frames, facing +x -->',
             f'<robot name="{name}">']
    for j in joints:
        center, rot = _shape_origin(j.shape)
        visual_origin = f'<origin xyz="{_fmt(center)}" rpy="{_fmt(rot.as_euler("xyz"))}"/>'
        solid = collision_shape(j.shape)
        center, rot = _shape_origin(solid)
        moments = _inertia(solid, j.mass)
        inertia = rot.as_matrix() @ np.diag(moments) @ rot.as_matrix().T
        inertia[np.abs(inertia) < 1e-12] = 0.0  # rounding noise of exact right-angle rotations
        origin = f'<origin xyz="{_fmt(center)}" rpy="{_fmt(rot.as_euler("xyz"))}"/>'
        lines += [
            f'  <link name="{j.name}">',
            f'    <inertial><origin xyz="{_fmt(center)}"/><mass value="{j.mass:.9g}"/>'
            f'<inertia ixx="{inertia[0, 0]:.9g}" ixy="{inertia[0, 1]:.9g}" ixz="{inertia[0, 2]:.9g}" '
            f'iyy="{inertia[1, 1]:.9g}" iyz="{inertia[1, 2]:.9g}" izz="{inertia[2, 2]:.9g}"/></inertial>',
            f'    <visual>{visual_origin}<geometry>{_geometry(j.shape)}</geometry>'
            f'<material name="{j.name}_color"><color rgba="{_fmt(j.shape.color)}"/></material></visual>',
            f'    <collision>{origin}<geometry>{_geometry(solid)}</geometry></collision>',
            "  </link>",
        ]
        if j.kind == "root":
            continue
        axis = '<axis xyz="0 0 1"/>'  # DeepMimic hinges turn about local z; ball joints ignore it
        limit = (f'<limit lower="{j.limits[0][0]:.9g}" upper="{j.limits[0][1]:.9g}" effort="{j.torque_limit:.9g}" '
                 f'velocity="100"/>' if j.kind == "revolute" else "")
        lines.append(f'  <joint name="{j.name}" type="{j.kind}"><parent link="{j.parent}"/><child link="{j.name}"/>'
                     f'<origin xyz="{_fmt(j.offset)}" rpy="0 0 0"/>{axis}{limit}</joint>')
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def character_yaml(name: str, joints: list[JointDef], deepmimic_order: list[str], ground_contact: list[str],
                   notes: str) -> str:
    spec = {
        "urdf": f"{name}.urdf",
        "end_effectors": [j.name for j in joints if j.end_effector],
        "ground_contact_bodies": ground_contact,
        "deepmimic_joints": deepmimic_order,
        "joints": {
            j.name: ({"reward_weight": j.reward_weight} if j.kind in ("root", "fixed") else {
                "kp": j.kp, "kd": j.kd, "torque_limit": j.torque_limit, "reward_weight": j.reward_weight,
                "limits": j.limits})
            for j in joints
        },
    }
    header = "".join(f"# {line}\n" for line in notes.strip().splitlines())
    return header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=110)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CharctlError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise CharctlError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
