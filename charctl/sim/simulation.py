"""The PyBullet world: ground, one simulated character, PD control of its joints and a fast state readout.

All PyBullet calls of the environment live here (and in charctl/sim/bullet_pose.py for setting poses).
Two controllers drive the joints towards their targets (SimConfig.controller):
- stable_pd (the default, DeepMimic's): PyBullet's STABLE_PD_CONTROL with the character's gains. PyBullet computes
  its torques when the command is sent and applies them for one physics step only (sending targets once per
  control step halves the time the humanoid stays up tracking its clip: docs/benchmarks.md, "Imitation
  environment"), so the targets are built once per control step and re-sent before every substep.
- motors: PyBullet's implicit joint motors (POSITION_CONTROL), solved together with the contacts and held to the
  character's torque limits. They stay in force between physics steps, so the command is sent once per control
  step, and they stay stable at lower physics rates (docs/benchmarks.md, "Implicit joint motors"). The
  character's kp and kd do not apply; the motors' gains are the SimConfig's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pybullet_data

from charctl.character.layout import JointLayout, joint_layout
from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.sim.bullet_pose import BodyPose, apply_pose
from charctl.util.quiet import NativeOutputSilenced, import_pybullet
from charctl.util.rotations import canonical
from charctl.util.typed_config import ranged

pybullet = import_pybullet()  # without its build banner

# Bullet's collision filter of a dynamic body (btBroadphaseProxy::DefaultFilter, AllFilter), as loadURDF sets it
_DYNAMIC_GROUP, _COLLIDE_WITH_ALL = 1, -1


@dataclass
class SimConfig:
    control_hz: float = ranged(30.0, gt=0)
    # substeps = physics_hz / control_hz; chosen by measurement (docs/benchmarks.md)
    physics_hz: float = ranged(240.0, at_least="control_hz")
    solver_iterations: int = ranged(10, ge=1)
    ground_friction: float = ranged(0.9, ge=0)
    gravity: float = -9.8
    controller: Literal["stable_pd", "motors"] = "stable_pd"
    # motors: PyBullet's positionGain and velocityGain; 1 and 1 settle every joint, a higher position gain chatters
    # (docs/benchmarks.md, "Implicit joint motors")
    motor_position_gain: float = ranged(1.0, gt=0)
    motor_velocity_gain: float = ranged(1.0, ge=0)


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


def _rotate(q: tuple[float, ...], v: tuple[float, ...]) -> tuple[float, float, float]:
    """Quaternion q (xyzw) applied to vector v, in Python floats: for one vector per step, numpy's per-call
    cost is most of the work (and pybullet.multiplyTransforms computes in single precision)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)
    return vx + w * tx + y * tz - z * ty, vy + w * ty + z * tx - x * tz, vz + w * tz + x * ty - y * tx


def _joint_state_columns(layout: JointLayout) -> tuple[np.ndarray, ...]:
    """Where, in the actuated joints' states laid end to end (a ball's 4 + 3 numbers, a hinge's 1 + 1, in link
    order), each ball joint's rotation (B, 4) and velocity (B, 3) and each hinge's angle and velocity (H,) are."""
    start, where = 0, {}
    for joint, ball in zip(layout.actuated, layout.actuated_is_ball):
        size = 4 if ball else 1
        where[joint] = (np.arange(start, start + size), np.arange(start + size, start + size + (3 if ball else 1)))
        start += size + (3 if ball else 1)
    ball_rot = np.array([where[j][0] for j in layout.balls], dtype=np.int64).reshape(-1, 4)
    ball_vel = np.array([where[j][1] for j in layout.balls], dtype=np.int64).reshape(-1, 3)
    hinge_angle = np.array([where[j][0][0] for j in layout.hinges], dtype=np.int64)
    hinge_vel = np.array([where[j][1][0] for j in layout.hinges], dtype=np.int64)
    return ball_rot, ball_vel, hinge_angle, hinge_vel


class Simulation:
    def __init__(self, character: Character, config: SimConfig | None = None):
        self.character = character
        self.config = config or SimConfig()
        self.substeps = int(round(self.config.physics_hz / self.config.control_hz))
        with NativeOutputSilenced():
            self._connect()

    def body_pose(self) -> BodyPose:
        """The character's pose as PyBullet holds it (two calls): what a picture of it needs."""
        position, orientation = pybullet.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
        joints = pybullet.getJointStatesMultiDof(self.body, self.pd_indices, physicsClientId=self.client)
        return BodyPose(list(position), list(orientation), list(self.pd_indices), [list(j[0]) for j in joints])

    def _connect(self) -> None:
        character = self.character
        self.client = pybullet.connect(pybullet.DIRECT)
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
        self.layout = layout = joint_layout(character)
        self.links = list(range(character.num_joints - 1))
        # PyBullet's stable PD maps its targets to the generalised coordinates assuming the actuated joints in link
        # order (balls-then-hinges scrambles the dog's PD).
        joints = character.joints
        self.pd_indices = [i - 1 for i in layout.actuated]
        self.kp = [joints[i].kp for i in layout.actuated]
        self.kd = [joints[i].kd for i in layout.actuated]
        self.max_force = [[joints[i].torque_limit] * (3 if ball else 1)
                          for i, ball in zip(layout.actuated, layout.actuated_is_ball)]
        # where each actuated joint's numbers sit among the ball joints' or the hinges' (command building, readout)
        self._slots = [(ball, (layout.balls if ball else layout.hinges).index(i))
                       for i, ball in zip(layout.actuated, layout.actuated_is_ball)]
        self._joint_columns = _joint_state_columns(layout)
        self._zero_velocities = [[0.0, 0.0, 0.0] if ball else [0.0] for ball in layout.actuated_is_ball]
        self._identity_rot = np.tile([0.0, 0.0, 0.0, 1.0], (character.num_joints, 1))
        self._disable_default_motors()
        self._pd_command: dict | None = None
        self._command_sent = False  # motors: whether the command last set is already in force
        self.base_com = character.bodies[0].com
        self._base_com = tuple(self.base_com.tolist())
        # The world as loaded, to return to at every reset (bodies, joints, velocities).
        self._clean_state = pybullet.saveState(**p)

    def _disable_default_motors(self) -> None:
        p = dict(physicsClientId=self.client)
        for i in self.layout.balls:
            pybullet.setJointMotorControlMultiDof(self.body, i - 1, pybullet.POSITION_CONTROL,
                                                  targetPosition=[0, 0, 0, 1], positionGain=0, velocityGain=1,
                                                  force=[0, 0, 0], **p)
        for i in self.layout.hinges:
            pybullet.setJointMotorControl2(self.body, i - 1, pybullet.VELOCITY_CONTROL, force=0, **p)

    # ------------------------------------------------------------------ control
    def set_pose(self, pose: Pose) -> None:
        apply_pose(self.client, self.body, self.character, pose)

    def restart(self) -> None:
        """Back to the world as loaded (no contacts, no motor commands), before setting a new start pose."""
        p = dict(physicsClientId=self.client)
        pybullet.restoreState(self._clean_state, **p)
        # restoreState keeps the contact points the last episode left, with the impulses the solver warm-starts
        # from, so an episode's first steps would depend on the one before it. Setting a body's collision filter
        # takes it out of the collision world and puts it back, which drops them; the filter set is the one
        # PyBullet gives every dynamic body it loads (group 1, collides with all).
        for link in range(-1, self.character.num_joints - 1):
            pybullet.setCollisionFilterGroupMask(self.body, link, _DYNAMIC_GROUP, _COLLIDE_WITH_ALL, **p)
        if self._pd_command is not None and self.config.controller == "motors":
            self._disable_default_motors()  # motors outlive restoreState: back to limp, as loaded
        self._pd_command = None

    def set_pd_targets(self, joint_rot: np.ndarray, joint_vel: np.ndarray | None = None) -> None:
        """PD targets: local rotations (J, 4) for ball joints and hinges; target velocities or zero."""
        balls, layout = list(self.layout.balls), self.layout
        if joint_vel is None:
            self.set_pd_command(joint_rot[balls], layout.hinge_angles(joint_rot))
        else:
            self.set_pd_command(joint_rot[balls], layout.hinge_angles(joint_rot), joint_vel[balls],
                                layout.hinge_velocities(joint_vel))

    def set_pd_command(self, ball_rot: np.ndarray, hinge_angle: np.ndarray, ball_vel: np.ndarray | None = None,
                       hinge_vel: np.ndarray | None = None) -> None:
        """PD targets in joint coordinates: rotations (B, 4) of the ball joints, angles (H,) of the hinges
        (both in Character order), and their target velocities (local (B, 3), (H,)) or zero."""
        ball = canonical(ball_rot).tolist()  # PyBullet's stable PD does not treat q and -q as the same rotation
        hinge = np.asarray(hinge_angle, dtype=np.float64).tolist()
        targets = [ball[m] if is_ball else [hinge[m]] for is_ball, m in self._slots]
        velocities = self._zero_velocities
        if ball_vel is not None:
            ball_v = np.asarray(ball_vel, dtype=np.float64).tolist()
            hinge_v = np.asarray(hinge_vel, dtype=np.float64).tolist()
            velocities = [ball_v[m] if is_ball else [hinge_v[m]] for is_ball, m in self._slots]
        if self.config.controller == "motors":
            count, config = len(self.pd_indices), self.config
            mode, kp, kd = pybullet.POSITION_CONTROL, [config.motor_position_gain] * count, \
                [config.motor_velocity_gain] * count
        else:
            mode, kp, kd = pybullet.STABLE_PD_CONTROL, self.kp, self.kd
        self._pd_command = dict(
            bodyUniqueId=self.body, jointIndices=self.pd_indices, controlMode=mode, targetPositions=targets,
            targetVelocities=velocities, positionGains=kp, velocityGains=kd, forces=self.max_force,
            physicsClientId=self.client)
        self._command_sent = False

    def step(self) -> None:
        """One control step: `substeps` physics steps towards the targets last set."""
        command = self._pd_command
        if self.config.controller == "motors":
            if command is not None and not self._command_sent:
                pybullet.setJointMotorControlMultiDofArray(**command)
                self._command_sent = True
            for _ in range(self.substeps):
                pybullet.stepSimulation(physicsClientId=self.client)
            return
        for _ in range(self.substeps):
            if command is not None:
                pybullet.setJointMotorControlMultiDofArray(**command)
            pybullet.stepSimulation(physicsClientId=self.client)

    # ------------------------------------------------------------------ readout
    def state(self) -> SimState:
        """Read the whole character in five PyBullet calls; per-body arrays are views of one (J, 16) array."""
        p = dict(physicsClientId=self.client)
        base_pos, base_rot = pybullet.getBasePositionAndOrientation(self.body, **p)
        base_lin, base_ang = pybullet.getBaseVelocity(self.body, **p)
        # PyBullet places the base by its centre of mass; the root joint frame sits -com away from it
        arm = _rotate(base_rot, self._base_com)
        root_pos = tuple(b - a for b, a in zip(base_pos, arm))
        # columns: COM position, body rotation, joint frame origin, COM linear velocity, angular velocity
        flat = list(base_pos + base_rot + root_pos + base_lin + base_ang)
        for s in pybullet.getLinkStates(self.body, self.links, computeLinkVelocity=1, **p):
            flat += s[0] + s[5] + s[4] + s[6] + s[7]
        rows = np.array(flat).reshape(-1, 16)
        joint_rot, joint_ang_vel = self._joint_state(p)
        # the root joint origin's velocity: the base COM's minus the spin about the offset between them
        (ax, ay, az), (wx, wy, wz) = arm, base_ang
        root_lin_vel = np.array([base_lin[0] - (wy * az - wz * ay), base_lin[1] - (wz * ax - wx * az),
                                 base_lin[2] - (wx * ay - wy * ax)])
        return SimState(root_pos=np.array(root_pos), root_rot=np.array(base_rot), joint_rot=joint_rot,
                        joint_ang_vel=joint_ang_vel, link_pos=rows[:, 7:10], link_rot=rows[:, 3:7],
                        com_pos=rows[:, 0:3], com_vel=rows[:, 10:13], ang_vel=rows[:, 13:16],
                        root_lin_vel=root_lin_vel)

    def _joint_state(self, p: dict) -> tuple[np.ndarray, np.ndarray]:
        """Local joint rotations (J, 4) and angular velocities (J, 3): the actuated joints', identity/zero elsewhere."""
        joint_rot = self._identity_rot.copy()
        joint_ang_vel = np.zeros((self.character.num_joints, 3))
        if not self.pd_indices:
            return joint_rot, joint_ang_vel
        flat = []
        for position, velocity, *_ in pybullet.getJointStatesMultiDof(self.body, self.pd_indices, **p):
            flat += position + velocity
        flat = np.array(flat)
        ball_rot, ball_vel, hinge_angle, hinge_vel = (flat[c] for c in self._joint_columns)
        layout = self.layout
        joint_rot[layout.ball_index], joint_ang_vel[layout.ball_index] = ball_rot, ball_vel
        joint_rot[layout.hinge_index] = layout.hinge_rotations(hinge_angle)
        joint_ang_vel[layout.hinge_index] = hinge_vel[:, None] * layout.hinge_axes
        return joint_rot, joint_ang_vel

    def ground_contacts(self) -> set[int]:
        """Indices of the bodies touching the ground plane."""
        contacts = pybullet.getContactPoints(self.body, self.plane, physicsClientId=self.client)
        return {c[3] + 1 for c in contacts}

    def penetration_depth(self) -> float:
        """How far the character reaches below the ground surface (0 if it does not)."""
        points = pybullet.getClosestPoints(self.body, self.plane, distance=0.0, physicsClientId=self.client)
        return max([0.0] + [-c[8] for c in points])

    def close(self) -> None:
        if self.client is None:
            return
        try:
            with NativeOutputSilenced():
                pybullet.disconnect(self.client)
        except pybullet.error:
            pass
        self.client = None
