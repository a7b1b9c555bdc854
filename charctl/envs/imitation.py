"""The imitation task as a gymnasium environment: a simulated character follows a reference clip.

Action (normalised to [-1, 1]): PD targets, an exponential map per ball joint (scaled by the joint's largest
limit, DeepMimic's bounds) and an angle per hinge (centred and scaled to its limits). With
`action_mode: residual` the action is an offset, in the same units, from the action that asks for the next
reference pose: a zero action is the reference-PD baseline. The offset is clipped to [-1, 1], the sum is not (the
clips leave some joints' limits).
Observation (2 + 15 x bodies numbers; humanoid 227, dog 437), all in the root's heading frame:
  [phase, root height, per body: COM position relative to the root (3), rotation as tangent + normal
  (6), COM linear velocity (3), angular velocity (3)]. `observe_world_root: true` gives the root's rotation and
  velocities in world axes instead (the heading shows); `observe_phase: false` drops the phase;
  `reference_ahead: [1, 2, 3]` appends, for the reference that many control steps ahead (MimicKit's target
  observations): its root position relative to the simulated root (3) and its root rotation (6), its joints'
  local rotations (6 each, root excluded) and its end effectors relative to the simulated root (3 each).
Reward in [0, 1] (charctl/envs/reward.py), 0 on the step the character falls.
Episodes start at a random phase of the clip (in training, within `train_start_phases` if set) in the clip's pose
and velocities (reference state initialisation), end on forbidden ground contact (terminated) or at the time limit
(truncated; in training at `train_time_limit` if that is shorter).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from charctl.character.layout import joint_layout
from charctl.character.model import load_character
from charctl.character.pose import Pose
from charctl.envs.config import config_to_dict, load_env_config
from charctl.envs.reference import ReferenceTrack
from charctl.envs.reward import TERMS, RewardFeatures, feature_terms, joint_angle_errors, reward_features, total_reward
from charctl.motion.clip import load_clip
from charctl.sim.simulation import SimState, Simulation
from charctl.util import rotations as rot

MAX_SPEED = 100.0  # m/s or rad/s: beyond this the simulation has blown up


class ImitationEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, character: str = "humanoid", motion: str = "spinkick", config: dict | None = None,
                 render_mode: str | None = None):
        self.character = load_character(character)
        self.config = load_env_config(self.character.name, motion, config)
        clip = load_clip(self.character, motion)
        if self.config.train_grounded_clip:
            from charctl.motion.retarget import grounded_clip

            clip = grounded_clip(clip)
        self.clip = clip.retimed(self.config.clip_speed)
        self.render_mode = render_mode
        self.sim = Simulation(self.character, self.config.sim)
        self.dt = 1.0 / self.config.sim.control_hz
        names = self.config.ground_contact_bodies
        self.allowed_contacts = {self.character.joint_index(n) for n in names} if names is not None \
            else set(self.character.ground_contact_bodies)
        self._build_action_scaling()
        joints, effectors = self.character.num_joints, len(self.character.end_effectors)
        self._ahead_size = 9 + 6 * (joints - 1) + 3 * effectors
        n_obs = int(self.config.observe_phase) + 1 + 15 * joints + len(self.config.reference_ahead) * self._ahead_size
        self._end_effectors = np.asarray(self.character.end_effectors, dtype=np.int64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.character.action_size,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n_obs,), dtype=np.float32)
        self.time = self.start_time = 0.0
        self._cycle = 0
        self.track = ReferenceTrack(self.character, self.clip, self.dt)
        self._state: SimState | None = None

    # ------------------------------------------------------------------ actions
    def _build_action_scaling(self) -> None:
        """Each action column's unit: a ball joint's largest limit (DeepMimic's bounds), a hinge's half range
        about the middle of its limits."""
        self.layout = layout = joint_layout(self.character)
        joints = self.character.joints
        ball_scale = np.array([np.abs(joints[i].limits).max() for i in layout.balls])
        self._ball_col_scale = np.repeat(ball_scale, 3)
        self._hinge_offset = np.array([joints[i].limits[0].mean() for i in layout.hinges])
        self._hinge_scale = np.array([0.5 * (joints[i].limits[0, 1] - joints[i].limits[0, 0]) for i in layout.hinges])

    def targets_to_action(self, joint_rot: np.ndarray) -> np.ndarray:
        """The action (not clipped) that asks for these local joint rotations (J, 4) as PD targets."""
        layout = self.layout
        action = np.empty(layout.action_size)
        action[layout.ball_columns] = rot.rotvec_from_quat(joint_rot[layout.ball_index]).ravel() / self._ball_col_scale
        action[layout.hinge_columns] = (layout.hinge_angles(joint_rot) - self._hinge_offset) / self._hinge_scale
        return action

    def _command_targets(self, action: np.ndarray) -> None:
        """The PD command for a valid action: ball rotations and hinge angles straight from it (absolute), or
        from it added to the action that asks for the next reference pose (residual)."""
        a = np.minimum(np.maximum(action, -1.0), 1.0)  # np.clip costs twice as much on one small array
        residual, target_velocity = self.config.action_mode == "residual", self.config.pd_target_velocity
        upcoming = self.reference_pose(self.time + self.dt) if residual or target_velocity else None
        if residual:  # the offset is bounded, not the sum: a clip may leave its joints' limits
            a = a + self.targets_to_action(upcoming.joint_rot)
        layout = self.layout
        ball_rot = rot.quat_from_rotvec((a[layout.ball_columns] * self._ball_col_scale).reshape(-1, 3))
        hinge_angle = self._hinge_offset + self._hinge_scale * a[layout.hinge_columns]
        if target_velocity:
            spin = upcoming.joint_ang_vel * self.config.pd_target_velocity_scale
            self.sim.set_pd_command(ball_rot, hinge_angle, spin[layout.ball_index], layout.hinge_velocities(spin))
        else:
            self.sim.set_pd_command(ball_rot, hinge_angle)

    # ------------------------------------------------------------------ reference
    def reference_pose(self, t: float | None = None) -> Pose:
        """The reference pose at time t (default: now), moved to where the simulated character is."""
        return self.track.pose(self.time if t is None else t)

    def _sync_reference(self, state: SimState) -> None:
        """At each new cycle, move the reference horizontally (and turn it, if configured) onto the character."""
        if not self.clip.loop or self.clip.duration <= 0:
            return
        cycle = math.floor(self.time / self.clip.duration)
        if cycle == self._cycle:
            return
        self._cycle = cycle
        ref = self.reference_pose()
        turn = self.track.turn
        if self.config.sync_heading:
            delta = rot.heading(state.root_rot) - rot.heading(ref.root_rot)
            turn = rot.quat_mul(rot.z_rotation(delta), turn)
            self.track.move(turn, self.track.shift)
            ref = self.reference_pose()
        self.track.move(turn, self.track.shift + (state.root_pos - ref.root_pos) * [1.0, 1.0, 0.0])

    # ------------------------------------------------------------------ gymnasium API
    def _episode_limit(self) -> float:
        """Seconds an episode may last; read from the config each step so a changed config rules at once."""
        cap = self.config.train_time_limit
        return self.config.time_limit if cap is None else min(cap, self.config.time_limit)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = options.get("start_time")
        if start is None:
            start = self._random_start()
        self.time = self.start_time = float(start)
        self.track.restart(self.time)
        self._cycle = math.floor(self.time / self.clip.duration) if self.clip.duration > 0 else 0
        pose = self.reference_pose()
        self.sim.restart()
        self.sim.set_pose(pose)
        lift = self.sim.penetration_depth()
        if lift > 0:  # start out of the ground, as DeepMimic does
            pose.root_pos = pose.root_pos + [0.0, 0.0, lift]
            self.sim.set_pose(pose)
        self._state = self.sim.state()
        return self._observation(self._state), {"time": self.time, "phase": self._phase()}

    def _random_start(self) -> float:
        """A start time drawn uniformly over the clip, or over the phase window `train_start_phases` (for the share
        `train_start_window_share` of the episodes)."""
        duration = self.clip.duration
        if duration <= 0:
            return 0.0
        window = self.config.train_start_phases
        share = self.config.train_start_window_share
        # the share is drawn only below 1: at the default 1 a reset takes one draw, as it does without a window
        if window is None or (share < 1.0 and self.np_random.uniform() >= share):
            return float(self.np_random.uniform(0.0, duration))
        low, high = window
        width = high - low if low <= high else high + 1.0 - low  # from > to wraps through the cycle's end
        return float((low + self.np_random.uniform(0.0, width)) % 1.0 * duration)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:  # a caller's bug, not the policy's: say so (gymnasium usage)
            raise ValueError(f"action of shape {action.shape}; this env takes {self.action_space.shape}")
        if not np.isfinite(action).all():  # a diverged policy: the episode ends as a fall
            return self._failure("invalid_action")
        self._command_targets(action)
        return self._advance()

    def step_with_targets(self, joint_rot: np.ndarray, joint_vel: np.ndarray | None = None):
        """Advance one control step with PD targets given directly (used for open-loop reference tracking)."""
        if joint_vel is None and self.config.pd_target_velocity:
            upcoming = self.reference_pose(self.time + self.dt)
            joint_vel = upcoming.joint_ang_vel * self.config.pd_target_velocity_scale
        self.sim.set_pd_targets(joint_rot, joint_vel)
        return self._advance()

    def _advance(self):
        """Physics for one control step with the PD command set, then reward, termination and observation."""
        self.sim.step()
        self.time += self.dt
        state = self.sim.state()
        if not _healthy(state):
            return self._failure("sim_failure")
        self._state = state
        self._sync_reference(state)
        to_heading = rot.heading_matrix(state.root_rot)  # shared by the reward and the observation
        sim_features, ref_features = reward_features(self.character, state, to_heading), self.track.features(self.time)
        angles = joint_angle_errors(sim_features, ref_features)
        terms = feature_terms(self.character, sim_features, ref_features, self.config.reward, angles)
        touching = self.sim.ground_contacts() - self.allowed_contacts
        fell = bool(touching)
        reward = 0.0 if fell else total_reward(terms, self.config.reward)
        strayed = not fell and self._strayed(sim_features, ref_features)
        truncated = not fell and not strayed and self.time - self.start_time >= self._episode_limit() - 1e-9
        phase = self._phase()
        info = {f"reward_{k}": terms[k] for k in TERMS}
        # pace: the whole-body centre of mass's horizontal speed, the character's and the reference's
        info.update(time=self.time, phase=phase, fell=fell, strayed=strayed,
                    speed=math.hypot(*sim_features.com_vel[:2]), reference_speed=math.hypot(*ref_features.com_vel[:2]),
                    heading_error=self._heading_error(to_heading, ref_features), joint_angle_error=angles)
        if fell:  # which bodies ended it: what a policy has to learn to keep off the ground
            info["fell_on"] = tuple(sorted(self.character.joints[i].name for i in touching))
        return self._observation(state, to_heading, phase), float(reward), fell or strayed, bool(truncated), info

    @staticmethod
    def _heading_error(to_heading: np.ndarray, ref: RewardFeatures) -> float:
        """The character's heading minus the reference's, in radians within [-pi, pi): how far it has turned off
        the clip's direction (the pose and root rewards count it)."""
        error = math.atan2(to_heading[0, 1], to_heading[0, 0]) - float(rot.heading(ref.rot[0]))
        return (error + math.pi) % (2 * math.pi) - math.pi

    def _strayed(self, sim: RewardFeatures, ref: RewardFeatures) -> bool:
        """Pose termination: a body further than the configured distance from the reference's, after the first
        step (a start pose lifted out of the ground already differs a little)."""
        limit = self.config.pose_termination_distance
        if limit is None or self.time - self.start_time < 1.5 * self.dt:
            return False
        diff = sim.body_pos - ref.body_pos
        return float(np.einsum("jk,jk->j", diff, diff).max()) > limit * limit

    def _phase(self) -> float:
        duration = self.clip.duration
        return (self.time / duration) % 1.0 if duration > 0 else 0.0

    def _failure(self, flag: str):
        """A NaN action or a blown-up simulation ends the episode as a fall, never as an exception."""
        obs = self._observation(self._state) if self._state is not None else np.zeros(self.observation_space.shape,
                                                                                      np.float32)
        return obs, 0.0, True, False, {flag: True, "fell": True, "time": self.time}

    def _observation(self, state: SimState, to_heading: np.ndarray | None = None,
                     phase: float | None = None) -> np.ndarray:
        if to_heading is None:
            to_heading = rot.heading_matrix(state.root_rot)
        axes = rot.quat_to_matrix(state.link_rot)
        # per body five world vectors (COM relative to the root's, x axis, y axis, COM velocity, angular
        # velocity), turned into the heading frame by one product
        world = np.concatenate([state.com_pos - state.com_pos[0], axes[:, :, 0], axes[:, :, 1], state.com_vel,
                                state.ang_vel], axis=1).reshape(-1, 5, 3)
        obs = np.empty(self.observation_space.shape, dtype=np.float32)
        start = 0
        if self.config.observe_phase:
            obs[0] = self._phase() if phase is None else phase
            start = 1
        obs[start] = state.root_pos[2]
        body = world.size
        obs[start + 1:start + 1 + body] = (world @ to_heading.T).ravel()
        if self.config.observe_world_root:  # the root's axes and velocities as they are in the world
            obs[start + 4:start + 16] = world[0, 1:].ravel()
        start += 1 + body
        for k in self.config.reference_ahead:
            obs[start:start + self._ahead_size] = self._reference_ahead(state, to_heading, k)
            start += self._ahead_size
        return obs

    def _reference_ahead(self, state: SimState, to_heading: np.ndarray, steps: int) -> np.ndarray:
        """The reference `steps` control steps ahead, seen from the simulated root's heading frame."""
        ref = self.track.features(self.time + steps * self.dt)
        axes = rot.quat_to_matrix(ref.rot)  # row 0: the root's world rotation; others local to their parent
        root_axes = to_heading @ axes[0]
        offset = (ref.root_pos - state.root_pos) @ to_heading.T
        effectors = (ref.body_pos[self._end_effectors] - state.root_pos) @ to_heading.T
        return np.concatenate([offset, root_axes[:, 0], root_axes[:, 1], axes[1:, :, 0:2].transpose(0, 2, 1).ravel(),
                               effectors.ravel()])

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        from charctl.sim.render import render_client

        return render_client(self.sim.client, self._state.root_pos if self._state is not None else np.zeros(3))

    def close(self):
        self.sim.close()

    @property
    def settings(self) -> dict:
        """Everything that defines this task, for checkpoints."""
        return {"character": self.character.name, "motion": self.clip.name, "config": config_to_dict(self.config)}


def _healthy(state: SimState) -> bool:
    # NaN fails the speed comparisons; the sum is not finite if any position or rotation is not
    return np.abs(state.com_vel).max() < MAX_SPEED and np.abs(state.ang_vel).max() < 10 * MAX_SPEED \
        and math.isfinite(state.com_pos.sum() + state.joint_rot.sum())
