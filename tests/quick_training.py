"""AWR settings that run CartPole iterations in well under a second, for tests of the trainer's machinery
(resume, switches, warm starts, the mean of the actor's weights) rather than of how well it learns."""

from pathlib import Path

QUICK_CARTPOLE = {"samples_per_iter": 512, "critic_steps": 20, "actor_steps": 100, "eval_every": 0,
                  "eval_episodes": 2, "num_workers": 0}


def train_cartpole(out: Path, resume: bool = False, changes: dict | None = None, **settings):
    """A quick CartPole run in `out` (QUICK_CARTPOLE with `settings` on top), or its resume with `changes`."""
    from charctl.awr.config import load_config
    from charctl.awr.trainer import train

    return train("CartPole-v1", {}, load_config("CartPole-v1", overrides={**QUICK_CARTPOLE, **settings}), out,
                 resume=resume, progress=False, changes=changes)
