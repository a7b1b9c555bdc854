"""The imitation task as a gymnasium environment: a simulated character follows a reference clip.

Action (normalised to [-1, 1]): PD targets, an exponential map per ball joint (scaled by the joint's largest
limit, DeepMimic's bounds) and an angle per hinge (centred and scaled to its limits).
Observation (2 + 15 x bodies numbers; humanoid 227, dog 437), all in the root's heading frame:
  [phase, root height, per body: COM position relative to the root (3), rotation as tangent + normal
  (6), COM linear velocity (3), angular velocity (3)].
Reward in [0, 1] (charctl/envs/reward.py), 0 on the step the character falls.
Episodes start at a random phase of the clip in the clip's pose and velocities (reference state
initialisation), end on forbidden ground contact (terminated) or at the time limit (truncated).
"""

from __future__ import annotations

import numpy as np
import gymnasium as gym
from gymnasium import spaces

from charctl import rotations as rot
from charctl.character import load_character
from charctl.envs.config import config_to_dict, load_env_config
from charctl.envs.reference import offset_pose, reference_state
from charctl.envs.reward import TERMS, reward_terms, total_reward
from charctl.motion.clip import load_clip
from charctl.pose import Pose
from charctl.sim import Simulation, SimState

MAX_SPEED = 100.0  # m/s or rad/s: beyond this the simulation has blown up


class ImitationEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, character: str = "humanoid", motion: str = "spinkick", config: dict | None = None,
                 render_mode: str | None = None, gui: bool = False):
        self.character = load_character(character)
        self.clip = load_clip(self.character, motion)
        self.config = load_env_config(self.character.name, motion, config)
        self.render_mode = render_mode
        self.sim = Simulation(self.character, self.config.sim, gui=gui)
        self.dt = 1.0 / self.config.sim.control_hz
        names = self.config.ground_contact_bodies
        self.allowed_contacts = {self.character.joint_index(n) for n in names} if names is not None \
            else set(self.character.ground_contact_bodies)
        self._build_action_scaling()
        n_obs = 2 + 15 * self.character.num_joints
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.character.action_size,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        self.time = self.start_time = 0.0
        self._turn, self._shift, self._cycle = rot.IDENTITY.copy(), np.zeros(3), 0
        self._state: SimState | None = None

    # ------------------------------------------------------------------ actions
    def _build_action_scaling(self) -> None:
        self._balls = self.character.indices_of("spherical")
        self._hinges = self.character.indices_of("revolute")
        joints = self.character.joints
        self._ball_scale = np.array([np.abs(joints[i].limits).max() for i in self._balls])
        self._hinge_offset = np.array([joints[i].limits[0].mean() for i in self._hinges])
        self._hinge_scale = np.array([0.5 * (joints[i].limits[0, 1] - joints[i].limits[0, 0]) for i in self._hinges])
        self._hinge_axes = np.stack([joints[i].axis for i in self._hinges]) if len(self._hinges) else np.zeros((0, 3))
        # action layout: joints in Character order, 3 numbers per ball joint, 1 per hinge
        self._slices = []
        start = 0
        for i, joint in enumerate(joints):
            if joint.action_size:
                self._slices.append((i, slice(start, start + joint.action_size)))
                start += joint.action_size
        kinds = {i: joints[i].kind for i, _ in self._slices}
        self._ball_cols = np.array([c for i, s in self._slices if kinds[i] == "spherical" for c in range(s.start, s.stop)],
                                   dtype=int)
        self._hinge_cols = np.array([s.start for i, s in self._slices if kinds[i] == "revolute"], dtype=int)

    def action_to_targets(self, action: np.ndarray) -> np.ndarray:
        """Normalised action -> local joint rotations (J, 4) for the PD controller."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        targets = np.tile(rot.IDENTITY, (self.character.num_joints, 1))
        rotvecs = a[self._ball_cols].reshape(-1, 3) * self._ball_scale[:, None]
        targets[self._balls] = rot.quat_from_rotvec(rotvecs)
        angles = self._hinge_offset + self._hinge_scale * a[self._hinge_cols]
        targets[self._hinges] = rot.quat_from_rotvec(angles[:, None] * self._hinge_axes)
        return targets

    def targets_to_action(self, joint_rot: np.ndarray) -> np.ndarray:
        """Inverse of action_to_targets (not clipped): the action that asks for these joint rotations."""
        action = np.zeros(self.character.action_size)
        for i, s in self._slices:
            joint = self.character.joints[i]
            if joint.kind == "spherical":
                action[s] = rot.rotvec_from_quat(joint_rot[i]) / np.abs(joint.limits).max()
            else:
                angle = rot.hinge_angle(joint_rot[i], joint.axis)
                action[s] = (angle - joint.limits[0].mean()) / (0.5 * (joint.limits[0, 1] - joint.limits[0, 0]))
        return action

    # ------------------------------------------------------------------ reference
    def reference_pose(self, t: float | None = None) -> Pose:
        """The reference pose at time t (default: now), moved to where the simulated character is."""
        return offset_pose(self.clip.sample(self.time if t is None else t), self._turn, self._shift)

    def _sync_reference(self) -> None:
        """At each new cycle, move the reference horizontally (and turn it, if configured) onto the character."""
        if not self.clip.loop or self.clip.duration <= 0:
            return
        cycle = int(np.floor(self.time / self.clip.duration))
        if cycle == self._cycle:
            return
        self._cycle = cycle
        state = self.sim.state()
        ref = self.reference_pose()
        if self.config.sync_heading:
            delta = rot.heading(state.root_rot) - rot.heading(ref.root_rot)
            self._turn = rot.quat_mul(rot.z_rotation(delta), self._turn)
            ref = self.reference_pose()
        self._shift = self._shift + (state.root_pos - ref.root_pos) * [1.0, 1.0, 0.0]

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = options.get("start_time")
        if start is None:
            start = float(self.np_random.uniform(0.0, self.clip.duration)) if self.clip.duration > 0 else 0.0
        self.time = self.start_time = float(start)
        self._turn, self._shift = rot.IDENTITY.copy(), np.zeros(3)
        self._cycle = int(np.floor(self.time / self.clip.duration)) if self.clip.duration > 0 else 0
        pose = self.reference_pose()
        self.sim.restart()
        self.sim.set_pose(pose)
        lift = self.sim.penetration_depth()
        if lift > 0:  # start out of the ground, as DeepMimic does
            pose.root_pos = pose.root_pos + [0.0, 0.0, lift]
            self.sim.set_pose(pose)
        self._state = self.sim.state()
        return self._observation(self._state), {"time": self.time, "phase": float(self.clip.phase(self.time))}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
            return self._failure("invalid_action")
        targets = self.action_to_targets(action)
        return self.step_with_targets(targets)

    def step_with_targets(self, joint_rot: np.ndarray, joint_vel: np.ndarray | None = None):
        """Advance one control step with PD targets given directly (used for open-loop reference tracking)."""
        if joint_vel is None and self.config.pd_target_velocity:
            joint_vel = self.reference_pose(self.time + self.dt).joint_ang_vel
        self.sim.set_pd_targets(joint_rot, joint_vel)
        self.sim.step()
        self.time += self.dt
        state = self.sim.state()
        if not _healthy(state):
            return self._failure("sim_failure")
        self._state = state
        self._sync_reference()
        ref = reference_state(self.character, self.reference_pose())
        terms = reward_terms(self.character, state, ref, self.config.reward)
        fell = bool(self.sim.ground_contacts() - self.allowed_contacts)
        reward = 0.0 if fell else total_reward(terms, self.config.reward)
        truncated = not fell and self.time - self.start_time >= self.config.time_limit - 1e-9
        info = {f"reward_{k}": terms[k] for k in TERMS}
        info.update(time=self.time, phase=float(self.clip.phase(self.time)), fell=fell)
        return self._observation(state), float(reward), fell, bool(truncated), info

    def _failure(self, flag: str):
        """A NaN action or a blown-up simulation ends the episode as a fall, never as an exception."""
        obs = self._observation(self._state) if self._state is not None else np.zeros(self.observation_space.shape,
                                                                                      np.float32)
        return obs, 0.0, True, False, {flag: True, "fell": True, "time": self.time}

    def _observation(self, state: SimState) -> np.ndarray:
        to_heading = rot.heading_inverse(state.root_rot)
        root_com = state.com_pos[0]
        pos = rot.quat_rotate(to_heading, state.com_pos - root_com)
        body_rot = rot.quat_mul(to_heading, state.link_rot)
        tangent = rot.quat_rotate(body_rot, np.broadcast_to([1.0, 0.0, 0.0], pos.shape))
        normal = rot.quat_rotate(body_rot, np.broadcast_to([0.0, 1.0, 0.0], pos.shape))
        lin = rot.quat_rotate(to_heading, state.com_vel)
        ang = rot.quat_rotate(to_heading, state.ang_vel)
        head = np.array([self.clip.phase(self.time), state.root_pos[2]])
        obs = np.concatenate([head, np.concatenate([pos, tangent, normal, lin, ang], axis=1).ravel()])
        return obs.astype(np.float32)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        from charctl.render import render_client

        return render_client(self.sim.client, self._state.root_pos if self._state is not None else np.zeros(3))

    def close(self):
        self.sim.close()

    @property
    def settings(self) -> dict:
        """Everything that defines this task, for checkpoints."""
        return {"character": self.character.name, "motion": self.clip.name, "config": config_to_dict(self.config)}


def _healthy(state: SimState) -> bool:
    arrays = (state.com_pos, state.com_vel, state.ang_vel, state.joint_rot)
    return all(np.all(np.isfinite(a)) for a in arrays) and np.abs(state.com_vel).max() < MAX_SPEED \
        and np.abs(state.ang_vel).max() < 10 * MAX_SPEED
