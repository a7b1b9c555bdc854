"""Set a PyBullet body to a Pose (positions and, when the pose has them, velocities)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charctl.character.layout import joint_layout
from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.util.quiet import import_pybullet
from charctl.util.rotations import quat_rotate

pybullet = import_pybullet()  # without its build banner


@dataclass
class BodyPose:
    """A body's pose in PyBullet's own terms, plain lists (cheap to send to another process): the base's centre of
    mass position and orientation, and the positions of the joints `joints` (a ball's 4 numbers, a hinge's 1)."""

    position: list[float]
    orientation: list[float]
    joints: list[int]
    values: list[list[float]]


def _com_offset(character: Character, pose: Pose) -> np.ndarray:
    # PyBullet places and moves the base by its centre of mass (the URDF inertial origin), not its joint frame.
    return quat_rotate(pose.root_rot, character.bodies[0].com)


def body_pose(character: Character, pose: Pose) -> BodyPose:
    layout = joint_layout(character)
    com_offset = _com_offset(character, pose)
    values = pose.joint_rot[list(layout.balls)].tolist()
    values += [[a] for a in layout.hinge_angles(pose.joint_rot).tolist()]
    return BodyPose(position=(pose.root_pos + com_offset).tolist(), orientation=pose.root_rot.tolist(),
                    joints=[i - 1 for i in layout.balls + layout.hinges], values=values)


def set_body_pose(client_id: int, body_id: int, pose: BodyPose) -> None:
    """Positions only, in two calls: all a picture needs (velocities stay as they are)."""
    pybullet.resetBasePositionAndOrientation(body_id, pose.position, pose.orientation, physicsClientId=client_id)
    pybullet.resetJointStatesMultiDof(body_id, pose.joints, targetValues=pose.values, physicsClientId=client_id)


def apply_pose(client_id: int, body_id: int, character: Character, pose: Pose) -> None:
    target = body_pose(character, pose)
    pybullet.resetBasePositionAndOrientation(body_id, target.position, target.orientation, physicsClientId=client_id)
    if pose.has_velocities:
        layout = joint_layout(character)
        com_offset = _com_offset(character, pose)
        base_lin = pose.root_lin_vel + np.cross(pose.root_ang_vel, com_offset)
        pybullet.resetBaseVelocity(body_id, base_lin.tolist(), pose.root_ang_vel.tolist(), physicsClientId=client_id)
        velocities = pose.joint_ang_vel[list(layout.balls)].tolist()
        velocities += [[v] for v in layout.hinge_velocities(pose.joint_ang_vel).tolist()]
    else:
        pybullet.resetBaseVelocity(body_id, [0, 0, 0], [0, 0, 0], physicsClientId=client_id)
        velocities = [[0.0] * len(v) for v in target.values]
    pybullet.resetJointStatesMultiDof(body_id, target.joints, targetValues=target.values, targetVelocities=velocities,
                                      physicsClientId=client_id)
