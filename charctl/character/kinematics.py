"""Forward kinematics of a character, vectorised over any leading batch dimensions (frames).

Joints are processed one tree depth at a time, so the Python loop runs over the depth of the tree (7-9
levels), not over the joints; all the arithmetic is numpy on whole levels. `body_kinematics` (the reference
character's whole state, used by the imitation env) keeps only the rotations in that loop, as 3x3 matrices
(one matmul per level); positions and velocities are sums over each joint's path from the root, one matrix
product for all joints.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.util.rotations import quat_mul, quat_rotate, quat_to_matrix


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
def _paths(character: Character) -> np.ndarray:
    """(J, J) 0/1 matrix: row j marks the joints on the path from the root to j (j included, the root not)."""
    J = character.num_joints
    paths = np.zeros((J, J))
    for j in range(1, J):
        paths[j] = paths[character.parents[j]]
        paths[j, j] = 1.0
    return paths


@functools.lru_cache(maxsize=None)
def _origin_rots(character: Character) -> np.ndarray:
    return np.stack([j.origin_rot for j in character.joints])


@functools.lru_cache(maxsize=None)
def _origin_matrices(character: Character) -> np.ndarray | None:
    """Fixed joint frame rotations as matrices, None when all are identity (DeepMimic's characters)."""
    rots = _origin_rots(character)
    return None if np.array_equal(rots, np.tile([0.0, 0.0, 0.0, 1.0], (len(rots), 1))) else quat_to_matrix(rots)


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


@dataclass
class BodyKinematics:
    """World-frame state of every body, from a pose with velocities (arrays may carry batch dimensions)."""

    joint_pos: np.ndarray  # (..., J, 3) joint frame origins
    body_rot: np.ndarray  # (..., J, 3, 3) rotation matrices
    com_pos: np.ndarray  # (..., J, 3)
    com_vel: np.ndarray  # (..., J, 3)
    ang_vel: np.ndarray  # (..., J, 3)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross for (..., 3) arrays, without its axis handling (a third of the cost on small arrays)."""
    a0, a1, a2, b0, b1, b2 = a[..., 0], a[..., 1], a[..., 2], b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def body_kinematics(character: Character, pose: Pose) -> BodyKinematics:
    """Positions, rotations and velocities of all bodies: forward_kinematics, body_velocities and the COM
    functions above in one pass (same results to rounding), batched over frames."""
    if not pose.has_velocities:
        raise ValueError("pose has no velocities")
    parents, paths = character.parents, _paths(character)
    local = quat_to_matrix(pose.joint_rot)
    if _origin_matrices(character) is not None:
        local = _origin_matrices(character) @ local  # fixed frame rotation, then the joint's own
    rot = np.empty_like(local)
    rot[..., 0, :, :] = quat_to_matrix(pose.root_rot)
    levels = _levels(character)
    for idx, par in zip(levels.joints, levels.parents):
        rot[..., idx, :, :] = rot[..., par, :, :] @ local[..., idx, :, :]
    # each joint's offset in the world (row 0 is unused: paths never include the root)
    step = np.einsum("...jab,jb->...ja", rot[..., parents, :, :], character.offsets)
    joint_pos = pose.root_pos[..., None, :] + paths @ step
    spin = np.einsum("...jab,...jb->...ja", rot, pose.joint_ang_vel)  # each joint's own spin, world frame
    ang_vel = pose.root_ang_vel[..., None, :] + paths @ spin
    # a joint origin moves with its parent's origin plus the parent's spin about the offset between them
    lin = pose.root_lin_vel[..., None, :] + paths @ _cross(ang_vel[..., parents, :], step)
    arm = np.einsum("...jab,jb->...ja", rot, _coms(character))
    return BodyKinematics(joint_pos=joint_pos, body_rot=rot, com_pos=joint_pos + arm,
                          com_vel=lin + _cross(ang_vel, arm), ang_vel=ang_vel)
