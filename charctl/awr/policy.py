"""Actor and critic networks, the observation normaliser, and a numpy copy of the actor for rollouts and play.

Box actions: a Gaussian with a fixed (not learned) std in normalised action units, where the box maps to
[-1, 1] (centre (high + low) / 2, scale (high - low) / 2); its test-time action is the mean.
Discrete actions: a categorical over logits; its test-time action is the argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from charctl.util.errors import CharctlError


@dataclass
class ActionSpec:
    """What the policy needs to know about the action space (primitive values: checkpoint-safe)."""

    discrete: bool
    size: int                       # Box: action dimension; Discrete: number of actions
    low: list[float] | None = None  # Box bounds
    high: list[float] | None = None

    @classmethod
    def from_space(cls, space: gym.Space, where: str = "env") -> "ActionSpec":
        if isinstance(space, gym.spaces.Discrete):
            if int(space.start) != 0:
                raise CharctlError(f"{where}: Discrete action spaces must start at 0 (start={space.start})")
            return cls(discrete=True, size=int(space.n))
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            low, high = space.low.astype(np.float64), space.high.astype(np.float64)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise CharctlError(f"{where}: Box actions must be bounded (low {low}, high {high})")
            return cls(discrete=False, size=int(space.shape[0]), low=low.tolist(), high=high.tolist())
        raise CharctlError(f"{where}: action space {space} is not supported (Box of shape (n,) or Discrete)")

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.high) + np.asarray(self.low)).astype(np.float32) / 2

    @property
    def scale(self) -> np.ndarray:
        return (np.asarray(self.high) - np.asarray(self.low)).astype(np.float32) / 2

    def to_dict(self) -> dict:
        return {"discrete": self.discrete, "size": self.size, "low": self.low, "high": self.high}


class ObsNormalizer:
    """Running mean and std of observations (std floored); `record` collects, `update` folds them in.

    The trainer stops recording after `normalizer_samples` samples, which freezes it.
    """

    def __init__(self, size: int, std_floor: float = 0.01, clip: float | None = None,
                 init_mean: np.ndarray | None = None, init_std: np.ndarray | None = None):
        self.std_floor = std_floor
        self.clip = clip
        self.count = 0
        self.mean = np.zeros(size) if init_mean is None else np.asarray(init_mean, dtype=np.float64)
        self.std = np.ones(size) if init_std is None else np.maximum(np.asarray(init_std, dtype=np.float64),
                                                                     std_floor)
        self._mean_sq = self.std ** 2 + self.mean ** 2
        self._pending = [0, np.zeros(size), np.zeros(size)]  # count, sum, sum of squares

    @classmethod
    def for_space(cls, space: gym.spaces.Box, std_floor: float, clip: float | None) -> "ObsNormalizer":
        """Start from the observation box where it is finite (reference code), else mean 0 and std 1."""
        high, low = space.high.astype(np.float64).ravel(), space.low.astype(np.float64).ravel()
        unbounded = (high >= np.finfo(np.float32).max) | (low <= np.finfo(np.float32).min)
        high, low = np.where(unbounded, 1.0, high), np.where(unbounded, -1.0, low)
        return cls(len(high), std_floor, clip, init_mean=(high + low) / 2, init_std=(high - low) / 2)

    def record(self, observations: np.ndarray) -> None:
        obs = np.asarray(observations, dtype=np.float64).reshape(-1, len(self.mean))
        self._pending[0] += len(obs)
        self._pending[1] += obs.sum(axis=0)
        self._pending[2] += np.square(obs).sum(axis=0)

    def update(self) -> None:
        new_count, new_sum, new_sq = self._pending
        if new_count == 0:
            return
        total = self.count + new_count
        self.mean = (self.count * self.mean + new_sum) / total
        self._mean_sq = (self.count * self._mean_sq + new_sq) / total
        self.count = total
        self.std = np.maximum(np.sqrt(np.maximum(self._mean_sq - self.mean ** 2, 0.0)), self.std_floor)
        self._pending = [0, np.zeros_like(self.mean), np.zeros_like(self.mean)]

    def normalize(self, observations: np.ndarray) -> np.ndarray:
        out = (np.asarray(observations, dtype=np.float32) - self.mean.astype(np.float32)) / self.std.astype(np.float32)
        return out if self.clip is None else np.clip(out, -self.clip, self.clip)

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": torch.from_numpy(self.mean.copy()),
                "mean_sq": torch.from_numpy(self._mean_sq.copy()), "std": torch.from_numpy(self.std.copy()),
                "std_floor": self.std_floor, "clip": self.clip}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.mean = state["mean"].numpy().astype(np.float64)
        self._mean_sq = state["mean_sq"].numpy().astype(np.float64)
        self.std = state["std"].numpy().astype(np.float64)
        self.std_floor, self.clip = state["std_floor"], state["clip"]
        self._pending = [0, np.zeros_like(self.mean), np.zeros_like(self.mean)]


def mlp(in_size: int, layers: list[int], out_size: int) -> nn.Sequential:
    """ReLU MLP with Glorot-uniform weights and zero biases (TensorFlow's dense defaults, as the reference)."""
    modules: list[nn.Module] = []
    for width in layers:
        linear = nn.Linear(in_size, width)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        modules += [linear, nn.ReLU()]
        in_size = width
    out = nn.Linear(in_size, out_size)
    nn.init.xavier_uniform_(out.weight)
    nn.init.zeros_(out.bias)
    modules.append(out)
    return nn.Sequential(*modules)


class Actor(nn.Module):
    """Normalised observation -> Gaussian mean in normalised action units (Box) or logits (Discrete)."""

    def __init__(self, obs_size: int, action: ActionSpec, layers: list[int], init_output_scale: float,
                 action_std: float):
        super().__init__()
        self.action = action
        self.net = mlp(obs_size, layers, action.size)
        self.init_output(init_output_scale)
        self.action_std = float(action_std)
        self.exploration_rate = 1.0  # share of `explore` calls that sample; the others take the mean

    def init_output(self, scale: float) -> None:
        """The output layer as a new actor's: weights uniform in +-scale, bias 0 (near-zero initial actions)."""
        head = self.net[-1]
        nn.init.uniform_(head.weight, -scale, scale)
        nn.init.zeros_(head.bias)

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        return self.net(obs_norm)

    def log_prob(self, output: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) for a batch: `actions` normalised (Box) or int64 indices (Discrete)."""
        if self.action.discrete:
            return torch.log_softmax(output, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return gaussian_log_prob(output, actions, self.action_std)


def actor_loss(actor: Actor, output: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor,
               bound_weight: float, l2_weight: float) -> torch.Tensor:
    """AWR's actor loss on a minibatch: -mean(w log pi(a|s)), plus (Box actions) bound_weight * 0.5 mean(|excess|^2)
    for the mean outside [-1, 1], plus l2_weight * 0.5 mean(|output|^2). The one definition: the CPU learner's
    hand-written steps (charctl/awr/mlp_grad.py) are tested against it."""
    loss = -(weights * actor.log_prob(output, actions)).mean()
    if not actor.action.discrete and bound_weight:
        excess = torch.clamp(output - 1.0, min=0.0) + torch.clamp(output + 1.0, max=0.0)
        loss = loss + bound_weight * 0.5 * torch.square(excess).sum(-1).mean()
    if l2_weight:
        loss = loss + l2_weight * 0.5 * torch.square(output).sum(-1).mean()
    return loss


def gaussian_log_prob(mean: torch.Tensor, actions: torch.Tensor, std: float) -> torch.Tensor:
    """Log density of a diagonal Gaussian with the same fixed std in every dimension."""
    size = mean.shape[-1]
    return (-0.5 * torch.square((actions - mean) / std).sum(-1)
            - size * (math.log(std) + 0.5 * math.log(2 * math.pi)))


class Critic(nn.Module):
    """Normalised observation -> V(s) / value_scale (the reference's fixed value normalisation)."""

    def __init__(self, obs_size: int, layers: list[int]):
        super().__init__()
        self.net = mlp(obs_size, layers, 1)

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        return self.net(obs_norm).squeeze(-1)


class NumpyPolicy:
    """The actor as plain numpy arrays: cheap per-step inference in rollout workers, evaluation and play.

    `act(obs, deterministic)` takes raw observations ([obs_dim] or [B, obs_dim]) and returns env actions
    (clipped into the box for Box spaces; int indices for Discrete).
    """

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], obs_mean: np.ndarray,
                 obs_std: np.ndarray, obs_clip: float | None, action: ActionSpec, action_std: float):
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]  # [in, out]
        self.biases = [np.asarray(b, dtype=np.float32) for b in biases]
        self.obs_mean = np.asarray(obs_mean, dtype=np.float32)
        self.obs_std = np.asarray(obs_std, dtype=np.float32)
        self.obs_clip = obs_clip
        self.action = action
        self.action_std = float(action_std)
        self.exploration_rate = 1.0  # share of `explore` calls that sample; the others take the mean
        if not action.discrete:
            self._centre, self._scale = action.centre, action.scale
            self._low, self._high = np.asarray(action.low, np.float32), np.asarray(action.high, np.float32)

    @classmethod
    def from_actor(cls, actor: Actor, normalizer: ObsNormalizer) -> "NumpyPolicy":
        linears = [m for m in actor.net if isinstance(m, nn.Linear)]
        return cls([m.weight.detach().cpu().numpy().T.copy() for m in linears],
                   [m.bias.detach().cpu().numpy().copy() for m in linears],
                   normalizer.mean, normalizer.std, normalizer.clip, actor.action, actor.action_std)

    def output(self, obs: np.ndarray) -> np.ndarray:
        """Gaussian mean in normalised units (Box) or logits (Discrete)."""
        h = (np.asarray(obs, dtype=np.float32) - self.obs_mean) / self.obs_std
        if self.obs_clip is not None:
            h = np.clip(h, -self.obs_clip, self.obs_clip)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0.0, out=h)
        return h

    def sample(self, obs: np.ndarray, rng: np.random.Generator, noise_std: float | None = None):
        """(env action, action to store): a stochastic action; Box noise std defaults to the policy's.

        For Discrete actions `noise_std` is read as the probability of a uniformly random action instead.
        """
        out = self.output(obs)
        if self.action.discrete:
            if noise_std is None:
                logits = out - out.max(axis=-1, keepdims=True)
                probs = np.exp(logits)
                probs /= probs.sum(axis=-1, keepdims=True)
                u = rng.random(probs.shape[:-1] + (1,))
                index = np.minimum((np.cumsum(probs, axis=-1) < u).sum(axis=-1), self.action.size - 1)
            else:
                index = np.argmax(out, axis=-1)
                random = rng.random(index.shape) < noise_std
                index = np.where(random, rng.integers(0, self.action.size, index.shape), index)
            index = np.asarray(index, dtype=np.int64)
            return index, index
        std = self.action_std if noise_std is None else noise_std
        norm = out + std * rng.standard_normal(out.shape).astype(np.float32)
        stored = self._centre + self._scale * norm
        return np.clip(stored, self._low, self._high), stored

    def explore(self, obs: np.ndarray, rng: np.random.Generator, noise_std: float | None = None,
                rate: float | None = None):
        """(env action, action to store, sampled?) for one training step: a sample with probability `rate`
        (default `exploration_rate`), else the mean. At rate 1 this is `sample` and draws nothing more from `rng`."""
        rate = self.exploration_rate if rate is None else rate
        if rate < 1.0 and rng.random() >= rate:
            out = self.output(obs)
            if self.action.discrete:
                index = np.asarray(np.argmax(out, axis=-1), dtype=np.int64)
                return index, index, False
            mean = self._centre + self._scale * out
            return np.clip(mean, self._low, self._high), mean, False
        return (*self.sample(obs, rng, noise_std), True)

    def act(self, obs: np.ndarray, deterministic: bool = True, rng: np.random.Generator | None = None):
        """Env action for raw observation(s): the mean / argmax, or a sample from the policy."""
        if not deterministic:
            return self.sample(obs, rng if rng is not None else np.random.default_rng())[0]
        out = self.output(obs)
        if self.action.discrete:
            return np.asarray(np.argmax(out, axis=-1), dtype=np.int64)
        return np.clip(self._centre + self._scale * out, self._low, self._high)

    def to_state(self) -> dict:
        """Plain numpy state for sending to worker processes."""
        return {"weights": self.weights, "biases": self.biases, "obs_mean": self.obs_mean, "obs_std": self.obs_std,
                "obs_clip": self.obs_clip, "action": self.action.to_dict(), "action_std": self.action_std,
                "exploration_rate": self.exploration_rate}

    @classmethod
    def from_state(cls, state: dict) -> "NumpyPolicy":
        policy = cls(state["weights"], state["biases"], state["obs_mean"], state["obs_std"], state["obs_clip"],
                     ActionSpec(**state["action"]), state["action_std"])
        policy.exploration_rate = float(state.get("exploration_rate", 1.0))
        return policy
