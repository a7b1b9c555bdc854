"""FIFO replay buffer of whole episodes.

Each episode keeps its final observation (the one after its last action) for bootstrapping a time-limit
truncation, but that observation is never a training sample: the flat arrays the update samples from hold
only (observation, action, reward) transitions, and the final observations live beside them, one per episode.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class Episode:
    observations: np.ndarray        # [T, obs_dim] float32: the observation each action was taken in
    actions: np.ndarray             # [T, act_dim] float32 (Box, as sampled) or [T] int64 (Discrete)
    rewards: np.ndarray             # [T] float32
    final_observation: np.ndarray   # [obs_dim] observation after the last action (never trained on)
    terminated: bool                # True: the task ended (value 0 after it); False: truncated (bootstrap)
    explored: np.ndarray | None = None  # [T] bool: the action was sampled (not the mean); None: every one was

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))


@dataclass
class FlatEpisodes:
    """All stored episodes as flat arrays, oldest first; episode e holds samples episode_starts[e] onwards."""

    observations: np.ndarray        # [N, obs_dim]
    actions: np.ndarray             # [N, act_dim] or [N]
    rewards: np.ndarray             # [N]
    episode_starts: np.ndarray      # [E] int64, offset of each episode's first sample
    episode_lengths: np.ndarray     # [E] int64
    final_observations: np.ndarray  # [E, obs_dim]
    terminated: np.ndarray          # [E] bool
    explored: np.ndarray            # [N] bool: sampled actions, the ones the actor is fitted to

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def is_last(self) -> np.ndarray:
        """[N] bool: the sample is its episode's last transition."""
        last = np.zeros(len(self), dtype=bool)
        last[self.episode_starts + self.episode_lengths - 1] = True
        return last


def flatten(episodes: list[Episode]) -> FlatEpisodes:
    lengths = np.array([len(e) for e in episodes], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return FlatEpisodes(
        observations=np.concatenate([e.observations for e in episodes]).astype(np.float32, copy=False),
        actions=np.concatenate([e.actions for e in episodes]),
        rewards=np.concatenate([e.rewards for e in episodes]).astype(np.float32, copy=False),
        episode_starts=starts,
        episode_lengths=lengths,
        final_observations=np.stack([e.final_observation for e in episodes]).astype(np.float32, copy=False),
        terminated=np.array([e.terminated for e in episodes], dtype=bool),
        explored=np.concatenate([np.ones(len(e), dtype=bool) if e.explored is None else e.explored
                                 for e in episodes]),
    )


def unflatten(flat: FlatEpisodes) -> list[Episode]:
    return [Episode(observations=flat.observations[s:s + n], actions=flat.actions[s:s + n],
                    rewards=flat.rewards[s:s + n], final_observation=flat.final_observations[i],
                    terminated=bool(flat.terminated[i]), explored=flat.explored[s:s + n])
            for i, (s, n) in enumerate(zip(flat.episode_starts, flat.episode_lengths))]


class EpisodeBuffer:
    """Holds at most `capacity` samples (transitions); adding evicts whole oldest episodes.

    `capacity=None` keeps everything (a static dataset). The newest batch is never evicted, even when it alone
    exceeds the capacity, so an iteration always trains on its own data.
    """

    def __init__(self, capacity: int | None):
        self.capacity = capacity
        self._episodes: deque[Episode] = deque()
        self._size = 0
        self._flat: FlatEpisodes | None = None

    def __len__(self) -> int:
        return self._size

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def clear(self) -> None:
        self._episodes.clear()
        self._size = 0
        self._flat = None

    def add(self, episodes: list[Episode]) -> None:
        for episode in episodes:
            if len(episode) == 0:
                raise ValueError("an episode needs at least one transition")
            self._episodes.append(episode)
            self._size += len(episode)
        protected = len(episodes)
        while (self.capacity is not None and self._size > self.capacity
               and len(self._episodes) > protected):
            self._size -= len(self._episodes.popleft())
        self._flat = None

    def flat(self) -> FlatEpisodes:
        """The stored episodes as flat arrays (cached until the next add)."""
        if self._flat is None:
            if not self._episodes:
                raise ValueError("the replay buffer is empty")
            self._flat = flatten(list(self._episodes))
        return self._flat

    def episodes(self) -> list[Episode]:
        return list(self._episodes)
