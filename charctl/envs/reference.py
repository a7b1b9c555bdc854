"""The reference character: its state from a clip pose (the same fields the simulator reads out), and the
track of reference states an imitation episode follows.

An episode asks for the reference at its control times start + k dt only (reward, PD target velocities,
drivers that take their targets from the clip). `ReferenceTrack` evaluates exactly clip.sample(t) and
reference_state there, for a chunk of upcoming steps in one batch: on a single pose numpy's per-call cost
dominates, in a batch it is a few microseconds per step. Interpolating states cached at the clip's frames
would be cheaper still but is not exact: a character set exactly to the reference pose would not score 1
(the measurements: docs/benchmarks.md, "Imitation environment").
"""

from __future__ import annotations

import numpy as np

from charctl.character.kinematics import body_kinematics
from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.envs.reward import RewardFeatures, features_from_arrays, reward_features
from charctl.motion.clip import Clip
from charctl.sim.simulation import SimState
from charctl.util.rotations import IDENTITY, quat_from_matrix, quat_mul, quat_rotate

CHUNK = 32  # control steps evaluated together: ~1 s at 30 Hz
FIRST_CHUNK_MIN = 8


def reference_state(character: Character, pose: Pose) -> SimState:
    """The state of a character in `pose` (with velocities), batched over any leading dimensions."""
    body = body_kinematics(character, pose)
    joint_rot = pose.joint_rot.copy()
    joint_rot[..., 0, :] = IDENTITY
    return SimState(root_pos=pose.root_pos, root_rot=pose.root_rot, joint_rot=joint_rot,
                    joint_ang_vel=pose.joint_ang_vel, link_pos=body.joint_pos, link_rot=quat_from_matrix(body.body_rot),
                    com_pos=body.com_pos, com_vel=body.com_vel, ang_vel=body.ang_vel, root_lin_vel=pose.root_lin_vel)


def offset_pose(pose: Pose, turn: np.ndarray, shift: np.ndarray) -> Pose:
    """The pose turned about the world z axis by quaternion `turn`, then moved by `shift` (batched too)."""
    return Pose(root_pos=quat_rotate(turn, pose.root_pos) + shift, root_rot=quat_mul(turn, pose.root_rot),
                joint_rot=pose.joint_rot, root_lin_vel=quat_rotate(turn, pose.root_lin_vel),
                root_ang_vel=quat_rotate(turn, pose.root_ang_vel), joint_ang_vel=pose.joint_ang_vel)


def _pose_row(pose: Pose, row: int) -> Pose:
    return Pose(root_pos=pose.root_pos[row].copy(), root_rot=pose.root_rot[row].copy(),
                joint_rot=pose.joint_rot[row].copy(), root_lin_vel=pose.root_lin_vel[row].copy(),
                root_ang_vel=pose.root_ang_vel[row].copy(), joint_ang_vel=pose.joint_ang_vel[row].copy())


class ReferenceTrack:
    """The clip's poses and reward features at an episode's control times, moved by the episode's offset.

    The offset (a turn about z, then a horizontal shift) is what the env's per-cycle re-sync puts on the
    clip; it applies to every query from the moment it is set, as if the clip were sampled afresh.
    Times off the control grid are evaluated one at a time, with the same result.
    """

    def __init__(self, character: Character, clip: Clip, dt: float, chunk: int = CHUNK):
        self.character, self.clip, self.dt, self.chunk = character, clip, dt, chunk
        self._reached = chunk - 1  # furthest step asked for this episode
        self.restart(0.0)

    def restart(self, start_time: float) -> None:
        """A new episode starting at `start_time`, offset cleared."""
        # An episode's first chunk covers as many steps as the last episode lasted (within [8, chunk]), each
        # further one twice the one before: early falls end episodes after a few steps, and a batch costs
        # ~0.3 ms however small it is.
        self._opening = min(self.chunk, max(FIRST_CHUNK_MIN, self._reached + 1))
        self._reached = 0
        self.start = float(start_time)
        self.turn, self.shift = IDENTITY.copy(), np.zeros(3)
        self._first = -1  # first step of the evaluated chunk; -1: none
        self._poses = self._features = None  # the chunk as sampled from the clip
        self._moved: tuple[Pose, RewardFeatures] | None = None  # the same, offset applied

    def move(self, turn: np.ndarray, shift: np.ndarray) -> None:
        self.turn, self.shift = np.asarray(turn, dtype=np.float64), np.asarray(shift, dtype=np.float64)
        self._moved = None

    def pose(self, t: float) -> Pose:
        """The reference pose (with velocities) at time t."""
        step = self._step(t)
        if step is None:
            return offset_pose(self.clip.sample(t), self.turn, self.shift)
        poses, _ = self._chunk(step)
        return _pose_row(poses, step - self._first)

    def features(self, t: float) -> RewardFeatures:
        """The reference's reward features at time t (arrays shared with the track: do not modify)."""
        step = self._step(t)
        if step is None:
            state = reference_state(self.character, offset_pose(self.clip.sample(t), self.turn, self.shift))
            return reward_features(self.character, state)
        _, features = self._chunk(step)
        return features.row(step - self._first)

    def _step(self, t: float) -> int | None:
        """k if t is the control time start + k dt (to rounding: the env adds dt up), else None."""
        k = round((t - self.start) / self.dt)
        return k if k >= 0 and abs(self.start + k * self.dt - t) < 1e-9 else None

    def _chunk(self, step: int) -> tuple[Pose, RewardFeatures]:
        self._reached = max(self._reached, step)
        if self._first < 0 or not self._first <= step < self._first + len(self._poses.root_pos):
            size = self._opening if self._first < 0 else min(self.chunk, 2 * len(self._poses.root_pos))
            times = self.start + (step + np.arange(size)) * self.dt
            self._poses = pose = self.clip.sample(times)
            body = body_kinematics(self.character, pose)  # what reference_state computes, less body rotations
            self._features = features_from_arrays(self.character, pose.root_pos, pose.root_rot, pose.root_lin_vel,
                                                  pose.joint_rot, pose.joint_ang_vel, pose.root_ang_vel,
                                                  body.joint_pos, body.com_vel)
            self._first, self._moved = step, None
        if self._moved is None:
            if np.array_equal(self.turn, IDENTITY) and not self.shift.any():
                self._moved = self._poses, self._features
            else:
                self._moved = (offset_pose(self._poses, self.turn, self.shift),
                               self._features.moved(self.turn, self.shift))
        return self._moved
