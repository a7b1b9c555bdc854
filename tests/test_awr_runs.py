"""Whole AWR runs: checkpoints survive SIGKILL and resume (an imitation run stopped by kill -9, Ctrl-C and SIGTERM at
random moments finishes as if never stopped), Ctrl-C stops cleanly, static datasets train without
stepping the env, `charctl collect` writes a dataset, and the ablation switches change what the update sees."""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import charctl.awr.trainer as trainer_module
from charctl.awr.buffer import Episode
from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.config import load_config
from charctl.awr.dataset import load_dataset, save_dataset
from charctl.awr.policy import ActionSpec
from charctl.awr.rollout import make_env
from charctl.awr.trainer import train
from charctl.cli import main
from charctl.util.errors import CharctlError
from quick_training import QUICK_CARTPOLE

# A small, quick CartPole setting: 512 new samples and 20 + 100 gradient steps per iteration.
QUICK = dict(QUICK_CARTPOLE)


def quick_config(**extra):
    return load_config("CartPole-v1", overrides={**QUICK, **extra})


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def cli(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "charctl", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def wait_for_iteration(run_dir: Path, at_least: int, process: subprocess.Popen, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (run_dir / "progress.csv").exists() and len(rows(run_dir)) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("training made no progress")


def test_sigkill_at_any_moment_resumes_from_an_intact_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "gym", "CartPole-v1", "--out", str(run_dir), "--no-progress", "--samples", "40000",
            *[f"--set={k}={v}" for k, v in QUICK.items()]]
    killed_at = []
    for delay in (0.0, 0.13, 0.31):  # different moments within an iteration (one takes ~0.3-0.5 s)
        process = cli(*args, *(["--resume"] if killed_at else []))
        wait_for_iteration(run_dir, (len(rows(run_dir)) if killed_at else 0) + 2, process)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = load_checkpoint(run_dir / "CartPole-v1-last.pt")  # never torn
        killed_at.append(state["iteration"])
    assert killed_at == sorted(killed_at) and killed_at[-1] > killed_at[0]

    finish = subprocess.run([sys.executable, "-m", "charctl", *args[:-len(QUICK)], "--samples",
                             str((killed_at[-1] + 3) * 512), "--resume",
                             *[f"--set={k}={v}" for k, v in QUICK.items()]], capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr
    final = load_checkpoint(run_dir / "CartPole-v1-last.pt")
    assert final["iteration"] == killed_at[-1] + 3
    table = rows(run_dir)
    assert [int(r["iteration"]) for r in table] == list(range(final["iteration"]))  # no gap, no repeat
    samples = [int(r["samples"]) for r in table]
    assert samples == sorted(samples) and samples[-1] == final["samples"]
    assert not list(run_dir.glob(".*.tmp"))


# A dog trot run small enough to stop three times: about 85 samples and 2-3 s per iteration, 8 iterations.
DOG = ["train", "dog", "trot", "--no-progress", "--samples", "600", "--workers", "2", "--set", "samples_per_iter=64",
       "--set", "critic_steps=5", "--set", "actor_steps=10", "--set", "eval_every=3", "--set", "eval_episodes=1",
       "--set", "env.time_limit=1"]
SAME_IN_BOTH = ["iteration", "samples", "train_return", "test_return", "critic_loss", "actor_loss", "buffer_samples"]


@pytest.mark.slow
def test_an_imitation_run_stopped_at_random_moments_finishes_as_if_never_stopped(tmp_path):
    """kill -9, Ctrl-C (SIGINT to the process group, as a terminal sends it) and SIGTERM in a seeded random order,
    each at a seeded random moment of an iteration; after each, the bare resume command goes on from the last
    finished iteration (kill -9 and Ctrl-C lose the one in flight, SIGTERM finishes it) with the run's own settings,
    and the finished run has the uninterrupted run's weights, optimiser and normaliser state, and progress.csv."""
    rng = random.Random(19)
    whole = cli(*DOG, "--out", str(tmp_path / "whole"))  # alongside: only the moments of the stops depend on time
    run_dir = tmp_path / "run"
    for index, sig in enumerate(rng.sample([signal.SIGKILL, signal.SIGINT, signal.SIGTERM], 3)):
        resume = ["--resume"] if index else []
        process = cli(*(["train", "dog", "trot", "--no-progress"] if index else DOG), "--out", str(run_dir),
                      *resume, start_new_session=True)
        finished = stop_at_a_random_moment(process, run_dir, sig, rng)
        state = load_checkpoint(run_dir / "dog_trot-last.pt")  # never torn
        assert state["iteration"] >= finished, (sig, finished, state["iteration"])  # at most one iteration lost
    finish = subprocess.run([sys.executable, "-m", "charctl", "train", "dog", "trot", "--no-progress", "--resume",
                             "--out", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    assert whole.wait(timeout=300) == 0, whole.communicate()

    got, want = load_checkpoint(run_dir / "dog_trot-last.pt"), load_checkpoint(tmp_path / "whole" / "dog_trot-last.pt")
    assert (got["iteration"], got["samples"], got["config"]) == (want["iteration"], want["samples"], want["config"])
    assert_identical(got["agent"], want["agent"])
    assert [[r[k] for k in SAME_IN_BOTH] for r in rows(run_dir)] == \
        [[r[k] for k in SAME_IN_BOTH] for r in rows(tmp_path / "whole")]
    assert not (run_dir / "settings_changes.txt").exists() and not list(run_dir.glob(".*.tmp"))


def stop_at_a_random_moment(process: subprocess.Popen, run_dir: Path, sig: int, rng: random.Random) -> int:
    """Wait for one more finished iteration, then signal at a random point of the next one; the number of
    iterations finished just before the signal."""
    before = len(rows(run_dir)) if (run_dir / "progress.csv").exists() else 0
    wait_for_iteration(run_dir, before + 1, process, timeout=180)
    table = rows(run_dir)
    time.sleep(rng.random() * (float(table[-1]["wall_time"]) - float(table[-2]["wall_time"] if len(table) > 1 else 0)))
    finished = len(rows(run_dir))
    assert process.poll() is None, "the run ended before it could be stopped"
    if sig == signal.SIGINT:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    process.communicate(timeout=60)
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 128 + signal.SIGTERM}.get(sig, -sig)
    return finished


def assert_identical(got, want) -> None:
    """Nested checkpoint state: same keys, bit-identical tensors and arrays, equal values."""
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            assert_identical(got[key], want[key])
    elif isinstance(want, torch.Tensor):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    elif isinstance(want, np.ndarray):
        np.testing.assert_array_equal(got, want)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert_identical(a, b)
    else:
        assert got == want


def test_ctrl_c_stops_cleanly_and_keeps_the_last_iteration(tmp_path):
    run_dir = tmp_path / "run"
    process = cli("train", "gym", "CartPole-v1", "--out", str(run_dir), "--no-progress", "--samples", "1000000",
                  "--workers", "2", *[f"--set={k}={v}" for k, v in QUICK.items() if k != "num_workers"])
    wait_for_iteration(run_dir, 2, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in out and "--resume" in out
    assert "Traceback" not in err
    state = load_checkpoint(run_dir / "CartPole-v1-last.pt")
    assert state["iteration"] >= 2 and len(rows(run_dir)) == state["iteration"]


@pytest.mark.parametrize("overlap", [False, True])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, overlap):
    """With overlap_collection too: the checkpoint carries the policy (from before the last update) that
    collects the next iteration."""
    whole = train("CartPole-v1", {}, quick_config(samples=4 * 512, overlap_collection=overlap), tmp_path / "whole",
                  progress=False)
    first = train("CartPole-v1", {}, quick_config(samples=2 * 512, overlap_collection=overlap), tmp_path / "split",
                  progress=False)
    assert (load_checkpoint(first.last_checkpoint)["next_collection_policy"] is not None) == overlap
    split = train("CartPole-v1", {}, quick_config(), tmp_path / "split", resume=True, progress=False,
                  changes={"samples": 4 * 512})
    assert (whole.iteration, whole.samples) == (split.iteration, split.samples)
    a = load_checkpoint(whole.last_checkpoint)["agent"]["actor"]
    b = load_checkpoint(split.last_checkpoint)["agent"]["actor"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_resume_with_changes_applies_them_from_there_on_and_records_them(tmp_path):
    train("CartPole-v1", {}, quick_config(samples=2 * 512), tmp_path / "run", progress=False)
    before = load_checkpoint(tmp_path / "run" / "CartPole-v1-last.pt")
    # actor_lr 0 freezes the actor: proof the new rate, not the saved optimiser's, drives the steps
    result = train("CartPole-v1", {}, quick_config(), tmp_path / "run", resume=True, progress=False,
                   changes={"samples": 4 * 512, "actor_lr": 0, "obs_clip": 5.0})
    after = load_checkpoint(result.last_checkpoint)
    assert after["iteration"] == 4
    for key, value in before["agent"]["actor"].items():
        torch.testing.assert_close(after["agent"]["actor"][key], value, rtol=0, atol=0)
    assert not torch.equal(after["agent"]["critic"]["net.0.weight"], before["agent"]["critic"]["net.0.weight"])
    assert (after["config"]["actor_lr"], after["config"]["obs_clip"]) == (0.0, 5.0)
    assert after["agent"]["actor_optimizer"]["param_groups"][0]["lr"] == 0.0
    assert after["agent"]["normalizer"]["clip"] == 5.0
    assert (tmp_path / "run" / "settings_changes.txt").read_text() == \
        f"iteration 2 ({before['samples']} samples): samples 1024 -> 2048; actor_lr 0.0005 -> 0.0; " \
        "obs_clip None -> 5.0\n"
    # a resume that changes nothing keeps the changed settings and records nothing new
    train("CartPole-v1", {}, quick_config(), tmp_path / "run", resume=True, progress=False,
          changes={"samples": 4 * 512, "actor_lr": 0.0})
    assert load_checkpoint(result.last_checkpoint)["config"]["actor_lr"] == 0.0
    assert len((tmp_path / "run" / "settings_changes.txt").read_text().splitlines()) == 1


def test_a_resume_stopped_before_its_first_iteration_and_rerun_records_its_changes_once(tmp_path, monkeypatch):
    samples = train("CartPole-v1", {}, quick_config(samples=2 * 512), tmp_path / "run", progress=False).samples
    history = tmp_path / "run" / "settings_changes.txt"

    def stopped(run):  # Ctrl-C during the resume's first iteration: the checkpoint still holds the old settings
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module._Run, "iterate", stopped)
        result = train("CartPole-v1", {}, quick_config(), tmp_path / "run", resume=True, progress=False,
                       changes={"samples": 3 * 512, "actor_lr": 0.001})
    assert result.interrupted and load_checkpoint(result.last_checkpoint)["config"]["actor_lr"] == 0.0005
    assert history.read_text().count("\n") == 1
    train("CartPole-v1", {}, quick_config(), tmp_path / "run", resume=True, progress=False,
          changes={"samples": 3 * 512, "actor_lr": 0.001})
    assert history.read_text() == f"iteration 2 ({samples} samples): samples 1024 -> 1536; actor_lr 0.0005 -> 0.001\n"
    # the same changes at a later iteration are a new line
    train("CartPole-v1", {}, quick_config(), tmp_path / "run", resume=True, progress=False,
          changes={"samples": 4 * 512, "actor_lr": 0.0005})
    assert history.read_text().splitlines()[1].startswith("iteration 3 ")


def test_resume_refuses_to_change_the_networks(tmp_path):
    train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    with pytest.raises(CharctlError, match=r"--set actor_layers: a resumed run keeps its actor_layers \(\[128, 64\]\)"):
        train("CartPole-v1", {}, quick_config(samples=1024), tmp_path / "run", resume=True, progress=False,
              changes={"actor_layers": [32]})
    assert load_checkpoint(tmp_path / "run" / "CartPole-v1-last.pt")["iteration"] == 1  # nothing lost


def test_run_directory_refuses_a_second_run_and_a_resume_on_another_env(tmp_path):
    train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    with pytest.raises(CharctlError, match="already exists"):
        train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    (tmp_path / "run" / "CartPole-v1-last.pt").rename(tmp_path / "run" / "Acrobot-v1-last.pt")
    with pytest.raises(CharctlError, match="trained on CartPole-v1"):
        train("Acrobot-v1", {}, quick_config(samples=1024), tmp_path / "run", resume=True, progress=False)


def test_best_and_last_checkpoints_are_written(tmp_path):
    result = train("CartPole-v1", {}, quick_config(samples=3 * 512, eval_every=1), tmp_path / "run",
                   progress=False)
    best, last = load_checkpoint(result.best_checkpoint), load_checkpoint(result.last_checkpoint)
    tested = [float(r["test_return"]) for r in rows(tmp_path / "run")]
    assert best["best_test_return"] == pytest.approx(max(tested), rel=1e-5)
    assert best["buffer"] is None and last["buffer"] is not None
    assert last["iteration"] == 3


def cartpole_demonstrations(episodes: int, seed: int) -> list[Episode]:
    """A hand-written controller (push toward where the pole falls) with 20% random actions."""
    env, rng, out = make_env("CartPole-v1"), np.random.default_rng(seed), []
    for j in range(episodes):
        obs, _ = env.reset(seed=seed + j)
        observations, actions, rewards = [], [], []
        while True:
            action = int(obs[2] + 0.5 * obs[3] > 0) if rng.random() > 0.2 else int(rng.integers(2))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            obs = next_obs
            if terminated or truncated:
                break
        out.append(Episode(np.array(observations, np.float32), np.array(actions, np.int64),
                           np.array(rewards, np.float32), np.array(obs, np.float32), bool(terminated)))
    return out


def test_static_dataset_trains_without_stepping_the_env(tmp_path, monkeypatch):
    demos = cartpole_demonstrations(30, seed=1)
    save_dataset(tmp_path / "demo.npz", demos, "CartPole-v1")
    demo_return = np.mean([e.total_reward for e in demos])
    random_return = 22.0  # CartPole-v1 with uniform random actions

    def no_stepping(env_id, env_kwargs=None):
        env = make_env(env_id, env_kwargs)
        env.step = lambda action: pytest.fail("the env was stepped while training from a static dataset")
        return env

    monkeypatch.setattr(trainer_module, "make_env", no_stepping)
    config = quick_config(samples=10 * 512, eval_episodes=0, actor_steps=200)
    result = train("CartPole-v1", {}, config, tmp_path / "offline", dataset=tmp_path / "demo.npz", progress=False)
    assert result.iteration == 10

    from charctl.play.evaluation import evaluate
    from charctl.play.policy_file import open_policy
    task = open_policy(result.last_checkpoint)
    score = evaluate(task.make_env(), task.policy, episodes=5).summary()["mean_return"]
    assert score > 0.5 * demo_return and score > 4 * random_return


def test_dataset_errors_name_the_file_and_the_array(tmp_path):
    demos = cartpole_demonstrations(2, seed=0)
    action = ActionSpec(discrete=True, size=2)
    save_dataset(tmp_path / "ok.npz", demos, "CartPole-v1")
    assert sum(len(e) for e in load_dataset(tmp_path / "ok.npz", 4, action)) == sum(len(e) for e in demos)
    with pytest.raises(CharctlError, match="ok.npz: 'observations' has shape"):
        load_dataset(tmp_path / "ok.npz", 5, action)
    with pytest.raises(CharctlError, match="collected in CartPole-v1, not Acrobot-v1"):
        load_dataset(tmp_path / "ok.npz", 4, action, "Acrobot-v1")
    data = dict(np.load(tmp_path / "ok.npz"))
    data["rewards"][3] = np.nan
    np.savez(tmp_path / "nan.npz", **data)
    with pytest.raises(CharctlError, match="nan.npz: 'rewards' row 3 is not finite"):
        load_dataset(tmp_path / "nan.npz", 4, action)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(CharctlError, match="junk.npz: not a readable"):
        load_dataset(tmp_path / "junk.npz", 4, action)


def test_collect_writes_whole_episodes_from_a_checkpoint(tmp_path, capsys):
    result = train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    out = tmp_path / "data.npz"
    assert main(["collect", str(result.last_checkpoint), "--samples", "700", "--noise", "0.1", "--out", str(out),
                 "--workers", "0"]) == 0
    data = np.load(out)
    ends = data["terminated"] | data["truncated"]
    assert len(data["rewards"]) >= 700 and ends[-1] and not (data["terminated"] & data["truncated"]).any()
    assert str(data["env_id"]) == "CartPole-v1"
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    # inside an episode, the next observation is the following row's observation
    inside = np.setdiff1d(np.arange(len(ends) - 1), np.flatnonzero(ends))
    np.testing.assert_array_equal(data["next_observations"][inside], data["observations"][inside + 1])
    assert len(starts) == ends.sum()
    assert main(["collect", str(result.last_checkpoint), "--samples", "10", "--out", str(tmp_path / "x.txt")]) == 2
    assert "datasets are .npz" in capsys.readouterr().err


@pytest.mark.parametrize("ablation, check", [
    ({"on_policy": True}, lambda table: all(int(r["buffer_samples"]) < 2 * 512 for r in table)),
    ({"on_policy": False}, lambda table: int(table[-1]["buffer_samples"]) >= 3 * 512),
])
def test_on_policy_ablation_keeps_only_the_latest_iteration(tmp_path, ablation, check):
    train("CartPole-v1", {}, quick_config(samples=3 * 512, **ablation), tmp_path / "run", progress=False)
    assert check(rows(tmp_path / "run"))


def test_rwr_and_monte_carlo_ablations_change_the_weights(tmp_path, monkeypatch):
    seen = {}
    original = trainer_module.AWRAgent.update

    def spy(self, buffer, new_samples):
        flat = buffer.flat()
        stats = original(self, buffer, new_samples)
        seen[(self.config.baseline, self.config.returns)] = (stats["adv_mean"], flat)
        return stats

    monkeypatch.setattr(trainer_module.AWRAgent, "update", spy)
    for index, (baseline, returns) in enumerate([(True, "td_lambda"), (False, "monte_carlo")]):
        train("CartPole-v1", {}, quick_config(samples=512, baseline=baseline, returns=returns),
              tmp_path / f"run{index}", progress=False)
    # RWR with Monte Carlo returns: the "advantages" are the discounted returns themselves
    adv_mean, flat = seen[(False, "monte_carlo")]
    assert flat.terminated.all()  # a near-random CartPole policy falls long before the time limit
    expected = []
    for start, length in zip(flat.episode_starts, flat.episode_lengths):
        g = 0.0
        for r in flat.rewards[start:start + length][::-1]:
            g = r + 0.99 * g
            expected.append(g)
    assert adv_mean == pytest.approx(np.mean(expected), rel=1e-4)
    assert abs(seen[(True, "td_lambda")][0]) < 0.5 * adv_mean  # the value baseline takes most of it out


def test_eval_baseline_needs_an_imitation_policy(tmp_path, capsys):
    result = train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    assert main(["eval", str(result.last_checkpoint), "--episodes", "1", "--baseline"]) == 2
    assert "--baseline needs an imitation policy" in capsys.readouterr().err


def test_play_records_a_gym_policy_in_its_own_renderer(tmp_path):
    import imageio.v3 as iio

    result = train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    video = tmp_path / "cartpole.gif"
    assert main(["play", str(result.best_checkpoint), "--record", str(video), "--seconds", "1"]) == 0
    frames = iio.imread(video)
    assert len(frames) >= 5 and frames.shape[-1] == 3
    assert len({f.tobytes() for f in frames}) > 1  # the pole moves


@pytest.mark.parametrize("settings, threads", [
    ({"torch_threads": 1, "num_workers": 2}, 1),
    ({"torch_threads": 0, "num_workers": 2}, 2),  # the workers wait while it updates: a thread per worker
    ({"torch_threads": 0, "num_workers": 1}, 1),
    ({"torch_threads": 0, "num_workers": 2, "overlap_collection": True}, 1),  # they collect meanwhile
])
def test_training_holds_numpy_blas_to_the_learner_threads(settings, threads, tmp_path, monkeypatch):
    """The numpy minibatch steps run with `torch_threads` BLAS and torch threads (a thread per core spun against
    the rollout workers; 0 takes one per worker that waits for the update); the caller's setting is back
    afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores")

    def blas_threads():
        return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})

    seen = []
    update = trainer_module.AWRAgent.update
    monkeypatch.setattr(trainer_module.AWRAgent, "update", lambda self, *args, **kwargs: (
        seen.append((blas_threads(), torch.get_num_threads())), update(self, *args, **kwargs))[1])
    caller_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=3, user_api="blas"):
            before = blas_threads()
            train("CartPole-v1", {}, quick_config(samples=1024, **settings), tmp_path / "run", progress=False)
            assert blas_threads() == before == [3]
    finally:
        torch.set_num_threads(caller_threads)
    assert seen and all(seen_now == ([threads], threads) for seen_now in seen), seen


def test_torch_threads_0_is_one_per_waiting_worker_up_to_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert quick_config(num_workers=4).effective_torch_threads == 1  # the default: one, whatever the workers
    for settings, threads in (({"num_workers": 4}, 4), ({"num_workers": 64}, 8), ({"num_workers": 0}, 1),
                              ({"num_workers": 4, "overlap_collection": True}, 1)):
        settings = {"torch_threads": 0, **settings}
        assert quick_config(**settings).effective_torch_threads == threads, settings


def test_reported_evaluations_start_where_the_trainer_never_chose_a_checkpoint(tmp_path):
    """The trainer keeps the checkpoint with the best test episodes; `charctl eval` (and play) start elsewhere,
    so the reported return is not the selected one. Same starts for eval and play: what is watched is scored."""
    from charctl.awr.rollout import Rollouts
    from charctl.play.evaluation import evaluate
    from charctl.play.playback import play_gym
    from charctl.play.policy_file import open_policy

    result = train("CartPole-v1", {}, quick_config(samples=512), tmp_path / "run", progress=False)
    task = open_policy(result.last_checkpoint)

    def reset_seeds(run) -> list[int]:
        env = task.make_env()
        seen, reset = [], env.reset
        env.reset = lambda seed=None, **kw: (seen.append(seed), reset(seed=seed, **kw))[1]
        run(env)
        return seen

    rollouts = Rollouts("CartPole-v1", {}, 0, 0)
    trainer_tests = reset_seeds(lambda env: (setattr(rollouts, "env", env), rollouts.evaluate(task.policy, 3)))
    rollouts.close()
    reported = reset_seeds(lambda env: evaluate(env, task.policy, 3))
    played = reset_seeds(lambda env: play_gym(env, task.policy, 0, True, seconds=0.1, episodes=3))
    assert len(set(trainer_tests)) == 3 and not set(trainer_tests) & set(reported)
    assert played == reported
