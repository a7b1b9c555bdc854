"""Where a character's actuated joints sit: the one place that knows ball joints, hinges and their action columns.

Joint indices are in Character order (joint i drives body i; PyBullet's link index is i - 1). The action is laid
out in Character order too: 3 numbers (an exponential map) per ball joint, 1 (an angle) per hinge. PyBullet's
stable PD takes its targets for the actuated joints in link order (`actuated`).

A hinge angle is the projection of the joint rotation's rotation vector on the hinge axis (`hinge_angle`): for
a rotation about the axis it is exactly the signed angle. The retargeter starts from rotations that also swing
off the axis and keeps their twist instead (`hinge_twist`, the swing-twist decomposition's angle): projecting
would mix part of the swing into the angle. Both agree on rotations about the axis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from charctl.character.model import Character
from charctl.util.rotations import quat_from_rotvec, rotvec_from_quat


def hinge_angle(q: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed angle about `axis` (..., 3) of rotations q (..., 4): the rotation vector's component on the axis."""
    return np.einsum("...k,...k->...", rotvec_from_quat(q), np.asarray(axis, dtype=np.float64))


def hinge_twist(q: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed angle in [-pi, pi) of the twist about `axis` (3,) left when the swing off the axis is dropped."""
    q = np.asarray(q, dtype=np.float64)
    angle = 2.0 * np.arctan2(q[..., :3] @ np.asarray(axis, dtype=np.float64), q[..., 3])
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def hinge_quat(angle: np.ndarray | float, axis: np.ndarray) -> np.ndarray:
    """The rotation by `angle` about `axis` (the exponential map, as for any rotation vector)."""
    angle = np.asarray(angle, dtype=np.float64)
    return quat_from_rotvec(angle[..., None] * np.asarray(axis, dtype=np.float64))


@dataclass(frozen=True, eq=False)  # holds arrays: identity equality and hashing
class JointLayout:
    balls: tuple[int, ...]  # ball (spherical) joint indices, Character order
    hinges: tuple[int, ...]  # hinge (revolute) joint indices, Character order
    hinge_axes: np.ndarray  # (H, 3) each hinge's axis in its joint frame
    actuated: tuple[int, ...]  # balls and hinges in link order (PyBullet's stable PD order)
    ball_columns: np.ndarray  # (3 B,) action columns of the ball joints' exponential maps, ball after ball
    hinge_columns: np.ndarray  # (H,) action column of each hinge's angle
    action_size: int

    @functools.cached_property
    def ball_index(self) -> np.ndarray:
        return np.array(self.balls, dtype=np.int64)

    @functools.cached_property
    def hinge_index(self) -> np.ndarray:
        return np.array(self.hinges, dtype=np.int64)

    @functools.cached_property
    def actuated_is_ball(self) -> tuple[bool, ...]:
        return tuple(i in self.balls for i in self.actuated)

    def hinge_angles(self, joint_rot: np.ndarray) -> np.ndarray:
        """Every hinge's angle (..., H) from all joints' local rotations (..., J, 4)."""
        return hinge_angle(joint_rot[..., self.hinge_index, :], self.hinge_axes)

    def hinge_velocities(self, joint_ang_vel: np.ndarray) -> np.ndarray:
        """Every hinge's angular speed about its axis (..., H) from all joints' local angular velocities (..., J, 3)."""
        return np.einsum("...hk,hk->...h", joint_ang_vel[..., self.hinge_index, :], self.hinge_axes)

    def hinge_rotations(self, angle: np.ndarray) -> np.ndarray:
        """Quaternions (H, 4) of the hinges turned by `angle` (H,) about their axes, written as sin and cos of the
        half angle (the simulator's readout, once per control step)."""
        half = 0.5 * angle
        out = np.empty((len(self.hinges), 4))
        out[:, :3] = np.sin(half)[:, None] * self.hinge_axes
        out[:, 3] = np.cos(half)
        return out


@functools.lru_cache(maxsize=None)
def joint_layout(character: Character) -> JointLayout:
    """The character's layout (cached: a Character is immutable)."""
    joints = character.joints
    balls = tuple(i for i, j in enumerate(joints) if j.kind == "spherical")
    hinges = tuple(i for i, j in enumerate(joints) if j.kind == "revolute")
    start, ball_columns, hinge_columns = 0, [], []
    for joint in joints:
        if joint.kind == "spherical":
            ball_columns += range(start, start + 3)
        elif joint.kind == "revolute":
            hinge_columns.append(start)
        start += joint.action_size
    axes = np.array([joints[i].axis for i in hinges], dtype=np.float64).reshape(-1, 3)
    return JointLayout(balls=balls, hinges=hinges, hinge_axes=axes, actuated=tuple(sorted(balls + hinges)),
                       ball_columns=np.array(ball_columns, dtype=np.int64),
                       hinge_columns=np.array(hinge_columns, dtype=np.int64), action_size=start)
