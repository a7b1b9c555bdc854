"""One policy from several of a run's kept policies: the mean of their actor weights (stochastic weight
averaging, Izmailov et al. 2018).

A run's policies past its normaliser's budget differ only in their networks; AWR's actor swings between
updates, and a mean over many iterations sits where they cluster. The averaging itself is torch's
(torch.optim.swa_utils.AveragedModel, equal weights). Everything else (normaliser, critic, env, config, samples)
is the latest policy's, so the result plays, evaluates and exports as any checkpoint does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

from charctl.awr.checkpoint import actor_from_checkpoint, load_checkpoint, played_actor_weights
from charctl.awr.config import build_config
from charctl.util.errors import CharctlError


def task_of(state: dict) -> tuple:
    kwargs = state["env_kwargs"]
    return state["env_id"], kwargs.get("character"), kwargs.get("motion")


def check_same_run(paths: list[Path], states: list[dict]) -> None:
    """Weights average meaningfully only between policies that read the same normalised observations."""
    first_path, first = paths[0], states[0]
    first_layers = build_config(first["config"], f"{first_path}: config").actor_layers
    for path, state in zip(paths[1:], states[1:]):
        if task_of(state) != task_of(first):
            raise CharctlError(f"{path}: a policy for {task_of(state)}, not {task_of(first)} as {first_path}")
        layers = build_config(state["config"], f"{path}: config").actor_layers
        if (state["observation_size"], state["action"], layers) != (first["observation_size"], first["action"],
                                                                     first_layers):
            raise CharctlError(f"{path}: its actor ({state['observation_size']} observations, layers {layers}) "
                               f"differs from {first_path}'s ({first['observation_size']}, {first_layers})")
        ours, theirs = state["agent"]["normalizer"], first["agent"]["normalizer"]
        if not (torch.equal(ours["mean"], theirs["mean"]) and torch.equal(ours["std"], theirs["std"])):
            raise CharctlError(f"{path}: its observation normaliser differs from {first_path}'s; average policies "
                               "of one run kept after its normaliser froze (normalizer_samples)")


def average_checkpoints(paths: list[str | Path]) -> dict:
    """The latest checkpoint (most samples) with its actor replaced by the mean of all the actors."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise CharctlError("give at least two policies to average")
    if len(set(p.resolve() for p in paths)) != len(paths):
        raise CharctlError("a policy is named twice; each would count twice in the mean")
    states = [load_checkpoint(p) for p in paths]
    check_same_run(paths, states)
    latest = max(range(len(states)), key=lambda i: states[i]["samples"])
    result = states[latest]
    actor = actor_from_checkpoint(result)
    averaged = AveragedModel(actor)
    for state in states:
        actor.load_state_dict(played_actor_weights(state["agent"]))  # a run's own mean, when it keeps one
        averaged.update_parameters(actor)
    result["agent"]["actor"] = {key: value.detach().clone() for key, value in averaged.module.state_dict().items()}
    result["agent"]["actor_average"] = None  # the mean above is what plays
    result["buffer"] = None  # a policy file: a resume from it refills its buffer
    result["next_collection_policy"] = None  # the latest iterate's, not this policy's
    result["averaged_from"] = [{"path": str(p), "samples": int(s["samples"])} for p, s in zip(paths, states)]
    return result
