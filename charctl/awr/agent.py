"""The AWR update, as the authors' reference code does it.

One update, given the replay buffer and how many new samples just arrived:
  1. TD(lambda) targets for every stored sample with the current (previous iteration's) critic.
  2. Critic fit: critic_steps x critic_batch_size minibatches (scaled by new samples / samples_per_iter),
     loss 0.5 * mean((G / value_scale - V_norm)^2), momentum SGD.
  3. Values and TD(lambda) targets again with the new critic; advantages A = G - V.
  4. Weights w = min(exp(A_hat / temperature), weight_clip), A_hat = (A - mean) / (std + 1e-5).
  5. Actor fit: actor_steps minibatches, loss -mean(w * log pi(a|s)) + bound penalty (+ optional L2).
Minibatches walk through shuffled passes over all samples (as the reference), drawn from a seeded generator.
"""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import torch

from charctl.awr.buffer import EpisodeBuffer, FlatEpisodes
from charctl.awr.config import AWRConfig
from charctl.awr.mlp_grad import MLPStepper, categorical_actor_step, critic_step, gaussian_actor_step
from charctl.awr.policy import ActionSpec, Actor, Critic, NumpyPolicy, ObsNormalizer, actor_loss
from charctl.awr.returns import lambda_returns
from charctl.util.errors import CharctlError

ADV_EPS = 1e-5
VALUE_CHUNK = 65536  # critic evaluation batch over the buffer


def resolve_device(name: str) -> torch.device:
    """'auto': the GPU when torch sees one (the learner's updates), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CharctlError(f"config: device '{name}' asked for, but torch sees no GPU")
    return torch.device(name)


def advantage_weights(advantages: np.ndarray, config: AWRConfig) -> tuple[np.ndarray, dict]:
    """Per-sample regression weights from advantages (or returns, without a baseline), and their statistics."""
    mean, std = float(np.mean(advantages)), float(np.std(advantages))
    scaled = (advantages - mean) / (std + ADV_EPS) if config.normalize_advantages else advantages
    with np.errstate(over="ignore"):
        raw = np.exp(scaled / config.temperature)
    weights = np.minimum(raw, config.weight_clip)
    stats = {"adv_mean": mean, "adv_std": std, "weight_mean": float(np.mean(raw)),
             "weight_min": float(np.min(raw)), "weight_max": float(np.max(raw)),
             "clipped_fraction": float(np.mean(raw > config.weight_clip))}
    return weights.astype(np.float32), stats


class AWRAgent:
    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: AWRConfig):
        if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
            raise CharctlError(f"env: observation space {observation_space} is not supported (Box of shape (n,))")
        self.config = config
        self.action = ActionSpec.from_space(action_space)
        obs_size = observation_space.shape[0]
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.actor = Actor(obs_size, self.action, config.actor_layers, config.actor_init_output_scale,
                           config.action_std).to(self.device)
        self.critic = Critic(obs_size, config.critic_layers).to(self.device)
        # the mean of the actor's weights since config.average_from (None until then), over this many updates
        self.actor_average: Actor | None = None
        self.averaged_updates = 0
        self.actor_optimizer = torch.optim.SGD(self.actor.parameters(), lr=config.actor_lr,
                                               momentum=config.actor_momentum)
        self.critic_optimizer = torch.optim.SGD(self.critic.parameters(), lr=config.critic_lr,
                                                momentum=config.critic_momentum)
        # a CPU learner takes its minibatch steps with hand-written numpy gradients (charctl/awr/mlp_grad.py says
        # why); a GPU learner uses autograd. Same numbers either way (tests/test_awr_units.py).
        self.hand_written_steps = self.device.type == "cpu"
        if self.hand_written_steps:
            self.actor_stepper = MLPStepper(self.actor.net, self.actor_optimizer)
            self.critic_stepper = MLPStepper(self.critic.net, self.critic_optimizer)
        self.normalizer = ObsNormalizer.for_space(observation_space, config.normalizer_std_floor, config.obs_clip)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.value_scale = config.effective_value_scale

    # --- inference
    def policy(self, averaged: bool = False) -> NumpyPolicy:
        """The policy that collects samples (the actor); `averaged`: the one the run tests and saves to play, the
        mean of the actor's weights once the run keeps one (AWRConfig.average_from)."""
        actor = self.actor_average if averaged and self.actor_average is not None else self.actor
        policy = NumpyPolicy.from_actor(actor, self.normalizer)
        policy.exploration_rate = self.config.exploration_rate
        return policy

    @torch.no_grad()
    def values(self, obs_norm: torch.Tensor) -> np.ndarray:
        out = [self.critic(obs_norm[i:i + VALUE_CHUNK]) for i in range(0, len(obs_norm), VALUE_CHUNK)]
        return (torch.cat(out) * self.value_scale).cpu().numpy()

    def _targets(self, flat: FlatEpisodes, obs: torch.Tensor, final_obs: torch.Tensor):
        values = self.values(obs)
        returns = lambda_returns(flat.rewards, values, self.values(final_obs), flat.terminated, flat.episode_starts,
                                 flat.episode_lengths, self.config.discount, self.config.effective_lambda)
        return values, returns

    # --- update
    def _batches(self, count: int, batch_size: int, steps: int) -> torch.Tensor:
        """[steps, batch_size] sample indices: consecutive slices of reshuffled passes over all samples."""
        if steps == 0:  # actor_steps or critic_steps 0: that network is not fitted
            return torch.empty((0, batch_size), dtype=torch.int64, device=self.device)
        passes = math.ceil(steps * batch_size / count)
        order = torch.cat([torch.randperm(count, generator=self.generator) for _ in range(passes)])
        return order[:steps * batch_size].view(steps, batch_size).to(self.device)

    def _actions_tensor(self, actions: np.ndarray) -> torch.Tensor:
        if self.action.discrete:
            return torch.from_numpy(np.asarray(actions, dtype=np.int64).reshape(-1)).to(self.device)
        return torch.from_numpy(((actions - self.action.centre) / self.action.scale).astype(np.float32)).to(self.device)

    def fit_critic(self, obs: torch.Tensor, targets: np.ndarray, steps: int) -> float:
        targets_norm = (targets / self.value_scale).astype(np.float32)
        batches = self._batches(len(obs), self.config.critic_batch_size, steps)
        if self.hand_written_steps:
            obs_np = obs.numpy()
            total = sum(critic_step(self.critic_stepper, obs_np[idx], targets_norm[idx]) for idx in batches.numpy())
            return total / max(steps, 1)
        targets_t = torch.from_numpy(targets_norm).to(self.device)
        return self._autograd_fit(self.critic_optimizer, batches, lambda idx: 0.5 * torch.square(
            targets_t[idx] - self.critic(obs[idx])).mean())

    def fit_actor(self, obs: torch.Tensor, actions: torch.Tensor, weights: np.ndarray, steps: int) -> float:
        config = self.config
        batches = self._batches(len(obs), config.actor_batch_size, steps)
        if self.hand_written_steps:
            obs_np, actions_np, total = obs.numpy(), actions.numpy(), 0.0
            for idx in batches.numpy():
                if self.action.discrete:
                    total += categorical_actor_step(self.actor_stepper, obs_np[idx], actions_np[idx], weights[idx],
                                                    config.action_l2_weight, config.actor_max_grad_norm)
                else:
                    total += gaussian_actor_step(self.actor_stepper, obs_np[idx], actions_np[idx], weights[idx],
                                                 self.actor.action_std, config.action_bound_weight,
                                                 config.action_l2_weight, config.actor_max_grad_norm)
            return total / max(steps, 1)
        weights_t = torch.from_numpy(weights).to(self.device)

        def loss(idx):
            return actor_loss(self.actor, self.actor(obs[idx]), actions[idx], weights_t[idx],
                              config.action_bound_weight, config.action_l2_weight)
        return self._autograd_fit(self.actor_optimizer, batches, loss, config.actor_max_grad_norm)

    def _autograd_fit(self, optimizer: torch.optim.Optimizer, batches: torch.Tensor, loss_of,
                      max_grad_norm: float | None = None) -> float:
        total = torch.zeros((), device=self.device)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for idx in batches:
            loss = loss_of(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            total += loss.detach()
        return float(total) / max(len(batches), 1)

    def update(self, buffer: EpisodeBuffer, new_samples: int) -> dict:
        """One AWR update on everything in `buffer`; returns the iteration's statistics."""
        config = self.config
        flat = buffer.flat()
        obs = torch.from_numpy(self.normalizer.normalize(flat.observations)).to(self.device)
        final_obs = torch.from_numpy(self.normalizer.normalize(flat.final_observations)).to(self.device)
        actions = self._actions_tensor(flat.actions)
        scale = new_samples / config.samples_per_iter
        critic_steps = math.ceil(config.critic_steps * scale)
        actor_steps = math.ceil(config.actor_steps * scale)

        _, targets = self._targets(flat, obs, final_obs)
        critic_loss = self.fit_critic(obs, targets, critic_steps)

        values, targets = self._targets(flat, obs, final_obs)
        advantages = targets - values if config.baseline else targets
        if not flat.explored.all():  # the actor learns from sampled actions only; the mean's steps fit the critic
            explored = torch.from_numpy(np.flatnonzero(flat.explored)).to(self.device)
            obs, actions, advantages = obs[explored], actions[explored], advantages[flat.explored]
        weights, stats = advantage_weights(advantages, config)
        actor_loss = self.fit_actor(obs, actions, weights, actor_steps)

        stats.update(critic_loss=critic_loss, actor_loss=actor_loss, critic_steps=critic_steps,
                     actor_steps=actor_steps, value_mean=float(np.mean(values)), buffer_samples=len(flat),
                     buffer_episodes=len(flat.episode_lengths), explored_fraction=float(flat.explored.mean()))
        return stats

    @torch.no_grad()
    def update_average(self, samples: int, new_samples: int) -> None:
        """Fold the actor just fitted into the mean of its weights, once the run has `samples` >= average_from:
        equal shares since then (average_window 0) or new_samples / average_window of each update (an exponential
        moving average). Before average_from (or with it null) there is no mean: a resume that moves average_from
        later starts it again."""
        config = self.config
        if config.average_from is None or samples < config.average_from:
            self.actor_average, self.averaged_updates = None, 0
            return
        self.averaged_updates += 1
        if self.actor_average is None:
            self.actor_average = copy.deepcopy(self.actor)
            return
        window = config.average_window
        share = 1.0 / self.averaged_updates if window == 0 else min(1.0, new_samples / window)
        for mean, current in zip(self.actor_average.parameters(), self.actor.parameters()):
            mean.lerp_(current, share)

    # --- checkpointing (tensors and primitives only: torch.load(weights_only=True) reads it)
    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(), "generator": self.generator.get_state(),
                "actor_average": None if self.actor_average is None else self.actor_average.state_dict(),
                "averaged_updates": self.averaged_updates}

    def load_state_dict(self, state: dict) -> None:
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"])
        self.load_networks(state)  # then the config's settings: a resumed run may have changed them (`changes`)
        self.actor_average, self.averaged_updates = None, int(state.get("averaged_updates", 0))
        if state.get("actor_average") is not None:
            self.actor_average = copy.deepcopy(self.actor)
            self.actor_average.load_state_dict(state["actor_average"])

    def load_networks(self, state: dict) -> None:
        """Another run's actor, critic and observation normaliser (a warm start, AWRConfig.init_from); the
        optimisers and the sampling generator stay this run's own."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.normalizer.load_state_dict(state["normalizer"])
        self._apply_config_settings()

    def _apply_config_settings(self) -> None:
        """The config's learning rates, momenta and observation clip over whatever a loaded state held."""
        for optimizer, lr, momentum in ((self.actor_optimizer, self.config.actor_lr, self.config.actor_momentum),
                                        (self.critic_optimizer, self.config.critic_lr, self.config.critic_momentum)):
            for group in optimizer.param_groups:
                group["lr"], group["momentum"] = lr, momentum
        self.normalizer.clip = self.config.obs_clip
