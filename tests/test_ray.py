"""Rollout workers as Ray actors on a local Ray instance: same results as local workers, imitation and Gym runs
whose checkpoints play, a killed actor replaced mid-run, and a clear message without Ray."""

import builtins
import csv
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray")

from charctl.awr.checkpoint import load_checkpoint  # noqa: E402
from charctl.awr.config import load_config  # noqa: E402
from charctl.awr.ray_rollout import RayRollouts  # noqa: E402
from charctl.awr.rollout import Rollouts  # noqa: E402
from charctl.awr.trainer import train  # noqa: E402
from charctl.cli import main  # noqa: E402
from quick_training import QUICK_CARTPOLE  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")  # one Ray instance for the whole module
QUICK = {**QUICK_CARTPOLE, "actor_steps": 50, "num_workers": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_workers_collect_exactly_what_local_workers_do(tmp_path):
    config = load_config("CartPole-v1", overrides={**QUICK, "samples": 2 * 512})
    with_ray = train("CartPole-v1", {}, config, tmp_path / "ray", progress=False, ray_address="local")
    local = train("CartPole-v1", {}, config, tmp_path / "local", progress=False)
    assert (with_ray.iteration, with_ray.samples) == (local.iteration, local.samples)
    a = load_checkpoint(with_ray.last_checkpoint)["agent"]["actor"]
    b = load_checkpoint(local.last_checkpoint)["agent"]["actor"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert main(["eval", str(with_ray.best_checkpoint), "--episodes", "2"]) == 0
    video = tmp_path / "cartpole.gif"
    assert main(["play", str(with_ray.best_checkpoint), "--record", str(video), "--seconds", "1"]) == 0
    assert video.stat().st_size > 0


def test_ray_imitation_run_leaves_a_playable_checkpoint(tmp_path):
    out = tmp_path / "dog"
    assert main(["train", "dog", "trot", "--out", str(out), "--samples", "256", "--no-progress",
                 "--set", "samples_per_iter=256", "--set", "critic_steps=5", "--set", "actor_steps=10",
                 "--set", "eval_episodes=1", "--set", "env.time_limit=2", "--ray"]) == 0
    assert main(["play", str(out / "dog_trot.pt"), "--record", str(tmp_path / "dog.gif"), "--seconds", "0.5",
                 "--width", "96", "--height", "72"]) == 0
    assert (tmp_path / "dog.gif").stat().st_size > 0


def actor_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "ray::RolloutActor"], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_a_killed_actor_is_replaced_and_its_share_collected_again():
    policy = open_policy_free_cartpole()
    with RayRollouts("CartPole-v1", {}, 2, seed=3, log=lambda message: None) as rollouts, \
            Rollouts("CartPole-v1", {}, 2, seed=3) as local:
        try:
            os.kill(rollouts.pids()[0], signal.SIGKILL)
        except ProcessLookupError:  # the actor ended on its own first (seen once, 2 cores under full load): a dead
            pass  # actor all the same, which is what the run must replace
        episodes = rollouts.collect(policy, 600, iteration=5)
        assert rollouts.restarts == 1
        expected = local.collect(policy, 600, iteration=5)
    assert len(episodes) == len(expected)
    for got, want in zip(episodes, expected):
        np.testing.assert_array_equal(got.actions, want.actions)


def open_policy_free_cartpole():
    """An untrained CartPole policy (a fresh agent's), without any file."""
    from charctl.awr.agent import AWRAgent
    from charctl.awr.rollout import make_env

    env = make_env("CartPole-v1")
    agent = AWRAgent(env.observation_space, env.action_space, load_config("CartPole-v1"))
    env.close()
    return agent.policy()


def test_training_survives_an_actor_killed_mid_run(tmp_path, capsys):
    out = tmp_path / "run"
    config = load_config("CartPole-v1", overrides={**QUICK, "samples": 8 * 512})
    killed = []

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            progress = out / "progress.csv"
            if progress.exists() and len(progress.read_text().splitlines()) >= 3:  # header + 2 iterations
                for pid in actor_pids():  # all of them: a just-closed actor of an earlier test may linger
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = train("CartPole-v1", {}, config, out, progress=False, ray_address="local")
    thread.join(timeout=5)
    assert killed, "no actor was killed"
    assert result.iteration == 8 and load_checkpoint(result.last_checkpoint)["iteration"] == 8
    with open(out / "progress.csv", newline="") as f:
        restarts = sum(int(row["worker_restarts"]) for row in csv.DictReader(f))
    assert restarts >= 1
    assert "replaced it" in capsys.readouterr().out  # the console reports it too


def test_without_ray_the_option_says_how_to_install(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["train", "gym", "CartPole-v1", "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'charctl[ray]'" in err
