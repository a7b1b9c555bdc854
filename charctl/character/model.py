"""A character is data: a URDF (bodies, joint tree, shapes, masses) plus a YAML (what control and reward need).

Joint i drives body i; joint 0 is the floating root (the URDF's base link). Joint frames are y-up with the
character facing +x (DeepMimic's convention); the world is z-up, so a standing character's root rotation
carries a +90 degree turn about x (see charctl.util.rotations.Y_UP_TO_Z_UP).

Adding a character: drop `<name>.urdf` and `<name>.yaml` into characters/. No code change.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from charctl.util.errors import CharctlError
from charctl.util.paths import CHARACTERS_DIR
from charctl.util.typed_config import build

JOINT_DOF = {"root": 6, "spherical": 3, "revolute": 1, "fixed": 0}
ACTION_SIZE = {"root": 0, "spherical": 3, "revolute": 1, "fixed": 0}  # exp map per ball joint, angle per hinge


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality and hashing
class Joint:
    name: str
    kind: str  # "root" | "spherical" | "revolute" | "fixed"
    parent: int  # index into Character.joints, -1 for the root
    offset: np.ndarray  # (3,) joint position in the parent joint's frame, metres
    origin_rot: np.ndarray  # (4,) xyzw fixed rotation of the joint frame relative to the parent frame
    axis: np.ndarray  # (3,) hinge axis in the joint frame (revolute only)
    kp: float = 0.0
    kd: float = 0.0
    torque_limit: float = 0.0
    limits: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (3, 2) ball, (1, 2) hinge, radians
    reward_weight: float = 0.0  # pose/velocity reward weight (DeepMimic's DiffWeight), before normalisation

    @property
    def dof(self) -> int:
        return JOINT_DOF[self.kind]

    @property
    def action_size(self) -> int:
        return ACTION_SIZE[self.kind]


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality and hashing
class CollisionShape:
    kind: str  # "sphere" | "capsule" | "cylinder" | "box"
    center: np.ndarray  # (3,) in the body (joint) frame
    rot: np.ndarray  # (3, 3) shape frame in the body frame
    size: np.ndarray  # sphere (r,), capsule/cylinder (r, length along local z), box (full extents x, y, z)


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality and hashing
class Body:
    name: str
    mass: float
    com: np.ndarray  # (3,) centre of mass in the joint frame
    shapes: tuple[CollisionShape, ...] = ()  # what PyBullet collides (meshes left out)


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality and hashing
class Character:
    name: str
    urdf_path: Path
    joints: tuple[Joint, ...]
    bodies: tuple[Body, ...]
    end_effectors: tuple[int, ...]  # body indices
    ground_contact_bodies: tuple[int, ...]  # bodies allowed to touch the ground without ending an episode
    deepmimic_joints: tuple[str, ...]  # joint order of this character's rows in DeepMimic's motion format
    fps: float = 60.0  # frame rate of clips retargeted onto it

    # ---- derived arrays, cached (vectorised kinematics and the simulator use them every step)
    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def num_dof(self) -> int:
        return sum(j.dof for j in self.joints)

    @property
    def action_size(self) -> int:
        return sum(j.action_size for j in self.joints)

    @functools.cached_property
    def parents(self) -> np.ndarray:
        return np.array([j.parent for j in self.joints], dtype=np.int64)

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        return np.stack([j.offset for j in self.joints])

    @functools.cached_property
    def masses(self) -> np.ndarray:
        return np.array([b.mass for b in self.bodies])

    @property
    def total_mass(self) -> float:
        return float(self.masses.sum())

    def joint_index(self, name: str) -> int:
        for i, joint in enumerate(self.joints):
            if joint.name == name:
                return i
        raise CharctlError(f"{self.urdf_path.with_suffix('.yaml')}: no joint named '{name}' in character '{self.name}'")

    def indices_of(self, kind: str) -> np.ndarray:
        return np.array([i for i, j in enumerate(self.joints) if j.kind == kind], dtype=np.int64)


@dataclass
class JointSettings:
    """A joint's entry under `joints:` in a character YAML."""

    kp: float = 0.0
    kd: float = 0.0
    torque_limit: float = 0.0
    limits: list[list[float]] = field(default_factory=list)  # [low, high] per axis: 3 for a ball joint, 1 for a hinge
    reward_weight: float = 0.0


@dataclass
class CharacterSettings:
    """A character YAML (characters/<name>.yaml)."""

    urdf: str  # the URDF beside it
    end_effectors: list[str]  # body names
    ground_contact_bodies: list[str]  # body names
    joints: dict = field(default_factory=dict)  # joint name -> JointSettings
    deepmimic_joints: list[str] = field(default_factory=list)
    fps: float = 60.0  # frame rate of clips retargeted onto it


def available_characters(directory: Path = CHARACTERS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml") if p.with_suffix(".urdf").exists())


@functools.lru_cache(maxsize=None)
def load_character(name_or_path: str, directory: Path = CHARACTERS_DIR) -> Character:
    """Load `characters/<name>.yaml` and the URDF it names (or a path to any such YAML)."""
    yaml_path = Path(name_or_path)
    if yaml_path.suffix not in (".yaml", ".yml"):
        yaml_path = directory / f"{name_or_path}.yaml"
    if not yaml_path.exists():
        known = ", ".join(available_characters(directory)) or "none"
        raise CharctlError(f"unknown character '{name_or_path}' ({yaml_path} not found); characters: {known}")
    try:
        spec = yaml.safe_load(yaml_path.read_text())
    except yaml.YAMLError as err:
        raise CharctlError(f"{yaml_path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise CharctlError(f"{yaml_path}: expected a mapping at the top level")
    return _build_character(yaml_path, spec)


def _build_character(yaml_path: Path, spec: dict) -> Character:
    settings = build(CharacterSettings, spec, yaml_path)
    urdf_path = (yaml_path.parent / settings.urdf).resolve()
    tree, bodies = _parse_urdf(urdf_path)
    names = [t["name"] for t in tree]

    for name in settings.joints:
        if name not in names:
            raise CharctlError(f"{yaml_path}: joint '{name}' is not in {urdf_path.name}; joints: {', '.join(names)}")
    joints = []
    for t in tree:
        js = build(JointSettings, settings.joints.get(t["name"]) or {}, f"{yaml_path}: joint '{t['name']}'")
        if any(len(pair) != 2 for pair in js.limits):
            raise CharctlError(f"{yaml_path}: joint '{t['name']}': limits: expected [low, high] pairs")
        limits = np.asarray(js.limits, dtype=np.float64).reshape(-1, 2)
        if t["kind"] in ("spherical", "revolute") and len(limits) != JOINT_DOF[t["kind"]]:
            raise CharctlError(
                f"{yaml_path}: joint '{t['name']}' ({t['kind']}) needs {JOINT_DOF[t['kind']]} [low, high] limit pairs"
            )
        joints.append(
            Joint(
                name=t["name"], kind=t["kind"], parent=t["parent"], offset=t["offset"], origin_rot=t["origin_rot"],
                axis=t["axis"], kp=js.kp, kd=js.kd, torque_limit=js.torque_limit, limits=limits,
                reward_weight=js.reward_weight,
            )
        )

    def body_indices(key: str, values: list[str]) -> tuple[int, ...]:
        out = []
        for name in values:
            if name not in names:
                raise CharctlError(f"{yaml_path}: {key}: unknown body '{name}'")
            out.append(names.index(name))
        return tuple(out)

    for name in settings.deepmimic_joints:
        if name not in names:
            raise CharctlError(f"{yaml_path}: deepmimic_joints: unknown joint '{name}'")
    return Character(
        name=yaml_path.stem, urdf_path=urdf_path, joints=tuple(joints), bodies=tuple(bodies),
        end_effectors=body_indices("end_effectors", settings.end_effectors),
        ground_contact_bodies=body_indices("ground_contact_bodies", settings.ground_contact_bodies),
        deepmimic_joints=tuple(settings.deepmimic_joints), fps=settings.fps,
    )


def _parse_urdf(path: Path) -> tuple[list[dict], list[Body]]:
    """The joint tree in URDF order (= PyBullet's link order), root first, and each link's mass, COM and
    collision shapes."""
    if not path.exists():
        raise CharctlError(f"{path}: URDF file not found")
    try:
        robot = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise CharctlError(f"{path}: not valid XML: {err}") from None

    links = {}
    for link in robot.findall("link"):
        inertial = link.find("inertial")
        mass, com = 0.0, np.zeros(3)
        if inertial is not None:
            mass = float(inertial.find("mass").get("value"))
            origin = inertial.find("origin")
            if origin is not None:
                com = _floats(origin.get("xyz", "0 0 0"))
        links[link.get("name")] = Body(name=link.get("name"), mass=mass, com=com, shapes=_collision_shapes(link))

    urdf_joints = robot.findall("joint")
    children = {j.find("child").get("link") for j in urdf_joints}
    roots = [name for name in links if name not in children]
    if len(roots) != 1:
        raise CharctlError(f"{path}: expected exactly one root link, found {roots}")
    for j in urdf_joints:
        if j.find("parent").get("link") not in links or j.find("child").get("link") not in links:
            raise CharctlError(f"{path}: joint '{j.get('name')}' names a link that does not exist")
    # PyBullet numbers links depth-first, children in file order: use the same order.
    by_parent: dict[str, list] = {}
    for j in urdf_joints:
        by_parent.setdefault(j.find("parent").get("link"), []).append(j)
    dfs = []

    def visit(link: str) -> None:
        for j in by_parent.get(link, []):
            dfs.append(j)
            visit(j.find("child").get("link"))

    visit(roots[0])
    tree = [dict(name=roots[0], kind="root", parent=-1, offset=np.zeros(3), origin_rot=np.array([0.0, 0, 0, 1]),
                 axis=np.zeros(3))]
    order = [roots[0]]
    for j in dfs:
        kind = j.get("type")
        if kind == "continuous":
            kind = "revolute"
        if kind not in ("spherical", "revolute", "fixed"):
            raise CharctlError(f"{path}: joint '{j.get('name')}': unsupported type '{kind}'")
        parent, child = j.find("parent").get("link"), j.find("child").get("link")
        origin = j.find("origin")
        xyz = _floats(origin.get("xyz", "0 0 0")) if origin is not None else np.zeros(3)
        rpy = _floats(origin.get("rpy", "0 0 0")) if origin is not None else np.zeros(3)
        axis_el = j.find("axis")
        axis = _floats(axis_el.get("xyz")) if axis_el is not None else np.array([1.0, 0, 0])
        tree.append(dict(name=child, kind=kind, parent=order.index(parent), offset=xyz,
                         origin_rot=Rotation.from_euler("xyz", rpy).as_quat(), axis=axis / np.linalg.norm(axis)))
        order.append(child)
    return tree, [links[name] for name in order]


def _collision_shapes(link: ET.Element) -> tuple[CollisionShape, ...]:
    shapes = []
    for collision in link.findall("collision"):
        origin = collision.find("origin")
        xyz = _floats(origin.get("xyz", "0 0 0")) if origin is not None else np.zeros(3)
        rpy = _floats(origin.get("rpy", "0 0 0")) if origin is not None else np.zeros(3)
        rot = Rotation.from_euler("xyz", rpy).as_matrix()
        geometries = collision.find("geometry")  # an Element's truth value is its child count (deprecated)
        for geometry in geometries if geometries is not None else []:
            if geometry.tag == "sphere":
                size = [float(geometry.get("radius"))]
            elif geometry.tag in ("capsule", "cylinder"):
                size = [float(geometry.get("radius")), float(geometry.get("length"))]
            elif geometry.tag == "box":
                size = _floats(geometry.get("size"))
            else:
                continue  # meshes: the joint position stands in for the body
            shapes.append(CollisionShape(geometry.tag, xyz, rot, np.asarray(size, dtype=np.float64)))
    return tuple(shapes)


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()], dtype=np.float64)
