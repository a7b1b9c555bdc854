"""Retarget a third-party BVH clip onto a character (docs/retargeting.md explains the method).

Readable top to bottom:
1. `load_map`: the map YAML says, per target joint, which source joint drives it (a fraction of one for
   split segments, or none), the source's length unit and axes, and the root translation scale.
2. `source_motion`: source BVH -> per-frame global rotations and joint positions in charctl's world
   (z-up, metres, facing +x). A BVH rest pose is its OFFSET pose with zero rotations, so a source global
   rotation *is* the rotation relative to the source rest pose. Then the frame range (`--frames`), or a
   calibration first frame (CMU's T-pose) dropped.
3. `transfer`: each mapped target joint takes its source joint's global rest-relative rotation; a limb
   bone is corrected once by the shortest arc turning its rest direction into the source's (T-pose arms
   onto arms-down, splayed CMU legs onto straight ones); then global -> local down the target tree, a ball
   joint above a hinge turned about its bone so the hinge axis is normal to the source's bend plane, hinges
   reduced to their twist about their axis and clamped to limits (children compensate, keeping their global
   rotations).
   Root translation is scaled by the ratio of leg lengths (root height over the feet at rest).
4. `resample` to the character's frame rate (slerp), `enforce_limits` again.
5. `ground`: lift or lower the root per frame so the lowest foot in contact sits at height 0 and no
   collision shape of any body goes below the ground.
6. Checks that warn when a clip breaks an assumption (flat ground, the forward axis, a wrap that jumps), and
   `extract_cycle` for `--loop cycle`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from charctl.character.kinematics import forward_kinematics
from charctl.character.layout import hinge_twist
from charctl.character.model import Character
from charctl.motion.bvh import Bvh
from charctl.motion.clip import Clip
from charctl.util.errors import CharctlError
from charctl.util.rotations import Y_UP_TO_Z_UP, heading, quat_from_euler, quat_mul, slerp, z_rotation
from charctl.util.typed_config import build

AXES = {"x": (0, 1.0), "-x": (0, -1.0), "y": (1, 1.0), "-y": (1, -1.0), "z": (2, 1.0), "-z": (2, -1.0)}

# Contact detection on the retargeted clip (see `ground`): a ground-contact body is in contact when it
# moves slower than CONTACT_SPEED horizontally and its lowest point is within CONTACT_HEIGHT of its
# ground level. A planted foot moves ~0 m/s (its joint < 0.5 m/s while the heel rolls), a swinging one 1-8 m/s.
CONTACT_HEIGHT = 0.04  # metres
CONTACT_SPEED = 0.5  # metres per second


# ---------------------------------------------------------------------------------------------- the map
@dataclass
class MapSourceSettings:
    """The `source:` section of a map YAML."""

    scale: float = 1.0  # metres per source length unit
    up: str = "y"  # source up axis: x, y, z, -x, -y or -z
    forward: str = "z"  # the axis the source skeleton faces in its rest pose


@dataclass
class MapSettings:
    """A retarget map YAML (configs/retarget/*.yaml; docs/retargeting.md explains every key)."""

    joints: dict  # target joint name -> source joint name, list of candidates, {source, fraction} or none
    source: MapSourceSettings = field(default_factory=MapSourceSettings)
    root_scale: float | typing.Literal["auto"] = "auto"  # auto: the ratio of leg lengths
    clamp_ball_joints: bool = False


@dataclass(frozen=True)
class JointSource:
    candidates: tuple[str, ...]  # source joint names, the first one present in the BVH is used
    fraction: float  # share of the source joint's own rotation this target joint takes (split segments)
    line: int  # line in the map file, for error messages


@dataclass(frozen=True)
class RetargetMap:
    path: Path
    scale: float  # metres per source length unit
    up: str  # source up axis, e.g. "y"
    forward: str  # the axis the source skeleton faces in its rest pose, e.g. "z"
    root_scale: float | None  # None: leg-length ratio
    clamp_ball_joints: bool
    joints: dict[str, JointSource | None]  # target joint name -> source (None: stays at identity)

    def axes_rotation(self) -> Rotation:
        """Rotation taking source world coordinates to charctl's (x forward, y left, z up)."""
        forward, up = _axis_vector(self.forward), _axis_vector(self.up)
        return Rotation.from_matrix(np.stack([forward, np.cross(up, forward), up]))


def load_map(path: Path, character: Character) -> RetargetMap:
    """Read and check a map YAML against the character (unknown keys and joints name file and line)."""
    path = Path(path)
    if not path.is_file():
        raise CharctlError(f"{path}: map file not found")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise CharctlError(f"{path}: not a text file") from None
    try:
        spec = yaml.safe_load(text)
        lines = _joint_key_lines(text)
    except yaml.YAMLError as err:
        raise CharctlError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    settings = build(MapSettings, spec if spec is not None else {}, path)
    scale = _positive_number(settings.source.scale, path, "source.scale")
    up, forward = settings.source.up, settings.source.forward
    for key, axis in (("source.up", up), ("source.forward", forward)):
        if axis not in AXES:
            raise CharctlError(f"{path}: {key}: '{axis}' is not one of {', '.join(AXES)}")
    if AXES[up][0] == AXES[forward][0]:
        raise CharctlError(f"{path}: source.up '{up}' and source.forward '{forward}' must be different axes")
    root_scale = None if settings.root_scale == "auto" else _positive_number(settings.root_scale, path, "root_scale")
    clamp = settings.clamp_ball_joints
    joint_specs = settings.joints
    if not joint_specs:
        raise CharctlError(f"{path}: 'joints' must map target joint names to source joints")
    target_names = [j.name for j in character.joints]
    joints: dict[str, JointSource | None] = {}
    for target, value in joint_specs.items():
        line = lines.get(str(target), 0)
        where = f"{path}:{line}: joint '{target}'"
        if target not in target_names:
            raise CharctlError(f"{where}: no such joint in character '{character.name}' ({', '.join(target_names)})")
        joints[target] = _joint_source(value, where, line)
    if joints.get(target_names[0]) is None:
        raise CharctlError(f"{path}: joints: the root joint '{target_names[0]}' must name a source joint")
    return RetargetMap(path, scale, up, forward, root_scale, clamp, joints)


def _joint_source(value, where: str, line: int) -> JointSource | None:
    if value is None or value == "none":
        return None
    fraction = 1.0
    if isinstance(value, dict):
        if set(value) - {"source", "fraction"} or "source" not in value:
            raise CharctlError(f"{where}: expected {{source: NAME, fraction: F}}, got keys {sorted(value)}")
        fraction = value.get("fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise CharctlError(f"{where}: fraction must be a number in (0, 1], got {fraction!r}")
        value = value["source"]
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise CharctlError(f"{where}: source must be a joint name or a list of candidate names, got {value!r}")
    return JointSource(tuple(names), float(fraction), line)


def _joint_key_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of each key under `joints:`, so errors can point at the line."""
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "joints" and isinstance(value, yaml.MappingNode):
            return {k.value: k.start_mark.line + 1 for k, _ in value.value}
    return {}


def _positive_number(value, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CharctlError(f"{path}: {key} must be a positive number, got {value!r}")
    return float(value)


def _axis_vector(axis: str) -> np.ndarray:
    index, sign = AXES[axis]
    v = np.zeros(3)
    v[index] = sign
    return v


# ---------------------------------------------------------------------------------- the source motion
@dataclass
class SourceMotion:
    names: list[str]
    parents: np.ndarray  # (S,)
    rest_pos: np.ndarray  # (S, 3) joint positions in the rest pose, charctl world, metres
    global_rot: np.ndarray  # (F, S, 4) xyzw rotation relative to the rest pose, charctl world
    pos: np.ndarray  # (F, S, 3) joint positions, charctl world, metres
    frame_time: float


def source_motion(bvh: Bvh, path: Path, rmap: RetargetMap) -> SourceMotion:
    """Forward kinematics of the source skeleton, converted to z-up metres facing +x."""
    num_frames = bvh.motion.shape[0]
    if num_frames < 2:
        raise CharctlError(f"{path}: needs at least 2 frames to retarget, has {num_frames}")
    if not bvh.frame_time > 0:
        raise CharctlError(f"{path}: Frame Time must be positive, got {bvh.frame_time}")
    for joint in bvh.joints:
        kinds = [c.lower() for c in joint.channels]
        if any(len(c) != 9 or c[0] not in "xyz" or c[1:] not in ("position", "rotation") for c in kinds) \
                or sum(c.endswith("rotation") for c in kinds) > 3:
            raise CharctlError(f"{path}: joint '{joint.name}': unsupported channels {' '.join(joint.channels)}")
    to_world = rmap.axes_rotation()
    num_joints = len(bvh.joints)
    global_rot = [None] * num_joints
    pos = np.zeros((num_frames, num_joints, 3))
    rest_pos = np.zeros((num_joints, 3))
    column = 0
    for j, joint in enumerate(bvh.joints):
        values = bvh.motion[:, column : column + len(joint.channels)]
        column += len(joint.channels)
        kinds = [c.lower() for c in joint.channels]
        rot_cols = [i for i, c in enumerate(kinds) if c.endswith("rotation")]
        # BVH: the local rotation is the product of the rotation channels in the order listed (intrinsic).
        seq = "".join(kinds[i][0].upper() for i in rot_cols)
        local = Rotation.from_quat(quat_from_euler(seq, values[:, rot_cols])) if rot_cols \
            else Rotation.identity(num_frames)
        translation = np.broadcast_to(joint.offset, (num_frames, 3)).copy()
        pos_cols = {c[0]: i for i, c in enumerate(kinds) if c.endswith("position")}
        if pos_cols:
            channel_xyz = np.stack([values[:, pos_cols[a]] if a in pos_cols else np.zeros(num_frames)
                                    for a in "xyz"], axis=-1)
            # root: offset + channels; a non-root joint's position channels replace its offset (SFU, Mixamo).
            translation = translation + channel_xyz if joint.parent < 0 else channel_xyz
        if joint.parent < 0:
            global_rot[j] = local
            pos[:, j] = translation
        else:
            parent_rot = global_rot[joint.parent]
            global_rot[j] = parent_rot * local
            pos[:, j] = pos[:, joint.parent] + parent_rot.apply(translation)
            rest_pos[j] = rest_pos[joint.parent] + joint.offset
    # Change of basis: a rotation R in source coordinates is C R C^-1 in charctl's.
    world_rot = np.stack([(to_world * r * to_world.inv()).as_quat() for r in global_rot], axis=1)
    scale = rmap.scale
    return SourceMotion(
        names=[j.name for j in bvh.joints],
        parents=np.array([j.parent for j in bvh.joints]),
        rest_pos=to_world.apply(rest_pos) * scale,
        global_rot=world_rot,
        pos=to_world.apply(pos.reshape(-1, 3)).reshape(pos.shape) * scale,
        frame_time=float(bvh.frame_time),
    )


# ------------------------------------------------------------------------------------------- transfer
@dataclass
class TargetMotion:
    root_pos: np.ndarray  # (F, 3)
    root_rot: np.ndarray  # (F, 4) xyzw
    joint_rot: np.ndarray  # (F, J, 4) xyzw, local
    frame_time: float


def resolve_map(rmap: RetargetMap, character: Character, src: SourceMotion,
                source_path: Path) -> dict[int, tuple[int, float]]:
    """Target joint index -> (source joint index, fraction); names the map line of a missing source joint."""
    resolved = {}
    for target, spec in rmap.joints.items():
        if spec is None:
            continue
        found = next((name for name in spec.candidates if name in src.names), None)
        if found is None:
            raise CharctlError(
                f"{rmap.path}:{spec.line}: joint '{target}': source joint "
                f"{' / '.join(repr(n) for n in spec.candidates)} is not in {source_path}"
            )
        resolved[character.joint_index(target)] = (src.names.index(found), spec.fraction)
    return resolved


def transfer(character: Character, rmap: RetargetMap, src: SourceMotion, source_path: Path,
             clamp_ball_joints: bool = False) -> TargetMotion:
    """Source global rest-relative rotations -> target local rotations; root translation scaled by leg length."""
    resolved = resolve_map(rmap, character, src, source_path)
    num_frames, num_joints = src.pos.shape[0], character.num_joints
    rest_pos, rest_rot = forward_kinematics(
        character, np.zeros(3), Y_UP_TO_Z_UP.as_quat(), np.tile([0.0, 0.0, 0.0, 1.0], (num_joints, 1))
    )

    desired = {}  # target joint -> wanted global rotation per frame
    for k, (s, fraction) in resolved.items():
        if character.joints[k].kind == "fixed":
            continue  # fixed joints only lend their position to their parent's rest alignment
        source_rot = Rotation.from_quat(src.global_rot[:, s])
        if fraction < 1.0:
            # A split segment: this joint takes `fraction` of the source joint's own (local) rotation;
            # the next target joint mapped to the same source joint takes the rest.
            parent = Rotation.from_quat(src.global_rot[:, src.parents[s]]) if src.parents[s] >= 0 \
                else Rotation.identity(num_frames)
            own = parent.inv() * source_rot
            source_rot = parent * Rotation.from_rotvec(own.as_rotvec() * fraction)
        align = _rest_alignment(k, s, resolved, character, rest_pos, src)
        desired[k] = source_rot * align * Rotation.from_quat(rest_rot[k])

    # Global -> local down the tree. A hinge keeps only the twist about its axis and a joint may be clamped:
    # its children are computed from what the parent really does, so they keep their wanted global rotation.
    joint_rot = np.tile([0.0, 0.0, 0.0, 1.0], (num_frames, num_joints, 1))
    world = [desired[0]] + [None] * (num_joints - 1)
    hinges = _hinge_limbs(character, resolved, desired)
    for k in range(1, num_joints):
        joint = character.joints[k]
        frame = world[joint.parent] * Rotation.from_quat(joint.origin_rot)
        local = Rotation.identity(num_frames)
        if k in desired:
            local = limit_joint(joint, frame.inv() * desired[k], clamp_ball_joints)
            if k in hinges:
                twist = _bend_plane_twist(character, k, *hinges[k], frame * local, resolved, rest_pos, rest_rot, src)
                local = limit_joint(joint, frame.inv() * twist * frame * local, clamp_ball_joints)
        joint_rot[:, k] = local.as_quat()
        world[k] = frame * local

    root_s = resolved[0][0]
    root_pos = src.pos[:, root_s] * _root_scale(rmap, character, resolved, rest_pos, src)
    root_pos[:, :2] -= root_pos[0, :2]  # start above the origin, as DeepMimic's loaders do
    return TargetMotion(root_pos, world[0].as_quat(), joint_rot, src.frame_time)


# A ball joint above a hinge (shoulder-elbow, hip-knee) turns about its bone so that the hinge's axis is normal
# to the plane the source limb bends in: the hinge angle then carries the whole bend. (A source elbow bending about
# another axis than the target's, CMU's by ~30 degrees, otherwise loses the part of the bend off the axis.) The
# twist fades in between BEND_FADE degrees of bend, where the plane is defined, and full twist at twice that.
BEND_FADE = 5.0  # degrees


def _hinge_limbs(character: Character, resolved: dict, desired: dict) -> dict[int, tuple[int, int]]:
    """Ball joint -> (its hinge child, the hinge's nearest mapped descendant), all mapped."""
    out = {}
    for h, joint in enumerate(character.joints):
        parent = joint.parent
        if joint.kind != "revolute" or h not in desired or parent not in desired \
                or character.joints[parent].kind != "spherical" or parent in out:
            continue
        below = [c for c in range(character.num_joints) if character.joints[c].parent == h]
        while below and not any(c in resolved for c in below):
            below = [g for c in below for g in range(character.num_joints) if character.joints[g].parent == c]
        found = [c for c in below if c in resolved]
        if len(found) == 1:
            out[parent] = (h, found[0])
    return out


def _bend_plane_twist(character: Character, p: int, h: int, d: int, world_p: Rotation, resolved: dict,
                      rest_pos: np.ndarray, rest_rot: np.ndarray, src: SourceMotion) -> Rotation:
    """The rotation about ball joint p's bone (to hinge h) that turns h's axis onto the normal of the source's
    bend plane (h's rest limb direction to the source limb direction), the nearer of its two senses so that a
    slightly overstretched source limb does not flip the bone; faded out where the limb is nearly straight."""
    hinge = character.joints[h]
    bone = world_p.apply(hinge.offset)
    bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
    frame_h = world_p * Rotation.from_quat(hinge.origin_rot)
    axis = frame_h.apply(hinge.axis)
    limb_rest = Rotation.from_quat(rest_rot[h]).inv().apply(rest_pos[d] - rest_pos[h])  # in h's frame
    rest_dir = frame_h.apply(limb_rest / np.linalg.norm(limb_rest))
    limb = src.pos[:, resolved[d][0]] - src.pos[:, resolved[h][0]]
    limb /= np.maximum(np.linalg.norm(limb, axis=-1, keepdims=True), 1e-12)
    normal = np.cross(rest_dir, limb)
    bend = np.degrees(np.arcsin(np.minimum(np.linalg.norm(normal, axis=-1), 1.0)))
    bend = np.where(np.sum(rest_dir * limb, axis=-1) < 0, 180.0 - bend, bend)
    # both projected on the plane normal to the bone: the twist angle between them
    a = axis - np.sum(axis * bone, axis=-1, keepdims=True) * bone
    t = normal - np.sum(normal * bone, axis=-1, keepdims=True) * bone
    angle = np.arctan2(np.sum(bone * np.cross(a, t), axis=-1), np.sum(a * t, axis=-1))
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # the axis may point either way along the normal
    weight = np.clip((bend - BEND_FADE) / BEND_FADE, 0.0, 1.0)
    weight = np.where(np.linalg.norm(t, axis=-1) > 1e-9, weight, 0.0)
    return Rotation.from_rotvec((weight * angle)[:, None] * bone)


def _rest_alignment(k: int, s: int, resolved: dict, character: Character, rest_pos: np.ndarray,
                    src: SourceMotion) -> Rotation:
    """The rotation turning target joint k's rest bone direction into source joint s's.

    A bone runs from the joint to its nearest mapped descendant (the mapped source joint in the source).
    Only a limb bone (exactly one such descendant) is aligned: that is where rest postures differ (a T-pose's
    arms onto arms hanging down, CMU's splayed legs onto straight ones), by the shortest arc. A branching
    joint (pelvis, chest) or a leaf (foot, head) gets identity: torsos, feet and heads stand upright and
    flat in any rest pose, and the directions to their children differ by proportions, not by posture.
    """
    source_dirs, target_dirs = [], []
    children = [c for c in range(character.num_joints) if character.joints[c].parent == k]
    while children:
        c = children.pop()
        if c in resolved and resolved[c][0] != s and _is_ancestor(s, resolved[c][0], src.parents):
            source_dirs.append(src.rest_pos[resolved[c][0]] - src.rest_pos[s])
            target_dirs.append(rest_pos[c] - rest_pos[k])
        else:
            children += [g for g in range(character.num_joints) if character.joints[g].parent == c]
    if len(source_dirs) != 1 or min(np.linalg.norm(source_dirs[0]), np.linalg.norm(target_dirs[0])) < 1e-6:
        return Rotation.identity()
    rotation, _ = Rotation.align_vectors(source_dirs, target_dirs)  # one pair: the shortest arc
    return rotation


def _is_ancestor(ancestor: int, joint: int, parents: np.ndarray) -> bool:
    while joint >= 0:
        joint = parents[joint]
        if joint == ancestor:
            return True
    return False


def _root_scale(rmap: RetargetMap, character: Character, resolved: dict, rest_pos: np.ndarray,
                src: SourceMotion) -> float:
    """Metres of target root travel per metre of source root travel: the ratio of leg lengths."""
    if rmap.root_scale is not None:
        return rmap.root_scale
    root_s = resolved[0][0]
    target_legs, source_legs = [], []
    for body in character.ground_contact_bodies:
        if body in resolved:
            target_legs.append(rest_pos[0, 2] - rest_pos[body, 2])
            source_legs.append(src.rest_pos[root_s, 2] - src.rest_pos[resolved[body][0], 2])
    if not target_legs or sum(source_legs) <= 1e-6 or sum(target_legs) <= 1e-6:
        raise CharctlError(
            f"{rmap.path}: root_scale: cannot infer the leg-length ratio (map the ground-contact joints "
            f"{[character.joints[b].name for b in character.ground_contact_bodies]} below the root, "
            f"or set root_scale to a number)"
        )
    return float(sum(target_legs) / sum(source_legs))


def limit_joint(joint, local: Rotation, clamp_ball: bool) -> Rotation:
    """Hinge: twist about its axis (swing dropped; charctl/character/layout.py says why), clamped to its limits.
    Ball: rotation-vector clamp if asked."""
    if joint.kind == "revolute":
        angle = hinge_twist(local.as_quat().reshape(-1, 4), joint.axis)
        if len(joint.limits):
            angle = np.clip(angle, joint.limits[0, 0], joint.limits[0, 1])
        return Rotation.from_rotvec(angle[:, None] * joint.axis)
    if joint.kind == "spherical" and clamp_ball and len(joint.limits) == 3:
        # The same parametrisation as the policy's action (exponential map per ball joint).
        return Rotation.from_rotvec(np.clip(local.as_rotvec(), joint.limits[:, 0], joint.limits[:, 1]))
    if joint.kind == "fixed":
        return Rotation.identity(len(local))
    return local


# ------------------------------------------------------------------------------------------- grounding
def lowest_points(character: Character, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(F, J) lowest world height of each body's collision shapes (the joint height for a body without any)."""
    lowest = pos[..., 2].copy()
    body_rot = Rotation.from_quat(rot.reshape(-1, 4)).as_matrix().reshape(*rot.shape[:-1], 3, 3)
    for b, body in enumerate(character.bodies):
        for index, shape in enumerate(body.shapes):
            world = body_rot[:, b] @ shape.rot  # (F, 3, 3) shape axes in the world
            centre_z = pos[:, b, 2] + (body_rot[:, b] @ shape.center)[:, 2]
            up = world[:, 2, :]  # z component of each shape axis
            if shape.kind == "sphere":
                low = centre_z - shape.size[0]
            elif shape.kind == "capsule":  # a segment along local z, swept by a sphere
                low = centre_z - np.abs(up[:, 2]) * shape.size[1] / 2 - shape.size[0]
            elif shape.kind == "cylinder":
                radial = np.sqrt(1 - np.minimum(up[:, 2] ** 2, 1))  # how far the end discs tilt
                low = centre_z - np.abs(up[:, 2]) * shape.size[1] / 2 - shape.size[0] * radial
            else:  # box: the support function of its half extents
                low = centre_z - np.abs(up) @ (shape.size / 2)
            lowest[:, b] = low if index == 0 else np.minimum(lowest[:, b], low)
    return lowest


def ground(character: Character, motion: TargetMotion, wrap: bool = False) -> TargetMotion:
    """Move the root vertically, per frame, so feet in contact touch height 0 and nothing is below it.

    Contact frames of a ground-contact body: it moves slower than CONTACT_SPEED and its lowest point is
    within CONTACT_HEIGHT of its ground level (its median height over its slow frames). At those frames
    the lowest foot in contact is put at 0; between them the lift is interpolated linearly (flight
    phases, swing); then every frame is raised as needed so no body's collision shape is below the
    ground. A clip without any contact frame is shifted as a whole so its lowest point is at 0.
    `wrap`: the last frame is the first one a cycle on (a looping clip), so the lift is interpolated across
    that seam and the two frames get the same lift.
    """
    pos, rot = forward_kinematics(character, motion.root_pos, motion.root_rot, motion.joint_rot)
    low = lowest_points(character, pos, rot)
    feet = list(character.ground_contact_bodies)
    foot_low = low[:, feet]
    speed = np.linalg.norm(np.gradient(pos[:, feet, :2], motion.frame_time, axis=0), axis=-1)
    slow = speed < CONTACT_SPEED  # (F, feet)
    # Each foot's ground level: its median height while slow (robust to a landing that dips into the
    # floor, as DeepMimic's run does by 7 cm), or its lowest height if it never slows down.
    level = np.array([np.median(foot_low[slow[:, i], i]) if slow[:, i].any() else foot_low[:, i].min()
                      for i in range(len(feet))])
    contact = slow & (foot_low - level < CONTACT_HEIGHT)
    frames = np.flatnonzero(contact.any(axis=1))
    if len(frames):
        lowest_contact = np.where(contact, foot_low, np.inf).min(axis=1)
        period = len(low) - 1 if wrap and len(low) > 1 else None
        lift = np.interp(np.arange(len(low)), frames, -lowest_contact[frames], period=period)
    else:
        lift = np.full(len(low), -low.min())
    lift = np.maximum(lift, -low.min(axis=1))
    root_pos = motion.root_pos.copy()
    root_pos[:, 2] += lift
    return TargetMotion(root_pos, motion.root_rot, motion.joint_rot, motion.frame_time)



def grounded_clip(clip: Clip) -> Clip:
    """The clip with its root moved vertically per frame as `ground` does (a BVH retarget's last step)."""
    import dataclasses

    motion = ground(clip.character, TargetMotion(clip.root_pos, clip.root_rot, clip.joint_rot, clip.frame_time),
                    wrap=clip.loop)
    return dataclasses.replace(clip, root_pos=motion.root_pos)


# ------------------------------------------------------------------------------------------- pipeline
def resample(motion: TargetMotion, fps: float) -> TargetMotion:
    """Frames every 1/fps s over the same duration: positions linear, rotations slerp (per joint)."""
    duration = motion.frame_time * (len(motion.root_pos) - 1)
    frame_time = 1.0 / fps
    times = np.arange(int(round(duration / frame_time)) + 1) * frame_time
    x = np.minimum(times, duration) / motion.frame_time
    i0 = np.minimum(np.floor(x).astype(int), len(motion.root_pos) - 2)
    alpha = (x - i0)[:, None]
    root_pos = (1 - alpha) * motion.root_pos[i0] + alpha * motion.root_pos[i0 + 1]
    root_rot = slerp(motion.root_rot[i0], motion.root_rot[i0 + 1], alpha[:, 0])
    joint_rot = slerp(motion.joint_rot[i0], motion.joint_rot[i0 + 1], alpha)
    return TargetMotion(root_pos, root_rot, joint_rot, frame_time)


def enforce_limits(character: Character, motion: TargetMotion, clamp_ball_joints: bool) -> TargetMotion:
    """Re-apply the hinge twist and clamps after resampling (slerp can step a hair outside a box limit)."""
    joint_rot = motion.joint_rot.copy()
    for k, joint in enumerate(character.joints[1:], start=1):
        joint_rot[:, k] = limit_joint(joint, Rotation.from_quat(joint_rot[:, k]), clamp_ball_joints).as_quat()
    return TargetMotion(motion.root_pos, motion.root_rot, joint_rot, motion.frame_time)


def retarget_bvh(source_path: Path, character: Character, map_path: Path, name: str, fps: float = 60.0,
                 loop: str = "none", clamp_ball_joints: bool = False,
                 frames: tuple[int | None, int | None] | None = None,
                 warn: typing.Callable[[str], None] = print) -> Clip:
    """The whole method: map, source FK, frame range (or the calibration frame dropped), transfer, resample,
    limits, ground; then the checks that say when a clip breaks an assumption (`warn` gets one line each)."""
    from charctl.motion.bvh import read_bvh

    rmap = load_map(map_path, character)
    source_path = Path(source_path)
    bvh = read_bvh(source_path)
    check_output_size(bvh.num_frames, bvh.frame_time, fps, str(source_path))
    src = source_motion(bvh, source_path, rmap)
    if frames is not None:
        src = select_frames(src, frames, source_path)
    else:
        src = drop_calibration_frame(src, source_path, warn)
    clamp = clamp_ball_joints or rmap.clamp_ball_joints
    motion = transfer(character, rmap, src, source_path, clamp)
    motion = enforce_limits(character, resample(motion, fps), clamp)
    messages = [check_flat_ground(character, motion)]
    motion = ground(character, motion)
    messages.append(check_forward(motion, rmap))
    if loop == "cycle":
        motion, note = extract_cycle(character, motion, clamp)
        warn(f"{source_path}: {note}")
    elif loop == "wrap":
        messages.append(check_wrap(character, motion))
    for message in messages:
        if message:
            warn(f"{source_path}: warning: {message}")
    check_finite(motion, str(source_path))
    return Clip(character=character, name=name, frame_time=motion.frame_time, root_pos=motion.root_pos,
                root_rot=motion.root_rot, joint_rot=motion.joint_rot, loop=loop in ("wrap", "cycle"))


# ------------------------------------------------------------------------------------------- looping
MIN_CYCLE = 0.5  # seconds: shorter than any gait cycle's match (half a walk cycle is its mirror image)
BLEND_TIME = 0.2  # seconds at the end of a cycle over which it is bent onto its first frame
WRAP_WARN_DEGREES = 20.0  # `--loop wrap` whose ends differ by more than this gets a warning
MAX_CYCLE_CANDIDATES = 1200  # frames compared pairwise (longer clips are searched on every n-th frame)


def _pose_distance(character: Character, a: TargetMotion, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Mean angle (radians) between the actuated joints' local rotations of frames ia and ib (broadcast), plus
    the root's tilt (heading left out) and 1 rad per 0.1 m of root height."""
    moving = [k for k, j in enumerate(character.joints) if j.kind in ("spherical", "revolute")]
    q = a.joint_rot[:, moving]
    dot = np.abs(np.einsum("...jk,...jk->...j", q[ia], q[ib]))
    joints = 2.0 * np.arccos(np.minimum(dot, 1.0)).mean(axis=-1)
    tq = quat_mul(z_rotation(-heading(a.root_rot)), a.root_rot)
    tdot = np.abs(np.sum(tq[ia] * tq[ib], axis=-1))
    return joints + 2.0 * np.arccos(np.minimum(tdot, 1.0)) + np.abs(a.root_pos[ia, 2] - a.root_pos[ib, 2]) / 0.1


def wrap_jump(character: Character, motion: TargetMotion) -> float:
    """Largest joint angle (degrees) between the last and the first frame: the jump a wrapping clip makes."""
    q = motion.joint_rot
    dot = np.abs(np.sum(q[-1] * q[0], axis=-1))
    return float(np.degrees(2.0 * np.arccos(np.minimum(dot, 1.0))).max())


def check_wrap(character: Character, motion: TargetMotion) -> str | None:
    jump = wrap_jump(character, motion)
    if jump <= WRAP_WARN_DEGREES:
        return None
    return (f"--loop wrap joins the last frame to the first with a {jump:.0f} degree joint jump; "
            f"--loop cycle cuts one cycle and blends its ends")


def extract_cycle(character: Character, motion: TargetMotion, clamp_ball_joints: bool = False
                  ) -> tuple[TargetMotion, str]:
    """One cycle: the pair of frames (a, b), b - a at least MIN_CYCLE, whose poses and motion match best (each
    frame compared with its neighbours too, so a pose on the way up does not match the same pose on the way
    down); frames a..b, the last BLEND_TIME bent onto frame a so the loop closes (joints, root height and tilt;
    the heading change and the horizontal travel stay, the clip carries them on from cycle to cycle)."""
    count = len(motion.root_pos)
    min_frames = int(np.ceil(MIN_CYCLE / motion.frame_time))
    if count - 2 <= min_frames:
        raise CharctlError(f"--loop cycle: the clip ({(count - 1) * motion.frame_time:.2f} s) is too short to "
                           f"hold a cycle of at least {MIN_CYCLE:g} s")
    step = max(1, int(np.ceil((count - 2) / MAX_CYCLE_CANDIDATES)))
    frames = np.arange(1, count - 1, step)  # each with a neighbour on both sides
    ia, ib = frames[:, None], frames[None, :]
    cost = sum(_pose_distance(character, motion, ia + d, ib + d) for d in (-1, 0, 1))
    cost = np.where(ib - ia >= min_frames, cost, np.inf)
    a, b = np.unravel_index(np.argmin(cost), cost.shape)
    a, b = int(frames[a]), int(frames[b])
    jump_before = wrap_jump(character, motion)
    cut = TargetMotion(motion.root_pos[a:b + 1].copy(), motion.root_rot[a:b + 1].copy(),
                       motion.joint_rot[a:b + 1].copy(), motion.frame_time)
    n = len(cut.root_pos)
    window = min(int(round(BLEND_TIME / motion.frame_time)), n - 1)
    w = np.zeros(n)
    ramp = np.arange(1, window + 1) / window
    w[n - window:] = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the blend starts
    # joints: q_k * (q_b^-1 q_a)^w, which is q_a at the last frame
    residual = Rotation.from_quat(cut.joint_rot[-1].reshape(-1, 4)).inv() * Rotation.from_quat(cut.joint_rot[0])
    rv = residual.as_rotvec()
    blend = Rotation.from_rotvec((w[:, None, None] * rv[None]).reshape(-1, 3))
    joint_rot = (Rotation.from_quat(cut.joint_rot.reshape(-1, 4)) * blend).as_quat().reshape(cut.joint_rot.shape)
    # root: the first frame's orientation turned by the cycle's heading change, and its height
    turn = heading(cut.root_rot[-1:]) - heading(cut.root_rot[:1])
    target = Rotation.from_quat(quat_mul(z_rotation(turn), cut.root_rot[:1]))
    root_res = (Rotation.from_quat(cut.root_rot[-1:]).inv() * target).as_rotvec()
    root_rot = (Rotation.from_quat(cut.root_rot) * Rotation.from_rotvec(w[:, None] * root_res)).as_quat()
    root_pos = cut.root_pos.copy()
    root_pos[:, 2] += w * (cut.root_pos[0, 2] - cut.root_pos[-1, 2])
    root_pos[:, :2] -= root_pos[0, :2]
    out = TargetMotion(root_pos, root_rot, joint_rot, motion.frame_time)
    out = enforce_limits(character, out, clamp_ball_joints)
    match = float(np.degrees(cost.min() / 3))
    note = (f"--loop cycle: frames {a} to {b} of the retargeted clip ({(b - a) * motion.frame_time:.3f} s), "
            f"ends matching within {match:.1f} degrees of mean joint angle (the whole clip's ends: "
            f"{jump_before:.0f} degrees apart at worst), last {window * motion.frame_time:.2f} s blended onto the "
            f"first frame")
    return out, note



# ------------------------------------------------------------------------------------------- checks
# The most frames a retargeted clip may have: two hours at 60 fps, far beyond any mocap take, and a bound on the
# memory asked for before anything is allocated (a Frame Time of 1000000 s or --fps 1e9 stops here).
MAX_OUTPUT_FRAMES = 432_000


def check_output_size(num_frames: int, frame_time: float, fps: float, where: str) -> None:
    if not np.isfinite(fps) or not fps > 0:
        raise CharctlError(f"--fps must be a positive number, got {fps:g}")
    duration = (num_frames - 1) * frame_time
    count = duration * fps + 1
    if not np.isfinite(count) or count > MAX_OUTPUT_FRAMES:
        raise CharctlError(f"{where}: {num_frames} frames of {frame_time:g} s ({duration:g} s) at {fps:g} fps "
                           f"would be {count:.3g} frames, more than the {MAX_OUTPUT_FRAMES} allowed "
                           f"(check 'Frame Time' and --fps)")


def check_finite(motion: TargetMotion, where: str) -> None:
    for label, values in (("root position", motion.root_pos), ("root rotation", motion.root_rot),
                          ("joint rotations", motion.joint_rot)):
        if not np.all(np.isfinite(values)):
            raise CharctlError(f"{where}: the retargeted {label} has non-finite values, nothing written")


def _slice_source(src: SourceMotion, start: int, stop: int) -> SourceMotion:
    return SourceMotion(src.names, src.parents, src.rest_pos, src.global_rot[start:stop], src.pos[start:stop],
                        src.frame_time)


def select_frames(src: SourceMotion, frames: tuple[int | None, int | None], path: Path) -> SourceMotion:
    """Source frames A to B - 1 (`--frames A:B`, Python's slice: either end may be left out)."""
    total = src.pos.shape[0]
    start = 0 if frames[0] is None else frames[0]
    stop = total if frames[1] is None else frames[1]
    text = f"{'' if frames[0] is None else frames[0]}:{'' if frames[1] is None else frames[1]}"
    if not 0 <= start < stop <= total:
        raise CharctlError(f"--frames {text}: {path} has frames 0 to {total - 1}; need 0 <= A < B <= {total}")
    if stop - start < 2:
        raise CharctlError(f"--frames {text}: needs at least 2 frames to retarget, selects {stop - start}")
    return _slice_source(src, start, stop)


# A calibration pose (CMU's T-pose) as frame 0: its change to frame 1 is far above the clip's own frame-to-frame
# changes (CMU: 89-142 degrees against a median of a few). Both conditions, so a fast clip's first step is kept.
CALIBRATION_RATIO = 10.0
CALIBRATION_DEGREES = 20.0


def frame_changes(src: SourceMotion) -> np.ndarray:
    """(F - 1,) the largest change of any joint's global rotation from each frame to the next, degrees."""
    q = src.global_rot
    dot = np.abs(np.sum(q[:-1] * q[1:], axis=-1))
    return np.degrees(2.0 * np.arccos(np.minimum(dot, 1.0))).max(axis=1)


def drop_calibration_frame(src: SourceMotion, path: Path, warn: typing.Callable[[str], None]) -> SourceMotion:
    if src.pos.shape[0] < 4:
        return src
    change = frame_changes(src)
    typical = float(np.median(change[1:]))
    if change[0] > CALIBRATION_DEGREES and change[0] > CALIBRATION_RATIO * typical:
        warn(f"{path}: dropped frame 0, a calibration pose: joints turn {change[0]:.0f} degrees to frame 1 "
             f"(the clip's median frame-to-frame change is {typical:.1f}); --frames A:B picks frames yourself")
        return _slice_source(src, 1, src.pos.shape[0])
    return src


# Flat ground (grounding's assumption) is broken when the character stands on something: a foot keeps still
# (slower than CONTACT_SPEED) while no part of the body is within OFF_GROUND of the floor, for SUPPORTED_TIME.
# A jump's feet are still only at its apex, for a few hundredths of a second. Measured before grounding, on the
# source's own heights (grounding blends the lift between contacts, which would move a foot standing up there).
OFF_GROUND = 0.1  # metres
SUPPORTED_TIME = 0.2  # seconds


def check_flat_ground(character: Character, motion: TargetMotion) -> str | None:
    pos, rot = forward_kinematics(character, motion.root_pos, motion.root_rot, motion.joint_rot)
    low = lowest_points(character, pos, rot)
    feet = list(character.ground_contact_bodies)
    speed = np.linalg.norm(np.gradient(pos[:, feet], motion.frame_time, axis=0), axis=-1)
    # the floor: where the feet are when they are still (as `ground` finds each foot's level)
    still_heights = low[:, feet][speed < CONTACT_SPEED]
    floor = float(np.median(still_heights)) if len(still_heights) else float(low[:, feet].min())
    foot_low = low[:, feet].min(axis=1) - floor
    lowest_foot = np.argmin(low[:, feet], axis=1)
    still = speed[np.arange(len(speed)), lowest_foot] < CONTACT_SPEED
    supported = (low.min(axis=1) - floor > OFF_GROUND) & still
    longest, run = 0, 0
    for flag in supported:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    if longest * motion.frame_time < SUPPORTED_TIME:
        return None
    share = float(np.mean(foot_low > OFF_GROUND))
    return (f"the clip leaves the flat ground: no foot within {OFF_GROUND:g} m of it in {share:.0%} of the frames, "
            f"the lowest foot up to {foot_low.max():.2f} m, standing still in the air for "
            f"{longest * motion.frame_time:.2f} s (grounding assumes a flat floor; docs/retargeting.md)")


# A wrong `source.forward` turns the character away from where its root goes: warn when, over the frames the
# root moves faster than MOVING_SPEED, most travel against the facing (more than 90 degrees off it).
MOVING_SPEED = 0.2  # metres per second


def check_forward(motion: TargetMotion, rmap: RetargetMap) -> str | None:
    window = max(1, int(round(0.25 / motion.frame_time)))  # velocity over a quarter second: past the sway
    if len(motion.root_pos) <= window:
        return None
    travel = (motion.root_pos[window:, :2] - motion.root_pos[:-window, :2]) / (window * motion.frame_time)
    facing_angle = heading(motion.root_rot[:-window])
    facing = np.stack([np.cos(facing_angle), np.sin(facing_angle)], axis=-1)
    speed = np.linalg.norm(travel, axis=-1)
    moving = speed > MOVING_SPEED
    if moving.mean() < 0.25:
        return None  # mostly in place: turning on the spot, standing
    backwards = np.sum(travel * facing, axis=-1) < 0
    share = float(np.mean(backwards[moving]))
    if share <= 0.5:
        return None
    return (f"the root travels against the character's facing in {share:.0%} of its moving frames: is "
            f"source.forward '{rmap.forward}' in {rmap.path} the axis the source skeleton faces at rest?")


def import_deepmimic(source_path: Path, character: Character, name: str, loop: str | None = None,
                     fps: float = 60.0) -> Clip:
    """A DeepMimic .txt clip of this character, read by the importer, resampled to `fps` if its frame rate
    differs (DeepMimic's walk and run are at 30 fps, its backflip at 16), loop flag optionally overridden."""
    import dataclasses

    from charctl.motion.deepmimic import read_deepmimic_motion

    clip = read_deepmimic_motion(Path(source_path), character)
    check_output_size(clip.num_frames, clip.frame_time, fps, str(source_path))
    clip = dataclasses.replace(clip, name=name, loop=clip.loop if loop is None else loop == "wrap")
    if abs(clip.frame_time * fps - 1.0) > 1e-3:
        motion = resample(TargetMotion(clip.root_pos, clip.root_rot, clip.joint_rot, clip.frame_time), fps)
        clip = dataclasses.replace(clip, frame_time=motion.frame_time, root_pos=motion.root_pos,
                                   root_rot=motion.root_rot, joint_rot=motion.joint_rot)
    check_finite(TargetMotion(clip.root_pos, clip.root_rot, clip.joint_rot, clip.frame_time), str(source_path))
    return clip
