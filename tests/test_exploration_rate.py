"""exploration_rate: a share of training steps sample an action, the rest take the mean; the actor is fitted to
the sampled ones only (DeepMimic's and MimicKit's exploration probability)."""

import gymnasium as gym
import numpy as np
import torch

from charctl.awr.agent import AWRAgent
from charctl.awr.buffer import Episode, EpisodeBuffer
from charctl.awr.checkpoint import buffer_from_dict, buffer_to_dict
from charctl.awr.config import AWRConfig
from charctl.awr.policy import ActionSpec, Actor, NumpyPolicy, ObsNormalizer
from charctl.awr.rollout import collect_episodes


def policy(rate: float) -> NumpyPolicy:
    action = ActionSpec.from_space(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    torch.manual_seed(0)
    numpy_policy = NumpyPolicy.from_actor(Actor(3, action, [8], init_output_scale=1.0, action_std=0.3),
                                          ObsNormalizer(3))
    numpy_policy.exploration_rate = rate
    return numpy_policy


def test_a_rate_of_one_samples_every_step_exactly_as_before():
    obs = np.array([0.1, -0.2, 0.3], np.float32)
    explore_rng, sample_rng = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(50):
        env_action, stored, sampled = policy(1.0).explore(obs, explore_rng)
        expected_env, expected_stored = policy(1.0).sample(obs, sample_rng)
        assert sampled
        np.testing.assert_array_equal(stored, expected_stored)
        np.testing.assert_array_equal(env_action, expected_env)


def test_a_rate_below_one_takes_the_mean_on_the_other_steps():
    p, obs, rng = policy(0.3), np.array([0.1, -0.2, 0.3], np.float32), np.random.default_rng(0)
    mean = p.act(obs, deterministic=True)
    draws = [p.explore(obs, rng) for _ in range(4000)]
    flags = np.array([sampled for *_, sampled in draws])
    assert abs(flags.mean() - 0.3) < 0.03
    for env_action, stored, sampled in draws:
        if not sampled:
            np.testing.assert_array_equal(env_action, mean)
            np.testing.assert_allclose(stored, mean, atol=1e-7)
    assert np.std([stored for _, stored, sampled in draws if sampled], axis=0).min() > 0.2


def test_the_workers_policy_carries_the_rate_and_episodes_record_which_steps_sampled():
    env = gym.make("Pendulum-v1")
    try:
        obs_space, action_space = env.observation_space, env.action_space
        agent = AWRAgent(obs_space, action_space, AWRConfig(exploration_rate=0.25))
        worker_policy = NumpyPolicy.from_state(agent.policy().to_state())
        assert worker_policy.exploration_rate == 0.25
        episodes = collect_episodes(env, worker_policy, 1000, seed=0)
    finally:
        env.close()
    flags = np.concatenate([e.explored for e in episodes])
    assert len(flags) == sum(len(e) for e in episodes) and abs(flags.mean() - 0.25) < 0.05
    restored = buffer_from_dict(buffer_to_dict(episodes))  # checkpoints keep the flags
    np.testing.assert_array_equal(np.concatenate([e.explored for e in restored]), flags)


def test_the_actor_learns_from_sampled_steps_only():
    """Sampled steps took action +0.5, mean steps -0.5, all with the same reward: the fitted mean moves to +0.5
    when the flags say which were sampled, and stays between the two when every step counts."""
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(400, 2)).astype(np.float32)
    sampled = np.arange(400) % 2 == 0
    actions = np.where(sampled[:, None], 0.5, -0.5).astype(np.float32) * np.ones((1, 2), np.float32)
    means = {}
    for flags in (sampled, None):
        config = AWRConfig(actor_steps=400, critic_steps=10, samples_per_iter=400, actor_lr=0.05,
                           actor_init_output_scale=0.0, normalize_advantages=False, temperature=1e9)
        agent = AWRAgent(space, space, config)
        buffer = EpisodeBuffer(None)
        buffer.add([Episode(obs, actions, np.ones(400, np.float32), np.zeros(2, np.float32), True, flags)])
        agent.update(buffer, new_samples=400)
        means[flags is None] = agent.policy().act(obs, deterministic=True).mean()
    assert means[False] > 0.4
    assert abs(means[True]) < 0.1
