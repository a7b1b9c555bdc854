"""The PyBullet world: ground, one simulated character, stable PD control and a fast state readout.

All PyBullet calls of the environment live here (and in charctl/bullet_pose.py for setting poses).
PyBullet's STABLE_PD_CONTROL computes its torques when the command is sent and applies them for one physics
step only (measured: sending targets once per 8-substep control step halves the time the humanoid stays up
tracking its clip, 0.40 s vs 0.82 s), so the targets are built once per control step and re-sent before
every substep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet
import pybullet_data

from charctl.bullet_pose import apply_pose, movable_joints
from charctl.character import Character
from charctl.pose import Pose
from charctl.rotations import canonical, quat_rotate, rotvec_from_quat


@dataclass
class SimConfig:
    control_hz: float = 30.0
    physics_hz: float = 240.0  # substeps = physics_hz / control_hz
    solver_iterations: int = 10
    ground_friction: float = 0.9
    gravity: float = -9.8


@dataclass
class SimState:
    """Everything the observation and reward read, world frame. Bodies in Character order."""

    root_pos: np.ndarray  # (3,) root joint frame
    root_rot: np.ndarray  # (4,)
    joint_rot: np.ndarray  # (J, 4) local
    joint_ang_vel: np.ndarray  # (J, 3) local
    link_pos: np.ndarray  # (J, 3) joint frame origins
    link_rot: np.ndarray  # (J, 4) body rotations
    com_pos: np.ndarray  # (J, 3) body centres of mass
    com_vel: np.ndarray  # (J, 3) body COM linear velocities
    ang_vel: np.ndarray  # (J, 3) body angular velocities
    root_lin_vel: np.ndarray  # (3,) of the root joint frame origin


class Simulation:
    def __init__(self, character: Character, config: SimConfig | None = None, gui: bool = False):
        self.character = character
        self.config = config or SimConfig()
        self.substeps = int(round(self.config.physics_hz / self.config.control_hz))
        self.client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
        p = dict(physicsClientId=self.client)
        pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), **p)
        pybullet.setGravity(0, 0, self.config.gravity, **p)
        pybullet.setPhysicsEngineParameter(fixedTimeStep=1.0 / self.config.physics_hz,
                                           numSolverIterations=self.config.solver_iterations, numSubSteps=0,
                                           deterministicOverlappingPairs=1, **p)
        self.plane = pybullet.loadURDF("plane.urdf", **p)
        pybullet.changeDynamics(self.plane, -1, lateralFriction=self.config.ground_friction, **p)
        flags = pybullet.URDF_USE_INERTIA_FROM_FILE | pybullet.URDF_USE_SELF_COLLISION | \
            pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS  # no body collides with its parent (or ancestors)
        self.body = pybullet.loadURDF(str(character.urdf_path), flags=flags, **p)
        for link in range(-1, character.num_joints - 1):
            pybullet.changeDynamics(self.body, link, lateralFriction=self.config.ground_friction,
                                    linearDamping=0, angularDamping=0, **p)
        self.balls, self.hinges = movable_joints(character)
        self.links = list(range(character.num_joints - 1))
        # Actuated joints in link order: PyBullet's stable PD maps its targets to the generalised coordinates
        # assuming that order (balls-then-hinges scrambles the dog's PD).
        joints = character.joints
        self.actuated = sorted(self.balls + self.hinges)
        self.pd_indices = [i - 1 for i in self.actuated]
        self.is_ball = [joints[i].kind == "spherical" for i in self.actuated]
        self.kp = [joints[i].kp for i in self.actuated]
        self.kd = [joints[i].kd for i in self.actuated]
        self.max_force = [[joints[i].torque_limit] * (3 if ball else 1) for i, ball in zip(self.actuated, self.is_ball)]
        self.hinge_axes = np.stack([joints[i].axis for i in self.hinges]) if self.hinges else np.zeros((0, 3))
        self._disable_default_motors()
        self._pd_command: dict | None = None
        self.base_com = character.bodies[0].com
        # A fresh world to return to: without it, contact caches (solver warm starts) carried over from the last
        # episode make the same seed and actions give different results after a reset.
        self._clean_state = pybullet.saveState(**p)

    def _disable_default_motors(self) -> None:
        p = dict(physicsClientId=self.client)
        for i in self.balls:
            pybullet.setJointMotorControlMultiDof(self.body, i - 1, pybullet.POSITION_CONTROL, targetPosition=[0, 0, 0, 1],
                                                  positionGain=0, velocityGain=1, force=[0, 0, 0], **p)
        for i in self.hinges:
            pybullet.setJointMotorControl2(self.body, i - 1, pybullet.VELOCITY_CONTROL, force=0, **p)

    # ------------------------------------------------------------------ control
    def set_pose(self, pose: Pose) -> None:
        apply_pose(self.client, self.body, self.character, pose)

    def restart(self) -> None:
        """Back to the world as loaded (no contacts, no motor commands), before setting a new start pose."""
        pybullet.restoreState(self._clean_state, physicsClientId=self.client)
        self._pd_command = None

    def load_extra_body(self, urdf_path: str, **kwargs) -> int:
        """Load another body (e.g. a display-only ghost) and make it part of the world `restart` returns to."""
        body = pybullet.loadURDF(urdf_path, physicsClientId=self.client, **kwargs)
        pybullet.removeState(self._clean_state, physicsClientId=self.client)
        self._clean_state = pybullet.saveState(physicsClientId=self.client)
        return body

    def set_pd_targets(self, joint_rot: np.ndarray, joint_vel: np.ndarray | None = None) -> None:
        """Stable-PD targets: local rotations (J, 4) for ball joints and hinges; target velocities or zero."""
        hinge_angle = {}
        if self.hinges:
            angles = np.einsum("hk,hk->h", rotvec_from_quat(joint_rot[list(self.hinges)]), self.hinge_axes)
            hinge_angle = dict(zip(self.hinges, angles.tolist()))
        joint_rot = canonical(joint_rot)  # PyBullet's stable PD does not treat q and -q as the same rotation
        targets = [joint_rot[i].tolist() if ball else [hinge_angle[i]] for i, ball in zip(self.actuated, self.is_ball)]
        if joint_vel is None:
            velocities = [[0.0, 0.0, 0.0] if ball else [0.0] for ball in self.is_ball]
        else:
            velocities = [joint_vel[i].tolist() if ball else [float(joint_vel[i] @ self.character.joints[i].axis)]
                          for i, ball in zip(self.actuated, self.is_ball)]
        self._pd_command = dict(
            bodyUniqueId=self.body, jointIndices=self.pd_indices, controlMode=pybullet.STABLE_PD_CONTROL,
            targetPositions=targets, targetVelocities=velocities, positionGains=self.kp, velocityGains=self.kd,
            forces=self.max_force, physicsClientId=self.client)

    def step(self) -> None:
        """One control step: `substeps` physics steps, stable PD towards the targets last set."""
        command = self._pd_command
        for _ in range(self.substeps):
            if command is not None:
                pybullet.setJointMotorControlMultiDofArray(**command)
            pybullet.stepSimulation(physicsClientId=self.client)

    # ------------------------------------------------------------------ readout
    def state(self) -> SimState:
        p = dict(physicsClientId=self.client)
        J = self.character.num_joints
        base_pos, base_rot = pybullet.getBasePositionAndOrientation(self.body, **p)
        base_lin, base_ang = pybullet.getBaseVelocity(self.body, **p)
        links = pybullet.getLinkStates(self.body, self.links, computeLinkVelocity=1, **p)
        root_rot = np.array(base_rot)
        com_offset = quat_rotate(root_rot, self.base_com)
        com_pos = np.empty((J, 3))
        com_vel = np.empty((J, 3))
        ang_vel = np.empty((J, 3))
        link_pos = np.empty((J, 3))
        link_rot = np.empty((J, 4))
        com_pos[0], com_vel[0], ang_vel[0] = base_pos, base_lin, base_ang
        link_pos[0] = com_pos[0] - com_offset
        link_rot[0] = root_rot
        for k, s in enumerate(links, start=1):
            com_pos[k], link_rot[k], link_pos[k], com_vel[k], ang_vel[k] = s[0], s[5], s[4], s[6], s[7]
        joint_rot = np.tile([0.0, 0.0, 0.0, 1.0], (J, 1))
        joint_ang_vel = np.zeros((J, 3))
        if self.pd_indices:
            states = pybullet.getJointStatesMultiDof(self.body, self.pd_indices, **p)
            for (position, velocity, *_), i, ball in zip(states, self.actuated, self.is_ball):
                if ball:
                    joint_rot[i] = position
                    joint_ang_vel[i] = velocity
                else:
                    axis = self.character.joints[i].axis
                    joint_rot[i, :3] = np.sin(0.5 * position[0]) * axis
                    joint_rot[i, 3] = np.cos(0.5 * position[0])
                    joint_ang_vel[i] = velocity[0] * axis
        root_lin_vel = com_vel[0] - np.cross(ang_vel[0], com_offset)
        return SimState(root_pos=link_pos[0].copy(), root_rot=root_rot, joint_rot=joint_rot,
                        joint_ang_vel=joint_ang_vel, link_pos=link_pos, link_rot=link_rot, com_pos=com_pos,
                        com_vel=com_vel, ang_vel=ang_vel, root_lin_vel=root_lin_vel)

    def ground_contacts(self) -> set[int]:
        """Indices of the bodies touching the ground plane."""
        contacts = pybullet.getContactPoints(self.body, self.plane, physicsClientId=self.client)
        return {c[3] + 1 for c in contacts}

    def penetration_depth(self) -> float:
        """How far the character reaches below the ground surface (0 if it does not)."""
        points = pybullet.getClosestPoints(self.body, self.plane, distance=0.0, physicsClientId=self.client)
        return max([0.0] + [-c[8] for c in points])

    def close(self) -> None:
        if self.client is not None:
            try:
                pybullet.disconnect(self.client)
            except pybullet.error:
                pass
            self.client = None
