"""N environments in worker processes (gymnasium's AsyncVectorEnv), with a dead worker reported clearly."""

from __future__ import annotations

import gymnasium as gym

from charctl.util.errors import CharctlError

PIPE_ERRORS = (BrokenPipeError, EOFError, ConnectionResetError)


class WorkerVectorEnv(gym.vector.AsyncVectorEnv):
    """AsyncVectorEnv whose lost workers raise one clear error instead of a bare pipe error."""

    def _dead_workers(self) -> str:
        dead = [f"worker {i} (pid {p.pid}, exit code {p.exitcode})" for i, p in enumerate(self.processes)
                if not p.is_alive()]
        return ", ".join(dead) or "a worker"

    def reset(self, *args, **kwargs):
        try:
            return super().reset(*args, **kwargs)
        except PIPE_ERRORS:
            raise CharctlError(f"environment {self._dead_workers()} died; restart the run (or --resume)") from None

    def step(self, actions):
        try:
            return super().step(actions)
        except PIPE_ERRORS:
            raise CharctlError(f"environment {self._dead_workers()} died; restart the run (or --resume)") from None

    def close_extras(self, timeout=None, terminate=False):
        # a dead worker cannot be asked to close: terminate the rest instead of waiting on a broken pipe
        if any(not p.is_alive() for p in self.processes):
            terminate = True
        try:
            super().close_extras(timeout=timeout, terminate=terminate)
        except PIPE_ERRORS:
            pass


def make_vector_env(env_id: str, env_kwargs: dict | None, num_workers: int, seed: int | None = None):
    """`num_workers` copies of the env, each in its own process; reset with `seed` gives seeds seed, seed+1, ..."""
    import charctl.envs  # noqa: F401  (registers the charctl tasks in the workers' parent)

    kwargs = dict(env_kwargs or {})
    envs = WorkerVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(num_workers)], context="fork")
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs
