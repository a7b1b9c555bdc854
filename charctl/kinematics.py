"""Forward kinematics of a character, vectorised over any leading batch dimensions (frames).

Joints are processed one tree depth at a time, so the Python loop runs over the depth of the tree (7-9
levels), not over the joints; all the arithmetic is numpy on whole levels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from charctl.character import Character
from charctl.pose import Pose
from charctl.rotations import quat_mul, quat_rotate


@dataclass(frozen=True)
class _Levels:
    joints: tuple[np.ndarray, ...]  # joint indices at each depth (depth 1, 2, ...)
    parents: tuple[np.ndarray, ...]


@functools.lru_cache(maxsize=None)
def _levels(character: Character) -> _Levels:
    depth = np.zeros(character.num_joints, dtype=np.int64)
    for i in range(1, character.num_joints):
        depth[i] = depth[character.parents[i]] + 1
    levels = [np.flatnonzero(depth == d) for d in range(1, int(depth.max()) + 1)]
    return _Levels(joints=tuple(levels), parents=tuple(character.parents[lv] for lv in levels))


@functools.lru_cache(maxsize=None)
def _origin_rots(character: Character) -> np.ndarray:
    return np.stack([j.origin_rot for j in character.joints])


@functools.lru_cache(maxsize=None)
def _coms(character: Character) -> np.ndarray:
    return np.stack([b.com for b in character.bodies])


def forward_kinematics(character: Character, root_pos: np.ndarray, root_rot: np.ndarray,
                       joint_rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World position (..., J, 3) of every joint frame's origin and world rotation (..., J, 4) of every body."""
    batch = np.shape(root_pos)[:-1]
    J = character.num_joints
    pos = np.empty(batch + (J, 3))
    rot = np.empty(batch + (J, 4))
    pos[..., 0, :] = root_pos
    rot[..., 0, :] = root_rot
    local = quat_mul(_origin_rots(character), joint_rot)  # fixed frame rotation, then the joint's own
    levels = _levels(character)
    for idx, par in zip(levels.joints, levels.parents):
        parent_rot = rot[..., par, :]
        pos[..., idx, :] = pos[..., par, :] + quat_rotate(parent_rot, character.offsets[idx])
        rot[..., idx, :] = quat_mul(parent_rot, local[..., idx, :])
    return pos, rot


def body_com_positions(character: Character, joint_pos: np.ndarray, body_rot: np.ndarray) -> np.ndarray:
    """World position of each body's centre of mass (..., J, 3)."""
    return joint_pos + quat_rotate(body_rot, _coms(character))


def center_of_mass(character: Character, com_pos: np.ndarray) -> np.ndarray:
    masses = character.masses
    return np.einsum("...jk,j->...k", com_pos, masses) / masses.sum()


def body_velocities(character: Character, pose: Pose, joint_pos: np.ndarray,
                    body_rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World linear velocity of each joint frame's origin and world angular velocity of each body.

    A body's angular velocity is its parent's plus its joint's (local) angular velocity rotated into the
    world; a joint origin moves with its parent's origin plus the parent's spin about it.
    """
    if not pose.has_velocities:
        raise ValueError("pose has no velocities")
    batch = np.shape(pose.root_pos)[:-1]
    J = character.num_joints
    lin = np.empty(batch + (J, 3))
    ang = np.empty(batch + (J, 3))
    lin[..., 0, :] = pose.root_lin_vel
    ang[..., 0, :] = pose.root_ang_vel
    spin_world = quat_rotate(body_rot, pose.joint_ang_vel)
    levels = _levels(character)
    for idx, par in zip(levels.joints, levels.parents):
        arm = joint_pos[..., idx, :] - joint_pos[..., par, :]
        lin[..., idx, :] = lin[..., par, :] + np.cross(ang[..., par, :], arm)
        ang[..., idx, :] = ang[..., par, :] + spin_world[..., idx, :]
    return lin, ang


def body_com_velocities(character: Character, joint_pos: np.ndarray, body_rot: np.ndarray, lin: np.ndarray,
                        ang: np.ndarray) -> np.ndarray:
    """World linear velocity of each body's centre of mass."""
    arm = body_com_positions(character, joint_pos, body_rot) - joint_pos
    return lin + np.cross(ang, arm)
