"""The reference character's state from a clip pose: the same fields the simulator reads out."""

from __future__ import annotations

import numpy as np

from charctl.character import Character
from charctl.kinematics import body_com_positions, body_com_velocities, body_velocities, forward_kinematics
from charctl.pose import Pose
from charctl.sim import SimState


def reference_state(character: Character, pose: Pose) -> SimState:
    pos, rot = forward_kinematics(character, pose.root_pos, pose.root_rot, pose.joint_rot)
    lin, ang = body_velocities(character, pose, pos, rot)
    joint_rot = pose.joint_rot.copy()
    joint_rot[0] = (0.0, 0.0, 0.0, 1.0)
    return SimState(root_pos=pose.root_pos, root_rot=pose.root_rot, joint_rot=joint_rot,
                    joint_ang_vel=pose.joint_ang_vel, link_pos=pos, link_rot=rot,
                    com_pos=body_com_positions(character, pos, rot),
                    com_vel=body_com_velocities(character, pos, rot, lin, ang), ang_vel=ang,
                    root_lin_vel=pose.root_lin_vel)


def offset_pose(pose: Pose, turn: np.ndarray, shift: np.ndarray) -> Pose:
    """The pose turned about the world z axis by quaternion `turn`, then moved by `shift`."""
    from charctl.rotations import quat_mul, quat_rotate

    return Pose(root_pos=quat_rotate(turn, pose.root_pos) + shift, root_rot=quat_mul(turn, pose.root_rot),
                joint_rot=pose.joint_rot, root_lin_vel=quat_rotate(turn, pose.root_lin_vel),
                root_ang_vel=quat_rotate(turn, pose.root_ang_vel), joint_ang_vel=pose.joint_ang_vel)
