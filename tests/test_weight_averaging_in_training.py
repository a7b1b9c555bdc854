"""The mean of the actor's weights kept during training (AWRConfig.average_from, average_window): its arithmetic,
that a run tests, saves and plays it while the rollouts keep the actor, that a resume continues it exactly, and
that it never begins before the observation normaliser is frozen."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from charctl.awr.agent import AWRAgent
from charctl.awr.checkpoint import actor_from_checkpoint, load_checkpoint, policy_from_checkpoint, save_checkpoint
from charctl.awr.config import load_config
from charctl.awr.trainer import train
from charctl.cli import main
from charctl.play.policy_file import open_policy
from quick_training import QUICK_CARTPOLE

QUICK = {**QUICK_CARTPOLE, "normalizer_samples": 1024}


def quick_config(**extra):
    return load_config("CartPole-v1", overrides={**QUICK, **extra})


def agent_with(**settings) -> AWRAgent:
    return AWRAgent(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (2,)), quick_config(**settings))


def set_actor(agent: AWRAgent, value: float) -> None:
    with torch.no_grad():
        for parameter in agent.actor.parameters():
            parameter.fill_(value)


def average_values(agent: AWRAgent) -> set[float]:
    return {round(float(v), 6) for p in agent.actor_average.parameters() for v in p.detach().flatten()}


def test_the_plain_mean_gives_every_update_since_average_from_an_equal_share():
    agent = agent_with(average_from=1000)
    set_actor(agent, 5.0)
    agent.update_average(samples=600, new_samples=600)  # before average_from: no mean yet
    assert agent.actor_average is None and agent.policy(averaged=True).weights[0][0, 0] == 5.0
    for samples, value in ((1100, 1.0), (1700, 2.0), (2300, 6.0)):
        set_actor(agent, value)
        agent.update_average(samples=samples, new_samples=600)
    assert average_values(agent) == {3.0} and agent.averaged_updates == 3
    # the collecting policy is the actor, the tested one the mean
    assert agent.policy().weights[0][0, 0] == 6.0 and agent.policy(averaged=True).weights[0][0, 0] == 3.0


def test_a_window_is_an_exponential_moving_average_by_samples():
    agent = agent_with(average_from=0, average_window=2000)
    set_actor(agent, 0.0)
    agent.update_average(samples=500, new_samples=500)  # the first update starts the mean at the actor
    set_actor(agent, 1.0)
    agent.update_average(samples=1000, new_samples=500)  # a quarter of the way to the new actor
    assert average_values(agent) == {0.25}
    agent.update_average(samples=3000, new_samples=2000)  # a whole window of new samples replaces it
    assert average_values(agent) == {1.0}


def test_moving_average_from_later_on_a_resume_starts_the_mean_again():
    agent = agent_with(average_from=0)
    agent.update_average(samples=500, new_samples=500)
    agent.config.average_from = 5000
    agent.update_average(samples=1000, new_samples=500)
    assert agent.actor_average is None and agent.averaged_updates == 0


def test_a_run_tests_and_saves_the_mean_and_a_resume_continues_it_exactly(tmp_path):
    settings = dict(average_from=1024, eval_every=1)
    whole = train("CartPole-v1", {}, quick_config(samples=5 * 512, **settings), tmp_path / "whole", progress=False)
    train("CartPole-v1", {}, quick_config(samples=3 * 512, **settings), tmp_path / "split", progress=False)
    split = train("CartPole-v1", {}, quick_config(), tmp_path / "split", resume=True, progress=False,
                  changes={"samples": 5 * 512})
    a, b = (load_checkpoint(r.last_checkpoint) for r in (whole, split))
    assert a["agent"]["averaged_updates"] == b["agent"]["averaged_updates"] >= 2
    for key, value in a["agent"]["actor_average"].items():
        torch.testing.assert_close(value, b["agent"]["actor_average"][key], rtol=0, atol=0)
        if key.endswith("weight"):
            assert not torch.equal(value, a["agent"]["actor"][key])  # the mean is not the last actor
    # what plays is the mean, in the last and the best checkpoints alike
    for state in (a, load_checkpoint(whole.best_checkpoint)):
        played = actor_from_checkpoint(state).state_dict()
        assert all(torch.equal(played[k], state["agent"]["actor_average"][k]) for k in played)


def test_a_run_without_average_from_keeps_no_mean(tmp_path):
    result = train("CartPole-v1", {}, quick_config(samples=2 * 512), tmp_path / "run", progress=False)
    state = load_checkpoint(result.last_checkpoint)
    assert state["agent"]["actor_average"] is None
    played = actor_from_checkpoint(state).state_dict()
    assert torch.equal(played["net.0.weight"], state["agent"]["actor"]["net.0.weight"])


@pytest.mark.parametrize("settings, where", [
    ({"average_from": 512}, "average_from 512: before normalizer_samples (1024)"),
    ({"switches": {600: {"average_from": 700}}}, "switches: 600: average_from 700: before normalizer_samples"),
])
def test_a_mean_before_the_normaliser_is_frozen_is_refused_before_anything_is_written(tmp_path, capsys, settings,
                                                                                      where):
    out = tmp_path / "run"
    argv = ["train", "gym", "CartPole-v1", "--out", str(out), "--samples", "1024"]
    for key, value in {**QUICK, **settings}.items():
        argv += ["--set", f"{key}={value}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert where in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_charctl_average_and_a_warm_start_take_a_runs_mean(tmp_path):
    result = train("CartPole-v1", {}, quick_config(samples=4 * 512, average_from=1024), tmp_path / "run",
                   progress=False)
    state = load_checkpoint(result.last_checkpoint)
    copy = tmp_path / "copy.pt"
    save_checkpoint(copy, {**state, "samples": state["samples"] - 1})
    out = tmp_path / "mean.pt"
    assert main(["average", str(result.last_checkpoint), str(copy), "--out", str(out)]) == 0
    averaged = load_checkpoint(out)
    assert averaged["agent"]["actor_average"] is None  # its actor is the mean now
    observations = np.random.default_rng(0).normal(size=(32, 4))
    assert np.array_equal(policy_from_checkpoint(averaged).act(observations),
                          policy_from_checkpoint(state).act(observations))
    warm = train("CartPole-v1", {}, quick_config(samples=512, actor_steps=0, init_from=str(result.last_checkpoint)),
                 tmp_path / "warm", progress=False)
    begun = load_checkpoint(warm.last_checkpoint)["agent"]["actor"]
    assert all(torch.equal(begun[k], state["agent"]["actor_average"][k]) for k in begun)


def test_the_dog_trot_policy_file_reads_without_a_mean():
    state = load_checkpoint(Path(__file__).resolve().parents[1] / "policies" / "dog_trot.pt")
    assert state["agent"].get("actor_average") is None


def test_eval_actor_plays_the_fitted_actor_and_is_refused_without_a_mean(tmp_path, capsys):
    result = train("CartPole-v1", {}, quick_config(samples=4 * 512, average_from=1024), tmp_path / "run",
                   progress=False)
    state = load_checkpoint(result.last_checkpoint)
    fitted, mean = (open_policy(result.last_checkpoint, averaged=flag).policy for flag in (False, True))
    assert np.array_equal(fitted.weights[0], state["agent"]["actor"]["net.0.weight"].numpy().T)  # [in, out]
    assert np.array_equal(mean.weights[0], state["agent"]["actor_average"]["net.0.weight"].numpy().T)
    assert not np.array_equal(fitted.weights[0], mean.weights[0])
    assert main(["eval", str(result.last_checkpoint), "--actor", "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["actor"] is True
    # beside a checkpoint with no mean, start by start: that one plays its actor as it always does
    plain = train("CartPole-v1", {}, quick_config(samples=2 * 512), tmp_path / "plain", progress=False)
    assert main(["eval", str(plain.last_checkpoint), str(result.last_checkpoint), "--actor", "--episodes", "1"]) == 0
    assert "samples, the actor)" in capsys.readouterr().out
    trot = Path(__file__).resolve().parents[1] / "policies" / "dog_trot.pt"
    assert main(["eval", str(trot), "--actor"]) == 2
    err = capsys.readouterr().err
    assert "dog_trot.pt: --actor: keeps no mean of the actor's weights" in err, err
    assert len(err.strip().splitlines()) == 1, err
