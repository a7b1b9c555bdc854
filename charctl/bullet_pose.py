"""Set a PyBullet body to a Pose (positions and, when the pose has them, velocities)."""

from __future__ import annotations

import functools

import numpy as np
import pybullet

from charctl.character import Character
from charctl.pose import Pose
from charctl.rotations import hinge_angle, quat_rotate


@functools.lru_cache(maxsize=None)
def movable_joints(character: Character) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ball joint indices, hinge joint indices) in Character order; PyBullet link index = index - 1."""
    return tuple(character.indices_of("spherical").tolist()), tuple(character.indices_of("revolute").tolist())


def apply_pose(client_id: int, body_id: int, character: Character, pose: Pose) -> None:
    balls, hinges = movable_joints(character)
    # PyBullet places and moves the base by its centre of mass (the URDF inertial origin), not its joint frame.
    com_offset = quat_rotate(pose.root_rot, character.bodies[0].com)
    pybullet.resetBasePositionAndOrientation(body_id, (pose.root_pos + com_offset).tolist(), pose.root_rot.tolist(),
                                             physicsClientId=client_id)
    values = [pose.joint_rot[i].tolist() for i in balls]
    values += [[float(hinge_angle(pose.joint_rot[i], character.joints[i].axis))] for i in hinges]
    indices = [i - 1 for i in balls + hinges]
    if pose.has_velocities:
        base_lin = pose.root_lin_vel + np.cross(pose.root_ang_vel, com_offset)
        pybullet.resetBaseVelocity(body_id, base_lin.tolist(), pose.root_ang_vel.tolist(), physicsClientId=client_id)
        velocities = [pose.joint_ang_vel[i].tolist() for i in balls]
        velocities += [[float(pose.joint_ang_vel[i] @ character.joints[i].axis)] for i in hinges]
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values, targetVelocities=velocities,
                                          physicsClientId=client_id)
    else:
        pybullet.resetBaseVelocity(body_id, [0, 0, 0], [0, 0, 0], physicsClientId=client_id)
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values,
                                          targetVelocities=[[0.0] * len(v) for v in values], physicsClientId=client_id)
