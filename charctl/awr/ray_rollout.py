"""Rollout workers as Ray actors, on any node of a Ray cluster; the learner stays in the driver.

Same interface and seeding as `charctl.awr.rollout.Rollouts`: iteration k's share w uses seeds derived from
(seed, k, w), so a run with N Ray workers collects exactly what a run with N local workers does. Each
iteration the policy (weights + normaliser) is put in the object store once and every actor reads it.

Fault tolerance: an actor that dies (its process killed, its node lost) is replaced by a new one, its
unfinished share is discarded and collected again by the replacement from the same seeds, and the run goes on;
`restarts` counts the replacements (the trainer logs it per iteration).
"""

from __future__ import annotations

import os
import subprocess
import sys

from charctl.awr.buffer import Episode
from charctl.awr.policy import NumpyPolicy
from charctl.awr.rollout import (
    CollectionInTwoHalves,
    collect_episodes,
    evaluate_episodes,
    evaluation_seed,
    split_samples,
    worker_seeds,
)
from charctl.util.errors import CharctlError

MAX_RESTARTS_PER_CALL = 3  # a share that kills this many fresh actors in a row is a bug, not bad luck


def import_ray():
    try:
        import ray
    except ImportError:
        raise CharctlError("--ray needs Ray: pip install 'charctl[ray]'") from None
    return ray


def start_local_ray() -> tuple[subprocess.Popen, str]:
    """A keeper process in a new session starts Ray and prints its address; the driver holds the keeper's stdin
    open for as long as the run lasts (its end of the pipe is closed by the kernel however the driver dies)."""
    use_token_auth()
    keeper = subprocess.Popen([sys.executable, "-m", "charctl.awr.ray_keeper"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    address = keeper.stdout.readline().strip()
    if not address:
        keeper.wait()
        raise CharctlError(f"could not start a local Ray instance (exit code {keeper.returncode}; Ray's messages "
                           "are above)")
    return keeper, address


def use_token_auth() -> None:
    """A new local Ray instance requires its token (~/.ray/auth_token; Ray 2.60 turns this on), but a driver given
    an address does not send it unless its mode says so. Ray reads the mode once, at import, so set it and have
    Ray read it again, as ray.init does when it starts an instance itself. A mode the user set applies to both."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    try:
        from ray._raylet import AuthenticationMode, Config  # noqa: F401  (absent: a Ray without token auth)
    except ImportError:
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")


def stop_local_ray(keeper: subprocess.Popen) -> None:
    keeper.stdin.close()  # the keeper ends every process of its Ray instance, then itself
    keeper.wait(timeout=30)
    keeper.stdout.close()


class RolloutActor:
    """One env in a Ray worker process (wrapped with ray.remote at runtime, so Ray stays optional)."""

    def __init__(self, env_id: str, env_kwargs: dict):
        from charctl.awr.rollout import hold_to_one_thread, make_env

        hold_to_one_thread()
        self.env = make_env(env_id, env_kwargs)

    def pid(self) -> int:
        return os.getpid()

    def collect(self, policy_state: dict, num_samples: int, seed, noise_std) -> list[Episode]:
        return collect_episodes(self.env, NumpyPolicy.from_state(policy_state), num_samples, seed, noise_std)

    def evaluate(self, policy_state: dict, seeds: list[int]) -> list[tuple[float, int]]:
        return evaluate_episodes(self.env, NumpyPolicy.from_state(policy_state), seeds)


class RayRollouts(CollectionInTwoHalves):
    def __init__(self, env_id: str, env_kwargs: dict | None, num_workers: int, seed: int,
                 address: str | None = None, log=print):
        ray = import_ray()
        self.ray = ray
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.num_workers, self.seed = max(num_workers, 1), seed
        self.restarts = 0
        self.log = log
        self._keeper = None  # the process holding this run's own local Ray instance, if it has one
        if not ray.is_initialized():
            self._connect(address)
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(RolloutActor)
        self.actors = [self._new_actor() for _ in range(self.num_workers)]

    def _connect(self, address: str | None) -> None:
        """A cluster address (or RAY_ADDRESS) is joined; without one the run gets a local Ray instance of its own
        that ends with the driver, whatever ends the driver (charctl/awr/ray_keeper.py)."""
        if address in (None, "", "local"):
            address = None  # ray.init(None): the cluster in RAY_ADDRESS
            if not os.environ.get("RAY_ADDRESS"):
                self._keeper, address = start_local_ray()
        self.ray.init(address=address, log_to_driver=False, include_dashboard=False)

    def _new_actor(self):
        return self._actor_class.remote(self.env_id, self.env_kwargs)

    def pids(self) -> list[int]:
        return self.ray.get([actor.pid.remote() for actor in self.actors])

    def _run(self, method: str, per_worker_args: list[tuple]) -> list:
        """Call `method` on actor w with per_worker_args[w]; replace dead actors and redo their share."""
        ray = self.ray
        pending = {w: getattr(self.actors[w], method).remote(*args) for w, args in enumerate(per_worker_args)}
        results, attempts = {}, {w: 0 for w in pending}
        while pending:
            refs = list(pending.values())
            ready, _ = ray.wait(refs, num_returns=1)
            w = next(k for k, ref in pending.items() if ref == ready[0])
            del pending[w]
            try:
                results[w] = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError) as err:
                attempts[w] += 1
                if attempts[w] > MAX_RESTARTS_PER_CALL:
                    raise CharctlError(f"Ray rollout worker {w} died {attempts[w]} times in a row: "
                                       f"{str(err).splitlines()[0]}") from None
                self.restarts += 1
                self.log(f"Ray rollout worker {w} died ({type(err).__name__}); replaced it and collecting its "
                         "share again")
                self.actors[w] = self._new_actor()
                pending[w] = getattr(self.actors[w], method).remote(*per_worker_args[w])
            except ray.exceptions.RayTaskError as err:  # an exception inside the env: the user's to see
                raise RuntimeError(f"Ray rollout worker {w} failed in env {self.env_id}:\n{err}") from None
        return [results[w] for w in range(len(per_worker_args))]

    def collect(self, policy: NumpyPolicy, num_samples: int, iteration: int,
                noise_std: float | None = None) -> list[Episode]:
        state = self.ray.put(policy.to_state())  # one copy in the object store, read by every actor
        quotas = split_samples(num_samples, self.num_workers)
        seeds = worker_seeds(self.seed, iteration, self.num_workers)
        results = self._run("collect", [(state, q, s, noise_std) for q, s in zip(quotas, seeds)])
        return [episode for episodes in results for episode in episodes]

    def start_collect(self, policy: NumpyPolicy, num_samples: int, iteration: int,
                      noise_std: float | None = None) -> None:
        """Deferred to `finish_collect` (Ray's actors are not overlapped with the learner): the same episodes as a
        local `Rollouts.start_collect` would give."""
        self._pending = lambda: self.collect(policy, num_samples, iteration, noise_std)

    def evaluate(self, policy: NumpyPolicy, num_episodes: int):
        import numpy as np

        state = self.ray.put(policy.to_state())
        seeds = [evaluation_seed(self.seed, j) for j in range(num_episodes)]
        active = [w for w in range(self.num_workers) if seeds[w::self.num_workers]]
        per_worker = self._run("evaluate", [(state, seeds[w::self.num_workers]) for w in active])
        results = [None] * num_episodes
        for w, share in zip(active, per_worker):
            results[w::self.num_workers] = share
        return (np.array([r for r, _ in results], dtype=np.float64),
                np.array([n for _, n in results], dtype=np.int64))

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # already gone
                pass
        self.actors = []
        if self._keeper is not None:
            self.ray.shutdown()
            stop_local_ray(self._keeper)
            self._keeper = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

