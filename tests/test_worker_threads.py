"""Rollout workers run their env and policy on one BLAS thread and one torch thread, whatever the learner's
`torch_threads`: more only spin against the other workers (docs/benchmarks.md)."""

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from threadpoolctl import threadpool_info, threadpool_limits

from charctl.awr.agent import AWRAgent
from charctl.awr.config import load_config
from charctl.awr.rollout import Rollouts, make_env


def blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


class ThreadCountingCartPole(CartPoleEnv):
    """CartPole rewarding each step with what the process stepping it runs on: BLAS threads + 10 x torch threads."""

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, float(blas_threads() + 10 * torch.get_num_threads()), terminated, truncated, info


gym.register("charctl-test/ThreadCountingCartPole-v0", entry_point=ThreadCountingCartPole, max_episode_steps=50)


def test_rollout_workers_run_on_one_thread_whatever_the_learners():
    probe = make_env("charctl-test/ThreadCountingCartPole-v0")
    policy = AWRAgent(probe.observation_space, probe.action_space, load_config("CartPole-v1")).policy()
    probe.close()
    learner_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            assert blas_threads() == 2  # the learner's, which a forked worker would inherit
            rollouts = Rollouts("charctl-test/ThreadCountingCartPole-v0", {}, 2, seed=0)
            try:
                episodes = rollouts.collect(policy, 100, iteration=0)
            finally:
                rollouts.close()
    finally:
        torch.set_num_threads(learner_threads)
    rewards = np.concatenate([episode.rewards for episode in episodes])
    assert len(rewards) >= 100 and set(rewards.tolist()) == {11.0}
