"""Set a PyBullet body to a Pose (positions and, when the pose has them, velocities)."""

from __future__ import annotations

import numpy as np

from charctl.character.layout import joint_layout
from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.util.quiet import import_pybullet
from charctl.util.rotations import quat_rotate

pybullet = import_pybullet()  # without its build banner


def apply_pose(client_id: int, body_id: int, character: Character, pose: Pose) -> None:
    layout = joint_layout(character)
    balls = list(layout.balls)
    # PyBullet places and moves the base by its centre of mass (the URDF inertial origin), not its joint frame.
    com_offset = quat_rotate(pose.root_rot, character.bodies[0].com)
    pybullet.resetBasePositionAndOrientation(body_id, (pose.root_pos + com_offset).tolist(), pose.root_rot.tolist(),
                                             physicsClientId=client_id)
    values = pose.joint_rot[balls].tolist()
    values += [[a] for a in layout.hinge_angles(pose.joint_rot).tolist()]
    indices = [i - 1 for i in layout.balls + layout.hinges]
    if pose.has_velocities:
        base_lin = pose.root_lin_vel + np.cross(pose.root_ang_vel, com_offset)
        pybullet.resetBaseVelocity(body_id, base_lin.tolist(), pose.root_ang_vel.tolist(), physicsClientId=client_id)
        velocities = pose.joint_ang_vel[balls].tolist()
        velocities += [[v] for v in layout.hinge_velocities(pose.joint_ang_vel).tolist()]
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values, targetVelocities=velocities,
                                          physicsClientId=client_id)
    else:
        pybullet.resetBaseVelocity(body_id, [0, 0, 0], [0, 0, 0], physicsClientId=client_id)
        pybullet.resetJointStatesMultiDof(body_id, indices, targetValues=values,
                                          targetVelocities=[[0.0] * len(v) for v in values], physicsClientId=client_id)
