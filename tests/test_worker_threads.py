"""A policy steps on one BLAS thread wherever it runs one observation at a time: rollout workers (and one torch
thread there, whatever the learner's `torch_threads`), `charctl eval` in its process and its forked workers, and
`charctl play`; more threads only spin against whatever else runs (docs/benchmarks.md)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from threadpoolctl import threadpool_info, threadpool_limits

from charctl.awr.agent import AWRAgent
from charctl.awr.config import load_config
from charctl.awr.rollout import Rollouts, make_env
from charctl.play.evaluation import evaluate


def blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


class ThreadCountingCartPole(CartPoleEnv):
    """CartPole rewarding each step with what the process stepping it runs on: its BLAS threads, plus 10 x its
    torch threads with `count_torch`."""

    def __init__(self, count_torch: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.count_torch = count_torch

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        threads = blas_threads() + (10 * torch.get_num_threads() if self.count_torch else 0)
        return obs, float(threads), terminated, truncated, info


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


@pytest.mark.parametrize("workers", [0, 2])
def test_evaluation_runs_the_policy_on_one_blas_thread_and_gives_the_callers_back(workers):
    env = make_env("charctl-test/ThreadCountingCartPole-v0", {"count_torch": False})
    policy = AWRAgent(env.observation_space, env.action_space, load_config("CartPole-v1")).policy()
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            result = evaluate(env, policy, episodes=2, workers=workers)
            assert blas_threads() == 2
    finally:
        env.close()
    assert result.returns == [float(length) for length in result.lengths]  # a reward of 1 thread every step


def test_play_runs_the_policy_on_one_blas_thread(tmp_path, monkeypatch):
    from charctl.cli import main
    from charctl.play.playback import Player

    seen, step = [], Player.step
    monkeypatch.setattr(Player, "step", lambda self: (seen.append(blas_threads()), step(self))[1])
    with threadpool_limits(limits=2, user_api="blas"):
        assert main(["play", "policies/dog_trot.pt", "--record", str(tmp_path / "trot.gif"), "--seconds", "0.2",
                     "--width", "64", "--height", "48"]) == 0
        assert blas_threads() == 2
    assert seen and set(seen) == {1}
