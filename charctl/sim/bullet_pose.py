"""Set a PyBullet body to a Pose (positions and, when the pose has them, velocities)."""

from __future__ import annotations

import functools

import numpy as np
import pybullet

from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.util.rotations import quat_rotate, rotvec_from_quat


@functools.lru_cache(maxsize=None)
def movable_joints(character: Character) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ball joint indices, hinge joint indices) in Character order; PyBullet link index = index - 1."""
    return tuple(character.indices_of("spherical").tolist()), tuple(character.indices_of("revolute").tolist())


@functools.lru_cache(maxsize=None)
def _hinge_axes(character: Character) -> np.ndarray:
    hinges = movable_joints(character)[1]
    return np.array([character.joints[i].axis for i in hinges], dtype=np.float64).reshape(-1, 3)


def apply_pose(client_id: int, body_id: int, character: Character, pose: Pose) -> None:
    balls, hinges = movable_joints(character)
    # PyBullet places and moves the base by its centre of mass (the URDF inertial origin), not its joint frame.
    com_offset = quat_rotate(pose.root_rot, character.bodies[0].com)
    pybullet.resetBasePositionAndOrientation(body_id, (pose.root_pos + com_offset).tolist(), pose.root_rot.tolist(),
                                             physicsClientId=client_id)
    axes = _hinge_axes(character)
    values = pose.joint_rot[list(balls)].tolist()
    values += [[a] for a in (rotvec_from_quat(pose.joint_rot[list(hinges)]) * axes).sum(axis=1).tolist()]
    indices = [i - 1 for i in balls + hinges]
    if pose.has_velocities:
        base_lin = pose.root_lin_vel + np.cross(pose.root_ang_vel, com_offset)
        pybullet.resetBaseVelocity(body_id, base_lin.tolist(), pose.root_ang_vel.tolist(), physicsClientId=client_id)
        velocities = pose.joint_ang_vel[list(balls)].tolist()
        velocities += [[v] for v in (pose.joint_ang_vel[list(hinges)] * axes).sum(axis=1).tolist()]
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values, targetVelocities=velocities,
                                          physicsClientId=client_id)
    else:
        pybullet.resetBaseVelocity(body_id, [0, 0, 0], [0, 0, 0], physicsClientId=client_id)
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values,
                                          targetVelocities=[[0.0] * len(v) for v in values], physicsClientId=client_id)
