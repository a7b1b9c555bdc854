"""Whole-episode rollouts, in worker processes (or in the learner process with num_workers=0).

Each worker holds one env and a numpy copy of the actor, and collects whole episodes until it has its share
of the iteration's samples, so the learner only talks to it twice per iteration (no per-step messages).
Every episode keeps its final observation (for bootstrapping a truncation) apart from its samples.

Determinism: iteration k's rollouts in worker w use an env reset seed and a noise generator derived from
(seed, k, w), so a run (and a resumed run) is reproducible for a given worker count. Evaluation episode j
always starts from the reset seed derived from (seed, j), whatever the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import time
import traceback

import gymnasium as gym
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from charctl.awr.buffer import Episode
from charctl.awr.policy import NumpyPolicy
from charctl.util.errors import CharctlError

EVAL_STREAM = 7_000_001     # separates the trainer's test episodes' seeds from training seeds
HELD_OUT_STREAM = 7_000_002  # `charctl eval` and `play`: start states the trainer never chose a checkpoint on
PARENT_CHECK_SECONDS = 2.0  # an orphaned worker notices its learner is gone this quickly
HEARTBEAT_SECONDS = 1.0  # a busy worker tells the learner it is alive this often (between env steps)
# the learner looks at its workers at least every second while it waits; a longer gap means it was not running
# itself, and a worker's silence over that gap does not count against it
STALL_SECONDS = 3.0
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal for this process when its parent dies


def make_env(env_id: str, env_kwargs: dict | None = None) -> gym.Env:
    if env_id.startswith("charctl/"):
        import charctl.envs  # noqa: F401  (registers the imitation tasks)
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as err:
        raise CharctlError(f"env {env_id}: {err}") from None


def check_env_id(env_id: str) -> None:
    """An unknown gymnasium id is a one-line error listing the ids that exist."""
    if env_id.startswith("charctl/"):
        import charctl.envs  # noqa: F401
    if env_id not in gym.registry:
        known = sorted(i for i in gym.registry if "/" not in i or i.startswith("charctl/"))
        raise CharctlError(f"unknown gymnasium env '{env_id}'; registered: {', '.join(known)}")


def _env_action(action: np.ndarray, discrete: bool):
    return int(action) if discrete else action


def run_episode(env: gym.Env, policy: NumpyPolicy, rng: np.random.Generator | None, seed: int | None = None,
                deterministic: bool = False, noise_std: float | None = None, beat=None) -> Episode:
    """One whole episode; stochastic (policy noise or `noise_std`) unless `deterministic`. `beat()` is called
    after every step (a worker's heartbeat)."""
    obs, _ = env.reset(seed=seed)
    discrete = policy.action.discrete
    observations, actions, rewards, explored = [], [], [], []
    while True:
        if deterministic:
            env_action = stored = policy.act(obs, deterministic=True)
        else:
            env_action, stored, sampled = policy.explore(obs, rng, noise_std)
            explored.append(sampled)
        next_obs, reward, terminated, truncated, _ = env.step(_env_action(env_action, discrete))
        if beat is not None:
            beat()
        observations.append(obs)
        actions.append(stored)
        rewards.append(reward)
        obs = next_obs
        if terminated or truncated:
            break
    return Episode(observations=np.asarray(observations, dtype=np.float32),
                   actions=np.asarray(actions, dtype=np.int64 if discrete else np.float32),
                   rewards=np.asarray(rewards, dtype=np.float32),
                   final_observation=np.asarray(obs, dtype=np.float32), terminated=bool(terminated),
                   explored=None if deterministic or all(explored) else np.array(explored, dtype=bool))


def collect_episodes(env: gym.Env, policy: NumpyPolicy, num_samples: int, seed: int | list[int],
                     noise_std: float | None = None, beat=None) -> list[Episode]:
    """Whole stochastic episodes until at least `num_samples` transitions; `seed` fixes resets and noise."""
    seeds = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    reset_seed = int(seeds.generate_state(1)[0])
    episodes, count = [], 0
    while count < num_samples:
        episode = run_episode(env, policy, rng, seed=reset_seed if not episodes else None, noise_std=noise_std,
                              beat=beat)
        episodes.append(episode)
        count += len(episode)
    return episodes


def split_samples(num_samples: int, workers: int) -> list[int]:
    """Each worker's share of an iteration's samples (they differ by at most one)."""
    return [num_samples // workers + (w < num_samples % workers) for w in range(workers)]


def worker_seeds(seed: int, iteration: int, workers: int) -> list[list[int]]:
    """The seed of worker w's share in an iteration: the same for local and Ray workers."""
    return [[seed, iteration, w] for w in range(workers)]


def evaluation_seed(seed: int, episode: int, held_out: bool = False) -> int:
    """Reset seed of deterministic test episode `episode`. The trainer keeps its best checkpoint by its test
    episodes; reported numbers (`held_out`) come from other start states, so that choice does not flatter them."""
    stream = HELD_OUT_STREAM if held_out else EVAL_STREAM
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


def evaluate_episodes(env: gym.Env, policy: NumpyPolicy, seeds: list[int], beat=None) -> list[tuple[float, int]]:
    """(return, length) of deterministic episodes started from the given reset seeds."""
    results = []
    for seed in seeds:
        episode = run_episode(env, policy, None, seed=seed, deterministic=True, beat=beat)
        results.append((episode.total_reward, len(episode)))
    return results


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux), whatever killed the parent; exit now if
    the parent is already gone (it may have died before the request was made)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the worker's parent check below is the fallback
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def one_blas_thread():
    """numpy's BLAS held to one thread while the context lasts: a policy multiplies one observation at a time,
    and on more threads than one its BLAS threads only spin against whatever else runs (the same actions, bit
    for bit; a [1024, 512] policy's action took several times as long on 2 threads with the cores busy:
    docs/benchmarks.md)."""
    return threadpool_limits(limits=1, user_api="blas")


def hold_to_one_thread() -> None:
    """A rollout worker's policy on one BLAS and one torch thread for the rest of the process (a fork inherits
    the learner's `torch_threads`; with 2 learner threads on 2 cores the dog's rollouts took 2.3x as long)."""
    torch.set_num_threads(1)
    one_blas_thread()


def _heartbeat(conn):
    """A `beat` for run_episode: tells the learner, at most every HEARTBEAT_SECONDS, that this worker is still
    stepping, so that `worker_timeout` bounds silence rather than the length of a share of work."""
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= HEARTBEAT_SECONDS:
            conn.send(("beat", None))
            last = now

    return beat


def _worker_main(conn, env_id: str, env_kwargs: dict, parent_pid: int, inherited: list) -> None:
    die_with_parent(parent_pid)
    # the fork copied the learner's ends of every worker's pipe; holding them, this worker would never see the
    # learner go (a send to a full pipe would block forever), so close them
    for other in inherited:
        other.close()
    # Ctrl-C and a SIGTERM to the whole process group (a scheduler's) are the learner's to handle: it finishes or
    # drops the iteration and closes the workers (they die with it, too)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hold_to_one_thread()
    env = None
    try:
        env = make_env(env_id, env_kwargs)
        while True:
            while not conn.poll(PARENT_CHECK_SECONDS):
                if os.getppid() != parent_pid:
                    return
            command, args = conn.recv()
            if command == "close":
                return
            policy = NumpyPolicy.from_state(args["policy"])
            beat = _heartbeat(conn)
            if command == "collect":
                conn.send(("ok", collect_episodes(env, policy, args["num_samples"], args["seed"], args["noise_std"],
                                                  beat)))
            elif command == "evaluate":
                conn.send(("ok", evaluate_episodes(env, policy, args["seeds"], beat)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        if env is not None:
            env.close()


class CollectionInTwoHalves:
    """`finish_collect` for rollouts whose `start_collect` leaves the collection's result as `_pending`."""

    _pending = None

    def finish_collect(self) -> list[Episode]:
        """The episodes of the last `start_collect`."""
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError("finish_collect without start_collect")
        return pending()


class Rollouts(CollectionInTwoHalves):
    """Collects whole episodes with `num_workers` processes (0: in this process)."""

    def __init__(self, env_id: str, env_kwargs: dict | None, num_workers: int, seed: int,
                 timeout: float | None = None):
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.num_workers, self.seed = num_workers, seed
        self.timeout = timeout  # seconds a worker may stay silent (no result, no heartbeat) before it counts as hung
        self.restarts = 0  # local workers are not replaced: a dead one stops the run (resume with --resume)
        self.env = make_env(env_id, self.env_kwargs) if num_workers == 0 else None
        self._connections, self._processes = [], []
        if num_workers > 0:
            context = mp.get_context("fork")  # workers start instantly and inherit registered envs
            for _ in range(num_workers):
                parent_end, child_end = context.Pipe()
                inherited = [*self._connections, parent_end]
                process = context.Process(target=_worker_main, daemon=True,
                                          args=(child_end, env_id, self.env_kwargs, os.getpid(), inherited))
                process.start()
                child_end.close()
                self._connections.append(parent_end)
                self._processes.append(process)

    # --- messaging
    def _send(self, index: int, message) -> None:
        try:
            self._connections[index].send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._raise_dead(index)

    def _silence_deadline(self) -> float:
        """When a worker heard from now counts as hung if it says nothing more."""
        return time.monotonic() + (self.timeout if self.timeout is not None else float("inf"))

    def _receive(self, index: int):
        conn, process = self._connections[index], self._processes[index]
        deadline, awake = self._silence_deadline(), time.monotonic()
        while True:
            now = time.monotonic()
            if now - awake > STALL_SECONDS:  # this process did not run (Ctrl-Z, a SIGSTOP to the group, a suspended
                deadline = self._silence_deadline()  # machine): its workers most likely did not either
            awake = now
            if now > deadline and not conn.poll():
                self._raise_hung(index)
            if conn.poll():
                try:
                    status, payload = conn.recv()
                except (EOFError, ConnectionResetError, OSError):
                    self._raise_dead(index)
                if status == "beat":  # alive and stepping: the silence bound starts again
                    deadline = self._silence_deadline()
                    continue
                if status == "error":
                    self.close()
                    raise RuntimeError(f"rollout worker {index} failed in env {self.env_id}:\n{payload}")
                return payload
            mp.connection.wait([conn, process.sentinel], timeout=1.0)
            if not process.is_alive() and not conn.poll():
                self._raise_dead(index)

    def _raise_dead(self, index: int):
        process = self._processes[index]
        process.join(timeout=1.0)
        self.close()
        raise CharctlError(f"rollout worker {index} (pid {process.pid}) died with exit code {process.exitcode}; "
                           "rerun with --resume to continue from the last checkpoint")

    def _raise_hung(self, index: int):
        pid = self._processes[index].pid
        self._processes[index].kill()  # now: a stopped or spinning worker answers no close request nor SIGTERM
        self.close()
        raise CharctlError(f"rollout worker {index} (pid {pid}) gave no sign of life for {self.timeout:g} s "
                           "(worker_timeout); it was stopped; rerun with --resume to continue from the last checkpoint")

    # --- public
    def collect(self, policy: NumpyPolicy, num_samples: int, iteration: int,
                noise_std: float | None = None) -> list[Episode]:
        """Whole episodes, at least `num_samples` transitions in total, split evenly over the workers."""
        self.start_collect(policy, num_samples, iteration, noise_std)
        return self.finish_collect()

    def start_collect(self, policy: NumpyPolicy, num_samples: int, iteration: int,
                      noise_std: float | None = None) -> None:
        """`collect` in two halves: the workers start now and the learner is free until `finish_collect`. In
        this process (0 workers) nothing runs until `finish_collect`; the episodes are the same either way."""
        workers = max(self.num_workers, 1)
        quotas = split_samples(num_samples, workers)
        seeds = worker_seeds(self.seed, iteration, workers)
        if self.num_workers == 0:
            self._pending = lambda: collect_episodes(self.env, policy, quotas[0], seeds[0], noise_std)
            return
        state = policy.to_state()
        for index, (quota, seed) in enumerate(zip(quotas, seeds)):
            self._send(index, ("collect", {"policy": state, "num_samples": quota, "seed": seed,
                                           "noise_std": noise_std}))
        self._pending = lambda: [episode for index in range(workers) for episode in self._receive(index)]

    def evaluate(self, policy: NumpyPolicy, num_episodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of `num_episodes` deterministic episodes (fixed reset seeds)."""
        seeds = [evaluation_seed(self.seed, j) for j in range(num_episodes)]
        if self.num_workers == 0:
            results = evaluate_episodes(self.env, policy, seeds)
        else:
            state = policy.to_state()
            shares = [seeds[w::self.num_workers] for w in range(self.num_workers)]
            active = [w for w in range(self.num_workers) if shares[w]]
            for w in active:
                self._send(w, ("evaluate", {"policy": state, "seeds": shares[w]}))
            per_worker = {w: self._receive(w) for w in active}
            results = [None] * num_episodes
            for w in active:
                results[w::self.num_workers] = per_worker[w]
        returns = np.array([r for r, _ in results], dtype=np.float64)
        lengths = np.array([n for _, n in results], dtype=np.int64)
        return returns, lengths

    def close(self) -> None:
        for conn, process in zip(self._connections, self._processes):
            if process.is_alive():
                try:
                    conn.send(("close", None))
                except OSError:
                    pass
        for process in self._processes:
            process.join(timeout=2.0)
            if process.is_alive():  # busy, stopped (SIGSTOP) or spinning; it ignores SIGTERM: only SIGKILL ends it
                process.kill()
                process.join(timeout=1.0)
        for conn in self._connections:
            conn.close()
        self._connections, self._processes = [], []
        if self.env is not None:
            self.env.close()
            self.env = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
