"""overlap_collection: the workers collect iteration k+1 with the policy from before update k while the learner
fits (its exact resume: tests/test_awr_runs.py)."""

import numpy as np
import pytest
import torch

import charctl.awr.trainer as trainer_module
from charctl.awr.agent import AWRAgent
from charctl.awr.checkpoint import load_checkpoint, policy_from_dict, policy_to_dict
from charctl.awr.config import load_config
from charctl.awr.rollout import Rollouts
from charctl.awr.trainer import train
from quick_training import QUICK_CARTPOLE

QUICK = {**QUICK_CARTPOLE, "eval_every": 3}


def quick_config(**extra):
    return load_config("CartPole-v1", overrides={**QUICK, **extra})


def first_weight(policy) -> np.ndarray:
    return policy.weights[0].copy()


class Recorder:
    """Wraps the run's rollouts and its agent's update: what happened in which order, with which policy."""

    def __init__(self, monkeypatch):
        self.events = []
        real_make, real_update = trainer_module.make_rollouts, AWRAgent.update
        recorder = self

        def make_rollouts(*args, **kwargs):
            rollouts = real_make(*args, **kwargs)
            real_start = rollouts.start_collect

            def start_collect(policy, num_samples, iteration, noise_std=None):
                recorder.events.append(("start", iteration, first_weight(policy)))
                real_start(policy, num_samples, iteration, noise_std)

            rollouts.start_collect = start_collect
            return rollouts

        def update(agent, buffer, new_samples):
            self.events.append(("update before", None, first_weight(agent.policy())))
            stats = real_update(agent, buffer, new_samples)
            self.events.append(("update after", None, first_weight(agent.policy())))
            return stats

        monkeypatch.setattr(trainer_module, "make_rollouts", make_rollouts)
        monkeypatch.setattr(AWRAgent, "update", update)

    def starts(self):
        return [(i, e) for i, e in enumerate(self.events) if e[0] == "start"]

    def updates(self, which):
        return [(i, e) for i, e in enumerate(self.events) if e[0] == f"update {which}"]


@pytest.mark.parametrize("overlap", [True, False])
def test_which_policy_collects_each_iteration(tmp_path, monkeypatch, overlap):
    recorder = Recorder(monkeypatch)
    train("CartPole-v1", {}, quick_config(samples=6 * 512, overlap_collection=overlap), tmp_path / "run",
          progress=False)
    starts, befores, afters = recorder.starts(), recorder.updates("before"), recorder.updates("after")
    assert [e[1] for _, e in starts] == list(range(6)) and len(befores) == 6
    for k in range(5):  # iteration k + 1's collection
        start_index, (_, _, weights) = starts[k + 1]
        before_index, (_, _, pre_update) = befores[k]
        if overlap:
            np.testing.assert_array_equal(weights, pre_update)  # one update behind
            test_iteration = k % QUICK["eval_every"] == 0
            # begun before the update, unless the iteration's test episodes needed the workers first
            assert (start_index < before_index) != test_iteration
        else:
            np.testing.assert_array_equal(weights, afters[k][1][2])
            assert start_index > afters[k][0]
        assert not np.array_equal(pre_update, afters[k][1][2])  # the update did change the policy


def test_overlap_changes_the_run_and_is_off_by_default(tmp_path):
    assert load_config("CartPole-v1").overlap_collection is False
    plain = train("CartPole-v1", {}, quick_config(samples=3 * 512), tmp_path / "plain", progress=False)
    overlapped = train("CartPole-v1", {}, quick_config(samples=3 * 512, overlap_collection=True), tmp_path / "o",
                       progress=False)
    a = load_checkpoint(plain.last_checkpoint)
    b = load_checkpoint(overlapped.last_checkpoint)
    assert a["next_collection_policy"] is None
    assert not torch.equal(a["agent"]["actor"]["net.0.weight"], b["agent"]["actor"]["net.0.weight"])


def test_worker_processes_collect_the_same_episodes_started_early(tmp_path):
    """start_collect + finish_collect with two worker processes gives what collect gives."""
    config = quick_config()
    probe = Rollouts("CartPole-v1", {}, 0, seed=3)
    agent = AWRAgent(probe.env.observation_space, probe.env.action_space, config)
    probe.close()
    policy = agent.policy()
    with_workers = Rollouts("CartPole-v1", {}, 2, seed=3)
    try:
        with_workers.start_collect(policy, 600, iteration=4)
        early = with_workers.finish_collect()
        direct = with_workers.collect(policy, 600, iteration=4)
    finally:
        with_workers.close()
    assert [len(e) for e in early] == [len(e) for e in direct] and sum(len(e) for e in early) >= 600
    for x, y in zip(early, direct):
        np.testing.assert_array_equal(x.actions, y.actions)


def test_the_next_collection_policy_round_trips_through_a_checkpoint_dict():
    config = quick_config()
    probe = Rollouts("CartPole-v1", {}, 0, seed=0)
    agent = AWRAgent(probe.env.observation_space, probe.env.action_space, config)
    observation = probe.env.reset(seed=1)[0]
    probe.close()
    policy = agent.policy()
    policy.exploration_rate = 0.25
    again = policy_from_dict(policy_to_dict(policy))
    assert again.exploration_rate == 0.25
    np.testing.assert_array_equal(again.output(observation), policy.output(observation))
