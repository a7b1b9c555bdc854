"""A character's kinematic state: what a clip produces at time t and what the simulator is set to or read from.

Conventions used everywhere in charctl:
- world is z-up, the character faces +x; joint frames are y-up (DeepMimic's), so the root rotation of a
  standing character contains a +90 degree turn about x;
- quaternions are xyzw (scipy and PyBullet order);
- `joint_rot[i]` is joint i's rotation relative to its parent frame, for every joint in Character order;
  entry 0 (the root) is unused and kept at identity; hinges are rotations about their axis, fixed joints identity;
- `joint_ang_vel[i]` is joint i's angular velocity in its own (child) frame; entry 0 unused (zeros);
- root velocities are in the world frame.
Arrays may carry leading batch dimensions (frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pose:
    root_pos: np.ndarray  # (..., 3)
    root_rot: np.ndarray  # (..., 4) xyzw
    joint_rot: np.ndarray  # (..., J, 4) xyzw, local
    root_lin_vel: np.ndarray | None = None  # (..., 3) world
    root_ang_vel: np.ndarray | None = None  # (..., 3) world
    joint_ang_vel: np.ndarray | None = None  # (..., J, 3) local

    @property
    def has_velocities(self) -> bool:
        return self.root_lin_vel is not None and self.root_ang_vel is not None and self.joint_ang_vel is not None
