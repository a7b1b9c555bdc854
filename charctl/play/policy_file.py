"""A trained policy file (NAME.pt / NAME-last.pt) opened for use: the policy, its task, and an env to run it in.

    task = open_policy("dog_trot.pt")
    env = task.make_env()
    action = task.policy.act(observation)

The checkpoint alone is enough: it names its env id and kwargs (character, clip, env settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charctl.awr.checkpoint import keeps_actor_average, load_checkpoint, policy_from_checkpoint
from charctl.awr.config import AWRConfig, build_config
from charctl.awr.policy import ActionSpec, NumpyPolicy
from charctl.awr.rollout import make_env
from charctl.util.errors import CharctlError


@dataclass
class PolicyTask:
    path: Path
    policy: NumpyPolicy
    env_id: str
    env_kwargs: dict
    config: AWRConfig
    samples: int
    iteration: int
    observation_size: int
    keeps_average: bool = False  # its run keeps a mean of the actor's weights (AWRConfig.average_from)

    @property
    def is_imitation(self) -> bool:
        return "character" in self.env_kwargs

    @property
    def name(self) -> str:
        if self.is_imitation:
            return f"{self.env_kwargs['character']}_{self.env_kwargs['motion']}"
        return self.env_id.replace("/", "_")

    def make_env(self, evaluation: bool = True, **extra):
        """The env the policy was trained in (extra kwargs such as render_mode), checked against it; for
        `evaluation` (eval, play) with its settings as evaluation runs them (charctl.envs.config.for_evaluation)."""
        kwargs = {**self.env_kwargs, **extra}
        if evaluation and self.is_imitation:
            from charctl.envs.config import for_evaluation

            kwargs["config"] = for_evaluation(kwargs.get("config", {}))
        try:
            env = make_env(self.env_id, kwargs)
        except CharctlError as err:
            raise CharctlError(f"{self.path}: cannot rebuild its env: {err}") from None
        obs_size = env.observation_space.shape[0]
        try:
            action = ActionSpec.from_space(env.action_space)
        except CharctlError:
            action = None
        if obs_size != self.observation_size or action != self.policy.action:
            env.close()
            raise CharctlError(f"{self.path}: trained for {self.name} with observation size {self.observation_size} "
                               f"and {self.policy.action.size} actions, but that env now has {obs_size} and "
                               f"{env.action_space}; the character or its files changed since")
        return env


def open_policy(path: str | Path, averaged: bool = True) -> PolicyTask:
    """The checkpoint's policy and task; `averaged=False` plays the actor its run fits instead of the mean of the
    actor's weights the run keeps (AWRConfig.average_from), which is what a checkpoint that keeps none plays."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(p for p in path.glob("*.pt") if not p.name.endswith("-last.pt"))
        if len(candidates) != 1:
            found = ", ".join(p.name for p in sorted(path.glob("*.pt"))) or "none"
            raise CharctlError(f"{path}: a run directory; name one checkpoint in it (found: {found})")
        path = candidates[0]
    if not path.exists():
        here = sorted(str(p) for p in Path(".").glob("*.pt")) + sorted(str(p) for p in Path("policies").glob("*.pt"))
        raise CharctlError(f"{path}: no such checkpoint; checkpoints here: {', '.join(here) or 'none'}")
    state = load_checkpoint(path)
    try:
        policy = policy_from_checkpoint(state, averaged)
        config = build_config(state["config"], f"{path}: config")
    except KeyError as err:
        raise CharctlError(f"{path}: incompatible checkpoint contents (no {err} entry)") from None
    except (RuntimeError, TypeError, AttributeError, ValueError) as err:
        raise CharctlError(f"{path}: incompatible checkpoint contents ({str(err).splitlines()[0][:200]})") from None
    return PolicyTask(path=path, policy=policy, env_id=state["env_id"], env_kwargs=dict(state["env_kwargs"]),
                      config=config, samples=int(state["samples"]), iteration=int(state["iteration"]),
                      observation_size=int(state["observation_size"]), keeps_average=keeps_actor_average(state))
