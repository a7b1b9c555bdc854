"""A motion clip on a character: frames of root position/rotation and local joint rotations, sampled at any t.

Files: `motions/<character>_<motion>.bvh` (the character's own skeleton, y-up as BVH convention has it) and a
sidecar `motions/<character>_<motion>.yaml` with the loop flag (`wrap` or `none`) and where the clip came from.

Sampling: positions linearly, rotations by slerp. Velocities are the exact derivative of that interpolation
(finite differences of neighbouring frames, as DeepMimic computes them): root in the world frame, joints in
their own frame. A looping clip continues past its end: each cycle starts where the previous one ended,
moved horizontally by the cycle's displacement and turned by its heading change (the turning loop).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from charctl.character.layout import hinge_angle, hinge_quat
from charctl.character.model import Character, load_character
from charctl.character.pose import Pose
from charctl.motion.bvh import Bvh, BvhJoint, read_bvh, write_bvh
from charctl.util import rotations as rot
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_write_text
from charctl.util.paths import MOTIONS_DIR

BALL_CHANNELS = ["Zrotation", "Yrotation", "Xrotation"]
ROOT_CHANNELS = ["Xposition", "Yposition", "Zposition"] + BALL_CHANNELS
AXIS_CHANNEL = {0: "Xrotation", 1: "Yrotation", 2: "Zrotation"}


@dataclass(eq=False)
class Clip:
    character: Character
    name: str
    frame_time: float
    root_pos: np.ndarray  # (F, 3) z-up world
    root_rot: np.ndarray  # (F, 4) xyzw
    joint_rot: np.ndarray  # (F, J, 4) local; entry 0 unused (identity)
    loop: bool

    @property
    def num_frames(self) -> int:
        return int(self.root_pos.shape[0])

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) * self.frame_time

    def retimed(self, speed: float) -> Clip:
        """The same clip played `speed` times as fast (its velocities scaled by `speed`); itself at 1."""
        return self if speed == 1.0 else dataclasses.replace(self, frame_time=self.frame_time / speed)

    # ------------------------------------------------------------------ looping
    @functools.cached_property
    def cycle_heading(self) -> float:
        """Heading change over one cycle (about 0 except for a turning loop)."""
        h = rot.heading(np.stack([self.root_rot[0], self.root_rot[-1]]))
        return float(np.angle(np.exp(1j * (h[1] - h[0]))))

    def cycle_transform(self, cycles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For whole cycles k: (turn quaternion (..., 4), horizontal shift (..., 3)) applied to cycle 0's frames.

        Frame f of cycle k is Rz(k * dh) (p_f - p_0) + c_k with c_0 = p_0 and c_{k+1} = Rz(dh)(c_k - p_0) + p_last,
        heights untouched: each cycle starts exactly where the previous one ended.
        """
        cycles = np.asarray(cycles, dtype=np.int64)
        p0 = self.root_pos[0] * [1, 1, 0]
        starts = self._cycle_starts(int(cycles.max(initial=0)))
        turn = rot.z_rotation(cycles * self.cycle_heading)
        shift = starts[cycles] - rot.quat_rotate(turn, np.broadcast_to(p0, turn.shape[:-1] + (3,)))
        return turn, shift

    def _cycle_starts(self, kmax: int) -> np.ndarray:
        """c_0 .. c_kmax (at least), kept between calls: each needs the one before, so long times cost a loop."""
        starts = self.__dict__.get("_starts")
        if starts is None or len(starts) <= kmax:
            p0, p_last = self.root_pos[0] * [1, 1, 0], self.root_pos[-1] * [1, 1, 0]
            step = rot.z_rotation(self.cycle_heading)
            starts = np.empty((max(kmax + 1, 64), 3))
            starts[0] = p0
            for k in range(len(starts) - 1):
                starts[k + 1] = rot.quat_rotate(step, starts[k] - p0) + p_last
            self.__dict__["_starts"] = starts
        return starts

    # ------------------------------------------------------------------ sampling
    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cycle, frame index i, blend w in [0, 1], phase time) for times t; non-looping clips clamp."""
        t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
        if self.loop and self.duration > 0:
            cycles = np.floor(t / self.duration).astype(np.int64)
            local = t - cycles * self.duration
        else:
            cycles = np.zeros(np.shape(t), dtype=np.int64)
            local = np.minimum(t, self.duration)
        x = local / self.frame_time
        i = np.minimum(np.floor(x).astype(np.int64), max(self.num_frames - 2, 0))
        w = np.clip(x - i, 0.0, 1.0) if self.num_frames > 1 else np.zeros_like(x)
        return cycles, i, w, local

    def phase(self, t: np.ndarray | float) -> np.ndarray:
        """Position in the clip in [0, 1)."""
        if self.duration <= 0:
            return np.zeros(np.shape(t))
        return np.mod(np.asarray(t, dtype=np.float64) / self.duration, 1.0)

    def sample(self, t: np.ndarray | float, velocities: bool = True) -> Pose:
        """The clip's pose (and its velocities) at time(s) t in seconds; t may be an array."""
        cycles, i, w, _ = self._locate(t)
        j = np.minimum(i + 1, self.num_frames - 1)
        root_pos = (1 - w)[..., None] * self.root_pos[i] + w[..., None] * self.root_pos[j]
        root_step, joint_step = self._frame_steps  # slerp(q_i, q_j, w) = q_i exp(w log(q_i^-1 q_j))
        root_rot = rot.quat_mul(self.root_rot[i], rot.quat_from_rotvec(root_step[i] * w[..., None]))
        joint_rot = rot.quat_mul(self.joint_rot[i], rot.quat_from_rotvec(joint_step[i] * w[..., None, None]))
        turn, shift = self.cycle_transform(cycles)
        root_pos = rot.quat_rotate(turn, root_pos) + shift
        root_rot = rot.quat_mul(turn, root_rot)
        pose = Pose(root_pos=root_pos, root_rot=root_rot, joint_rot=joint_rot)
        if velocities:
            lin, ang, joint_ang = self._frame_velocities
            pose.root_lin_vel = rot.quat_rotate(turn, lin[i])
            pose.root_ang_vel = rot.quat_rotate(turn, ang[i])
            pose.joint_ang_vel = joint_ang[i].copy()
        return pose

    @functools.cached_property
    def _frame_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Rotation vector from each frame to the next (root (F, 3), joints (F, J, 3); zero for the last frame),
        the numbers rot.slerp would recompute on every sample."""
        following = np.minimum(np.arange(self.num_frames) + 1, self.num_frames - 1)
        root = rot.rotvec_from_quat(rot.quat_mul(rot.quat_conj(self.root_rot), self.root_rot[following]))
        joints = rot.rotvec_from_quat(rot.quat_mul(rot.quat_conj(self.joint_rot), self.joint_rot[following]))
        return root, joints

    @functools.cached_property
    def _frame_velocities(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Velocity over each frame interval [f, f+1] (the last row repeats the one before)."""
        dt = self.frame_time
        if self.num_frames < 2:
            J = self.character.num_joints
            return np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, J, 3))
        lin = np.diff(self.root_pos, axis=0) / dt
        ang = rot.angular_velocity_world(self.root_rot[:-1], self.root_rot[1:], dt)
        joint_ang = rot.angular_velocity_local(self.joint_rot[:-1], self.joint_rot[1:], dt)
        joint_ang[:, 0] = 0.0
        return (np.concatenate([lin, lin[-1:]]), np.concatenate([ang, ang[-1:]]),
                np.concatenate([joint_ang, joint_ang[-1:]]))

    # ------------------------------------------------------------------ BVH
    def to_bvh(self) -> Bvh:
        """This clip as a BVH of the character's own skeleton (y-up, metres, degrees)."""
        c = self.character
        joints, columns = [], []
        pos_y, rot_y = rot.apply_z_up_to_y_up(self.root_pos, self.root_rot)
        for index, joint in enumerate(c.joints):
            channels = _channels(c, index)
            joints.append(BvhJoint(name=joint.name, parent=int(joint.parent), offset=joint.offset.copy(),
                                   channels=channels))
            if joint.kind == "root":
                columns += [pos_y, rot.euler_from_quat("ZYX", rot_y)]
            elif joint.kind == "revolute":
                columns.append(np.degrees(hinge_angle(self.joint_rot[:, index], joint.axis))[:, None])
            elif joint.kind == "spherical":
                columns.append(rot.euler_from_quat("ZYX", self.joint_rot[:, index]))
        return Bvh(joints=joints, frame_time=self.frame_time, motion=np.concatenate(columns, axis=1))

    @classmethod
    def from_bvh(cls, character: Character, bvh: Bvh, name: str, loop: bool, source: str = "") -> Clip:
        """Read a BVH whose skeleton is the character's (same joint names; channels in any order)."""
        names = [j.name for j in bvh.joints]
        expected = [j.name for j in character.joints]
        if sorted(names) != sorted(expected):
            missing = sorted(set(expected) - set(names)) or sorted(set(names) - set(expected))
            raise CharctlError(f"{source or name}: skeleton is not {character.name}'s (joint '{missing[0]}' differs);"
                               f" use 'charctl retarget' for other skeletons")
        F, J = bvh.num_frames, character.num_joints
        joint_rot = np.tile(rot.IDENTITY, (F, J, 1))
        root_pos, root_rot = np.zeros((F, 3)), np.tile(rot.IDENTITY, (F, 1))
        slices = bvh.channel_slices()
        for b_index, bj in enumerate(bvh.joints):
            index = character.joint_index(bj.name)
            joint = character.joints[index]
            data = bvh.motion[:, slices[b_index]]
            pos_cols = [k for k, ch in enumerate(bj.channels) if ch.endswith("position")]
            rot_cols = [k for k, ch in enumerate(bj.channels) if ch.endswith("rotation")]
            if joint.kind == "root":
                if len(pos_cols) != 3:
                    raise CharctlError(f"{source or name}: root joint '{bj.name}' needs 3 position channels")
                order = [bj.channels[k][0] for k in pos_cols]
                root_pos[:, ["XYZ".index(a) for a in order]] = data[:, pos_cols]
            q = _euler_channels_to_quat(bj.channels, rot_cols, data, F)
            if joint.kind == "root":
                root_rot = q
            elif joint.kind == "revolute":
                joint_rot[:, index] = hinge_quat(hinge_angle(q, joint.axis), joint.axis)
            elif joint.kind == "spherical":
                joint_rot[:, index] = q
        root_pos, root_rot = rot.apply_y_up_to_z_up(root_pos, root_rot)
        return cls(character=character, name=name, frame_time=bvh.frame_time, root_pos=root_pos,
                   root_rot=rot.normalize(root_rot), joint_rot=rot.normalize(joint_rot), loop=loop)

    def save(self, directory: Path = MOTIONS_DIR, source: str = "") -> Path:
        """Write motions/<character>_<name>.bvh and its sidecar; returns the BVH path."""
        bvh_path = directory / f"{self.character.name}_{self.name}.bvh"
        meta = {"character": self.character.name, "motion": self.name, "loop": "wrap" if self.loop else "none",
                "frames": self.num_frames, "frame_time": self.frame_time, "source": source}
        if not all(np.all(np.isfinite(a)) for a in (self.root_pos, self.root_rot, self.joint_rot)):
            raise CharctlError(f"{bvh_path}: the clip has non-finite values, nothing written")
        write_bvh(bvh_path, self.to_bvh())
        atomic_write_text(bvh_path.with_suffix(".yaml"), yaml.safe_dump(meta, sort_keys=False))
        return bvh_path


def _channels(character: Character, index: int) -> list[str]:
    joint = character.joints[index]
    if joint.kind == "root":
        return list(ROOT_CHANNELS)
    if joint.kind == "spherical":
        return list(BALL_CHANNELS)
    if joint.kind == "revolute":
        axis = int(np.argmax(np.abs(joint.axis)))
        if not np.allclose(np.abs(joint.axis), np.eye(3)[axis]):
            raise CharctlError(f"{character.urdf_path}: hinge '{joint.name}' axis must be x, y or z to write BVH")
        return [AXIS_CHANNEL[axis]]
    return []  # fixed joints carry no channels


def _euler_channels_to_quat(channels: list[str], rot_cols: list[int], data: np.ndarray, frames: int) -> np.ndarray:
    """BVH rotation channels in file order are intrinsic rotations: R = R_first * R_second * ..."""
    if not rot_cols:
        return np.tile(rot.IDENTITY, (frames, 1))
    seq = "".join(channels[k][0] for k in rot_cols)
    if len(set(seq)) != len(seq):
        q = np.tile(rot.IDENTITY, (frames, 1))
        for k in rot_cols:  # repeated axes: compose one at a time
            q = rot.quat_mul(q, rot.quat_from_euler(channels[k][0], data[:, k:k + 1]))
        return q
    return rot.quat_from_euler(seq, data[:, rot_cols])


def available_clips(directory: Path = MOTIONS_DIR) -> list[tuple[str, str]]:
    """(character, motion) for each BVH in motions/ named <character>_<motion>.bvh."""
    out = []
    for path in sorted(directory.glob("*.bvh")):
        character, _, motion = path.stem.partition("_")
        if motion:
            out.append((character, motion))
    return out


def read_sidecar(bvh_path: Path) -> dict:
    meta_path = bvh_path.with_suffix(".yaml")
    if not meta_path.exists():
        return {"loop": "none"}
    try:
        meta = yaml.safe_load(meta_path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CharctlError(f"{meta_path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if meta.get("loop", "none") not in ("wrap", "none"):
        raise CharctlError(f"{meta_path}: loop must be 'wrap' or 'none', not '{meta.get('loop')}'")
    return meta


def load_clip_file(character: Character, bvh_path: Path, name: str | None = None) -> Clip:
    meta = read_sidecar(bvh_path)
    name = name or bvh_path.stem.partition("_")[2] or bvh_path.stem
    return Clip.from_bvh(character, read_bvh(bvh_path), name=name, loop=meta.get("loop") == "wrap",
                         source=str(bvh_path))


@functools.lru_cache(maxsize=32)
def load_clip(character: str | Character, motion: str, directory: Path = MOTIONS_DIR) -> Clip:
    """The clip `motions/<character>_<motion>.bvh` (cached: clips are read-only once loaded)."""
    char = load_character(character) if isinstance(character, str) else character
    path = directory / f"{char.name}_{motion}.bvh"
    if not path.exists():
        known = ", ".join(m for c, m in available_clips(directory) if c == char.name) or "none"
        raise CharctlError(f"unknown clip '{motion}' for {char.name} ({path} not found); clips: {known}")
    return load_clip_file(char, path, name=motion)
