"""TD(lambda) value targets over whole episodes (lambda = 1 gives Monte Carlo returns).

Per episode, backwards from its last transition T-1:
    G_{T-1} = r_{T-1} + gamma * V(s_T)
    G_t     = r_t + gamma * ((1 - lambda) * V(s_{t+1}) + lambda * G_{t+1})
with V(s_T) = 0 when the episode terminated and the critic's value of its final observation when it was
truncated by a time limit.
"""

from __future__ import annotations

import numpy as np


def lambda_returns(rewards: np.ndarray, values: np.ndarray, final_values: np.ndarray, terminated: np.ndarray,
                   episode_starts: np.ndarray, episode_lengths: np.ndarray, discount: float,
                   td_lambda: float) -> np.ndarray:
    """TD(lambda) targets for flat, episode-contiguous samples.

    rewards, values: [N] per transition (values[t] = V(s_t)); final_values, terminated: [E] per episode
    (final_values[e] = V of episode e's final observation). Returns [N] float64.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    bootstrap = np.where(terminated, 0.0, np.asarray(final_values, dtype=np.float64))
    ends = episode_starts + episode_lengths  # one past each episode's last sample
    last = ends - 1

    # x_t = r_t + gamma (1 - lambda) V(s_{t+1}), and at the last step r + gamma V(s_T); then G_t = x_t + c G_{t+1}
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    next_values[last] = bootstrap
    x = rewards + discount * (1.0 - td_lambda) * next_values
    x[last] = rewards[last] + discount * bootstrap
    decay = discount * td_lambda

    # Sweep all episodes at once, by distance from their end: one vectorised step per time step of the longest.
    episode_of = np.repeat(np.arange(len(episode_lengths)), episode_lengths)
    steps_to_end = last[episode_of] - np.arange(len(rewards))
    order = np.argsort(steps_to_end, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(steps_to_end))])
    returns = np.empty_like(x)
    idx = order[bounds[0]:bounds[1]]
    returns[idx] = x[idx]
    for k in range(1, len(bounds) - 1):
        idx = order[bounds[k]:bounds[k + 1]]
        returns[idx] = x[idx] + decay * returns[idx + 1]
    return returns
