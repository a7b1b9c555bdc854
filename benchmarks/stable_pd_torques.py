"""Stable PD (Tan, Liu and Turk 2011; DeepMimic's implicit PD) computed in numpy and applied as joint torques: the
`torque_pdN` variant of benchmarks/physics_variants.py (docs/benchmarks.md, "Stable PD computed in numpy").

PyBullet's STABLE_PD_CONTROL rebuilds the character's dynamics inside every command, and a command holds for one
physics step, so the dog (82 DoF, 24 substeps) pays for 24 of them per control step. Here the dynamics,
A = M + dt Kd and the bias forces c (calculateMassMatrix, calculateInverseDynamics), are taken N times per control
step, and before each substep the PD terms are recomputed from the joints' state:

    p = Kp (target - (q + dt qdot)),   d = Kd (target_vel - qdot)
    qddot = A^-1 (-c + [0_base, p + d]),   tau = p + d - dt Kd qddot     (clipped to the torque limits)

The floating base has no gains but is part of A. PyBullet's spherical joint velocities are in the child frame
(checked by finite differences), so a ball's error is log(conj(q) target) - dt qdot, to first order in dt.
"""

from __future__ import annotations

import numpy as np

from charctl.util.quiet import import_pybullet
from charctl.util.rotations import rotvec_from_quat

pybullet = import_pybullet()


class StablePDTorques:
    """Stable-PD torques for one character, from PyBullet's STABLE_PD command dict (the env builds it each control
    step): the same joints, targets, gains and limits, in link order."""

    def __init__(self, client: int, body: int, command: dict, dt: float):
        self.client, self.body, self.dt = client, body, dt
        self.joints = list(command["jointIndices"])
        is_ball = [len(target) == 4 for target in command["targetPositions"]]
        sizes = [3 if ball else 1 for ball in is_ball]
        self.kp = np.repeat(np.asarray(command["positionGains"], dtype=np.float64), sizes)
        self.kd = np.repeat(np.asarray(command["velocityGains"], dtype=np.float64), sizes)
        self.limit = np.array([f for forces in command["forces"] for f in forces], dtype=np.float64)
        ends = np.cumsum(sizes).tolist()
        self.ranges = list(zip([0] + ends[:-1], ends))
        # PyBullet's dynamics queries with a floating base answer in position-sized slots (the base's 3 + 4, a
        # ball's 4 with the last unused); `dofs` picks the velocity-sized entries
        dofs, slot = list(range(6)), 7
        for ball in is_ball:
            dofs += [slot, slot + 1, slot + 2] if ball else [slot]
            slot += 4 if ball else 1
        self.dofs = np.array(dofs)
        # where the balls' and hinges' numbers sit in the joint-dof vector and in getJointStatesMultiDof's
        # positions and velocities laid end to end
        dof, state = 0, 0
        ball_dofs, hinge_dofs, ball_q, ball_w, hinge_q, hinge_w = [], [], [], [], [], []
        for ball in is_ball:
            if ball:
                ball_dofs.append([dof, dof + 1, dof + 2])
                ball_q.append(list(range(state, state + 4)))
                ball_w.append(list(range(state + 4, state + 7)))
                dof, state = dof + 3, state + 7
            else:
                hinge_dofs.append(dof)
                hinge_q.append(state)
                hinge_w.append(state + 1)
                dof, state = dof + 1, state + 2
        self.ball_dofs = np.array(ball_dofs, dtype=np.int64).reshape(-1, 3)
        self.hinge_dofs = np.array(hinge_dofs, dtype=np.int64)
        self.ball_q, self.ball_w = np.array(ball_q).reshape(-1, 4), np.array(ball_w).reshape(-1, 3)
        self.hinge_q, self.hinge_w = np.array(hinge_q, dtype=np.int64), np.array(hinge_w, dtype=np.int64)
        self.gain = self.bias = None  # refresh(): A^-1 on the joints' rows, and -c
        self.error_matrix = self.hinge_target = self.target_velocity = None  # set_targets()

    def read(self) -> np.ndarray:
        """The joints' positions and velocities laid end to end, link order."""
        flat = []
        for position, velocity, *_ in pybullet.getJointStatesMultiDof(self.body, self.joints,
                                                                      physicsClientId=self.client):
            flat += position + velocity
        return np.array(flat)

    def set_targets(self, command: dict) -> None:
        balls = np.array([t for t in command["targetPositions"] if len(t) == 4], dtype=np.float64).reshape(-1, 4)
        self.hinge_target = np.array([t[0] for t in command["targetPositions"] if len(t) == 1])
        # conj(q) * target is linear in q: one (4, 4) matrix per ball, so that a substep pays one matmul
        x, y, z, w = (balls[:, k] for k in range(4))
        self.error_matrix = np.stack([np.stack([-w, -z, y, x], -1), np.stack([z, -w, -x, y], -1),
                                      np.stack([-y, x, -w, z], -1), np.stack([x, y, z, w], -1)], axis=1)
        self.target_velocity = np.array([v for vs in command["targetVelocities"] for v in vs], dtype=np.float64)

    def refresh(self, state: np.ndarray) -> None:
        """Take M and c at the current state."""
        p = dict(physicsClientId=self.client)
        position, orientation = pybullet.getBasePositionAndOrientation(self.body, **p)
        linear, angular = pybullet.getBaseVelocity(self.body, **p)
        qdot_joints = np.empty(len(self.kp))
        qdot_joints[self.ball_dofs], qdot_joints[self.hinge_dofs] = state[self.ball_w], state[self.hinge_w]
        slots = np.empty(7 + 4 * len(self.ball_q) + len(self.hinge_q))  # positions, PyBullet's layout
        slots[:7] = [*position, *orientation]
        slots[self.dofs[6:][self.ball_dofs[:, 0]][:, None] + np.arange(4)] = state[self.ball_q]
        slots[self.dofs[6:][self.hinge_dofs]] = state[self.hinge_q]
        slots = slots.tolist()
        qdot = [*linear, *angular] + qdot_joints.tolist()
        mass = np.array(pybullet.calculateMassMatrix(self.body, slots, flags=1, **p))[np.ix_(self.dofs, self.dofs)]
        bias = np.array(pybullet.calculateInverseDynamics(self.body, slots, qdot, [0.0] * len(qdot), flags=1,
                                                          **p))[self.dofs]
        joints = np.arange(6, len(mass))
        mass[joints, joints] += self.dt * self.kd
        self.gain, self.bias = np.linalg.inv(mass)[6:], -bias

    def torques(self, state: np.ndarray) -> np.ndarray:
        """Joint torques (all joint dofs, link order) towards the targets."""
        dt = self.dt
        ball_w, hinge_w = state[self.ball_w], state[self.hinge_w]
        error = np.empty(len(self.kp))
        relative = (self.error_matrix @ state[self.ball_q][:, :, None])[:, :, 0]
        error[self.ball_dofs] = rotvec_from_quat(relative) - dt * ball_w
        error[self.hinge_dofs] = self.hinge_target - (state[self.hinge_q] + dt * hinge_w)
        velocity = np.empty(len(self.kp))
        velocity[self.ball_dofs], velocity[self.hinge_dofs] = ball_w, hinge_w
        pd = self.kp * error + self.kd * (self.target_velocity - velocity)
        rhs = self.bias.copy()
        rhs[6:] += pd
        return np.clip(pd - dt * self.kd * (self.gain @ rhs), -self.limit, self.limit)

    def apply(self, tau: np.ndarray) -> None:
        flat = tau.tolist()
        pybullet.setJointMotorControlMultiDofArray(self.body, self.joints, pybullet.TORQUE_CONTROL,
                                                   forces=[flat[a:b] for a, b in self.ranges],
                                                   physicsClientId=self.client)


def use_torque_pd(sim, refreshes_per_control_step: int) -> None:
    """Make `sim.step` drive the joints with StablePDTorques instead of PyBullet's STABLE_PD commands."""
    every = max(1, sim.substeps // refreshes_per_control_step)
    controller = None

    def step():
        nonlocal controller
        command = sim._pd_command
        if command is not None:
            if controller is None:
                controller = StablePDTorques(sim.client, sim.body, command, 1.0 / sim.config.physics_hz)
            controller.set_targets(command)
        for substep in range(sim.substeps):
            if command is not None:
                state = controller.read()
                if substep % every == 0:
                    controller.refresh(state)
                controller.apply(controller.torques(state))
            pybullet.stepSimulation(physicsClientId=sim.client)

    sim.step = step
