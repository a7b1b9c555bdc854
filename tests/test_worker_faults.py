"""Rollout workers under faults: a killed trainer takes its workers with it within seconds (local workers and
a --ray run's whole Ray instance), a hung worker becomes a one-line error, workers stopped together with their
learner (Ctrl-Z) are not taken for hung, and Ctrl-C during a wait on a stopped worker ends the run with its
checkpoint."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from charctl.awr.agent import AWRAgent
from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.config import load_config
from charctl.awr.rollout import HEARTBEAT_SECONDS, STALL_SECONDS, Rollouts, make_env
from charctl.util.errors import CharctlError

QUICK = ["--no-progress", "--set", "samples_per_iter=512", "--set", "critic_steps=5", "--set", "actor_steps=10",
         "--set", "eval_every=0", "--set", "eval_episodes=2"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")]


def alive(pid: int) -> bool:
    """Running or stopped; a zombie (dead, waiting to be reaped by whoever adopted it) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot), or None once it is gone: a pid reused later does not match."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid`, with its start time."""
    found, todo = {}, [pid]
    while todo:
        for child in children(todo.pop()):
            if (started := start_time(child)) is not None:
                found[child] = started
                todo.append(child)
    return found


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def wait_until(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def start_training(run_dir: Path, *extra, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "charctl", "train", "gym", "CartPole-v1", "--out", str(run_dir),
                             "--samples", "10000000", "--workers", "2", *QUICK, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for_checkpoint(run_dir: Path, process: subprocess.Popen) -> None:
    def ready():
        assert process.poll() is None, process.communicate()
        return (run_dir / "progress.csv").exists()
    wait_until(ready, 180, "a first iteration")


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("moment", [0.0, 0.2])
def test_killing_the_trainer_ends_its_workers_within_seconds(tmp_path, moment):
    process = start_training(tmp_path / "run")
    try:
        wait_for_checkpoint(tmp_path / "run", process)
        workers = children(process.pid)
        assert len(workers) == 2
        time.sleep(moment)
        process.kill()
        process.wait()
        wait_until(lambda: not any(alive(pid) for pid in workers), 5.0, "the workers end")
    finally:
        process.kill()
        process.communicate()
        kill_all(children(process.pid) if alive(process.pid) else [])


@pytest.mark.xdist_group("ray")  # not beside tests/test_ray.py's Ray instance: one Ray instance at a time
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_ray_driver_stopped_by_a_signal_leaves_no_ray_process(tmp_path, sig):
    """Every process below the driver once its actors work (the run's own Ray instance: GCS, raylet, agents,
    actors) ends within 5 s of the driver, whatever stopped it. SIGINT goes to the driver's process group, as a
    terminal's Ctrl-C does."""
    pytest.importorskip("ray")
    process = start_training(tmp_path / "run", "--ray", start_new_session=True)
    tree = {}
    try:
        wait_for_checkpoint(tmp_path / "run", process)
        tree = descendants(process.pid)
        assert sum("ray::RolloutActor" in command_line(pid) for pid in tree) == 2, [command_line(p) for p in tree]
        if sig == signal.SIGINT:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        process.communicate(timeout=60)
        deadline = time.monotonic() + 5.0
        while still_running(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not still_running(tree), [command_line(pid) for pid in still_running(tree)]
    finally:
        process.kill()
        process.communicate()
        kill_all(still_running(tree))


def still_running(tree: dict[int, str]) -> list[int]:
    return [pid for pid, started in tree.items() if start_time(pid) == started]


def test_a_worker_blocked_on_a_send_ends_when_its_learner_dies_without_the_death_signal(tmp_path):
    """The second line of defence (and what a non-Linux system has): the worker holds no learner pipe ends, so
    its send fails as soon as the learner is gone."""
    script = textwrap.dedent("""
        import os, signal, sys, time
        import charctl.awr.rollout as rollout
        import gymnasium as gym
        from charctl.awr.agent import AWRAgent
        from charctl.awr.config import AWRConfig
        rollout.die_with_parent = lambda parent_pid: None  # only the closed pipe ends can save the worker now
        rollouts = rollout.Rollouts("CartPole-v1", {}, 2, 0)
        print(*[p.pid for p in rollouts._processes], flush=True)
        env = gym.make("CartPole-v1")
        policy = AWRAgent(env.observation_space, env.action_space, AWRConfig()).policy()
        for index in range(2):  # 5000 samples of results: more than a pipe buffer holds
            rollouts._send(index, ("collect", {"policy": policy.to_state(), "num_samples": 5000, "seed": index,
                                               "noise_std": None}))
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    # the workers inherit stdout: read their pids, then wait for the learner itself, not for the pipe's end
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers = [int(pid) for pid in process.stdout.readline().split()]
    process.wait(timeout=120)
    process.stdout.close()
    assert len(workers) == 2
    try:
        wait_until(lambda: not any(alive(pid) for pid in workers), 30.0, "the workers end")
    finally:
        kill_all(workers)


def test_a_stopped_worker_becomes_a_one_line_error_and_the_checkpoint_stays(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, "--set", "worker_timeout=3")
    workers = []
    try:
        wait_for_checkpoint(run_dir, process)
        workers = children(process.pid)
        os.kill(workers[0], signal.SIGSTOP)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "gave no sign of life for 3 s" in lines[0] and "--resume" in lines[0], err
        wait_until(lambda: not any(alive(pid) for pid in workers), 5.0, "the workers end")
        load_checkpoint(run_dir / "CartPole-v1-last.pt")
    finally:
        process.kill()
        process.communicate()
        kill_all(workers)


def test_ctrl_c_while_waiting_on_a_stopped_worker_ends_the_run_promptly(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir)  # the default worker timeout: far longer than this test
    workers = []
    try:
        wait_for_checkpoint(run_dir, process)
        workers = children(process.pid)
        os.kill(workers[1], signal.SIGSTOP)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = process.communicate(timeout=30)
        assert time.monotonic() - start < 10
        assert process.returncode == 130 and "Traceback" not in err, err
        assert "--resume" in out
        state = load_checkpoint(run_dir / "CartPole-v1-last.pt")
        assert state["iteration"] >= 1
        wait_until(lambda: not any(alive(pid) for pid in workers), 5.0, "the workers end")
    finally:
        process.kill()
        process.communicate()
        kill_all(workers)


def test_a_sigterm_to_the_whole_process_group_lets_the_workers_finish_the_iteration(tmp_path):
    """A scheduler's SIGTERM reaches the workers too: they leave it to the learner, which finishes the iteration in
    flight with them (no worker lost, no error), closes them and exits with 143."""
    run_dir = tmp_path / "run"
    process = start_training(run_dir, start_new_session=True)
    try:
        wait_for_checkpoint(run_dir, process)
        workers = children(process.pid)
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in out, (out, err)
        assert "worker" not in err, err
        state = load_checkpoint(run_dir / "CartPole-v1-last.pt")
        rows = (run_dir / "progress.csv").read_text().splitlines()
        assert state["iteration"] == len(rows) - 1 >= 1 and rows[-1].endswith(",0")  # no worker restarted
        wait_until(lambda: not any(alive(pid) for pid in workers), 5.0, "the workers end")
    finally:
        process.kill()
        process.communicate()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_by_a_signal_resumes_with_its_own_settings(tmp_path, sig):
    """The resume command is the one the Ctrl-C message prints: no --samples, --seed or --set again."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "charctl", "train", "gym", "CartPole-v1", "--out",
                                str(run_dir), "--samples", "6144", "--seed", "4", *QUICK[:-4],
                                "--set", "eval_every=2", "--set", "eval_episodes=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(run_dir, process)
        process.send_signal(sig)
        out, _ = process.communicate(timeout=60)
        if sig == signal.SIGTERM:  # after the iteration in flight, with its own exit status and line
            assert process.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in out, out
        stopped_at = load_checkpoint(run_dir / "CartPole-v1-last.pt")["iteration"]
        finish = subprocess.run([sys.executable, "-m", "charctl", "train", "gym", "CartPole-v1", "--resume",
                                 "--out", str(run_dir), "--no-progress"], capture_output=True, text=True,
                                timeout=300)
        assert finish.returncode == 0, finish.stderr
        state = load_checkpoint(run_dir / "CartPole-v1-last.pt")
        assert state["iteration"] >= stopped_at and 6144 <= state["samples"] < 6144 + 600
        assert (state["config"]["samples"], state["config"]["seed"], state["config"]["eval_every"]) == (6144, 4, 2)
        assert not (run_dir / "settings_changes.txt").exists()
        assert not list(run_dir.glob(".*.tmp"))
    finally:
        process.kill()
        process.communicate()


STEP_SECONDS = 0.02


class SlowCartPole(CartPoleEnv):
    """CartPole whose steps take 20 ms."""

    def step(self, action):
        time.sleep(STEP_SECONDS)
        return super().step(action)


gym.register("charctl-test/SlowCartPole-v0", entry_point=SlowCartPole, max_episode_steps=500)


def test_a_slow_worker_that_keeps_stepping_is_not_taken_for_hung():
    """worker_timeout bounds a worker's silence: its heartbeats (at least one a second while it steps) keep a
    share that takes longer than the timeout alive, and a silent (stopped) worker is still caught."""
    rollouts = Rollouts("charctl-test/SlowCartPole-v0", {}, 2, seed=0, timeout=HEARTBEAT_SECONDS + 0.8)
    probe = make_env("charctl-test/SlowCartPole-v0")
    policy = AWRAgent(probe.observation_space, probe.action_space, load_config("CartPole-v1")).policy()
    probe.close()
    samples = 400
    assert samples // 2 * STEP_SECONDS > 2 * rollouts.timeout  # each worker's share takes over twice the timeout
    try:
        episodes = rollouts.collect(policy, samples, iteration=0)
        assert sum(len(e) for e in episodes) >= samples
        os.kill(rollouts._processes[1].pid, signal.SIGSTOP)
        with pytest.raises(CharctlError, match="gave no sign of life for"):
            rollouts.collect(policy, samples, iteration=1)
    finally:
        rollouts.close()


def test_workers_stopped_with_the_learner_are_not_taken_for_hung(monkeypatch):
    """Ctrl-Z (or a SIGSTOP to the process group, or a suspended machine) stops the learner and its workers
    together for longer than worker_timeout; after they go on, the collection finishes instead of failing."""
    import multiprocessing.connection

    rollouts = Rollouts("charctl-test/SlowCartPole-v0", {}, 2, seed=0, timeout=HEARTBEAT_SECONDS + 0.8)
    probe = make_env("charctl-test/SlowCartPole-v0")
    policy = AWRAgent(probe.observation_space, probe.action_space, load_config("CartPole-v1")).policy()
    probe.close()
    real_wait, stops = multiprocessing.connection.wait, []

    def wait_then_stop_everything_once(*args, **kwargs):
        if not stops:  # the learner is waiting on its first worker: the whole group stops here
            pids = [process.pid for process in rollouts._processes]
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            stops.append(time.monotonic())
            time.sleep(STALL_SECONDS + 1.0)  # > worker_timeout: the learner "stopped" as long as its workers
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(multiprocessing.connection, "wait", wait_then_stop_everything_once)
    try:
        episodes = rollouts.collect(policy, 200, iteration=0)
        assert stops and sum(len(e) for e in episodes) >= 200
        assert STALL_SECONDS + 1.0 > rollouts.timeout
    finally:
        rollouts.close()
