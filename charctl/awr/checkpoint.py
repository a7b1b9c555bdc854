"""Checkpoints: everything to resume a run or play its policy, in one file read with weights_only=True.

Contents (tensors, numbers, strings, lists and dicts only):
    format, env_id, env_kwargs, config (AWRConfig as a dict), observation_size, action (ActionSpec as a dict),
    iteration, samples, wall_time, agent (networks, optimisers, normaliser, minibatch generator; with
    average_from, the mean of the actor's weights, which is the policy that plays),
    torch_rng, best_test_return, buffer (flat episode arrays, optional), dataset (path of a static dataset, or
    None), last_row (the iteration's progress.csv row), next_collection_policy (overlap_collection: the policy
    from before the last update, which collects the next iteration; else None), switches_made (the samples of the
    config's switches already made).

To open a policy file for use (the policy, its task and its env): charctl/play/policy_file.py.
"""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import numpy as np
import torch

from charctl.awr.buffer import Episode, FlatEpisodes, flatten, unflatten
from charctl.awr.config import build_config
from charctl.awr.policy import ActionSpec, Actor, NumpyPolicy, ObsNormalizer
from charctl.envs import IMITATION_ENV_ID
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_path

FORMAT = "charctl-awr-1"
# what every reader of a checkpoint (play, eval, collect, --resume) relies on
REQUIRED = ("env_id", "env_kwargs", "config", "observation_size", "action", "iteration", "samples", "agent")


def check_primitive(value, where: str) -> None:
    """Env kwargs must survive a weights_only load: None, bool, int, float, str, lists and dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_primitive(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CharctlError(f"{where}: keys must be strings, not {key!r}")
            check_primitive(item, f"{where}.{key}")
        return
    raise CharctlError(f"{where}: {type(value).__name__} values cannot be stored in a checkpoint")


def buffer_to_dict(episodes: list[Episode]) -> dict | None:
    if not episodes:
        return None
    flat = flatten(episodes)
    return {"observations": torch.from_numpy(flat.observations), "actions": torch.from_numpy(flat.actions),
            "rewards": torch.from_numpy(flat.rewards), "episode_lengths": torch.from_numpy(flat.episode_lengths),
            "final_observations": torch.from_numpy(flat.final_observations),
            "terminated": torch.from_numpy(flat.terminated), "explored": torch.from_numpy(flat.explored)}


def buffer_from_dict(state: dict | None) -> list[Episode]:
    if state is None:
        return []
    lengths = state["episode_lengths"].numpy()
    flat = FlatEpisodes(observations=state["observations"].numpy(), actions=state["actions"].numpy(),
                        rewards=state["rewards"].numpy(),
                        episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                        episode_lengths=lengths, final_observations=state["final_observations"].numpy(),
                        terminated=state["terminated"].numpy(),
                        explored=state["explored"].numpy() if "explored" in state  # older checkpoints: all were
                        else np.ones(len(state["rewards"]), dtype=bool))
    return unflatten(flat)


def policy_to_dict(policy: NumpyPolicy | None) -> dict | None:
    """A rollout policy as tensors and plain values (a weights_only load takes no numpy arrays)."""
    if policy is None:
        return None
    state = policy.to_state()
    for key in ("weights", "biases"):
        state[key] = [torch.from_numpy(np.array(a)) for a in state[key]]
    for key in ("obs_mean", "obs_std"):
        state[key] = torch.from_numpy(np.array(state[key]))
    return state


def policy_from_dict(state: dict | None) -> NumpyPolicy | None:
    if state is None:
        return None
    arrays = {key: [t.numpy() for t in state[key]] for key in ("weights", "biases")}
    arrays.update({key: state[key].numpy() for key in ("obs_mean", "obs_std")})
    return NumpyPolicy.from_state({**state, **arrays})


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically: a kill at any moment leaves the previous checkpoint or this one, never a torn file."""
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as err:  # torch's writer reports a failed write (a full disk) as a RuntimeError
            raise OSError(errno.EIO, f"could not write the checkpoint ({str(err).splitlines()[0]})", str(path)) \
                from err


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CharctlError(f"{path}: an empty file, not a charctl checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CharctlError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise CharctlError(f"{path}: a directory, not a checkpoint") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise CharctlError(f"{path}: not a readable charctl checkpoint ({_unreadable_because(path, err)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CharctlError(f"{path}: not a charctl AWR checkpoint (format {FORMAT})")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise CharctlError(f"{path}: an incomplete charctl checkpoint (no {', '.join(missing)})")
    if not isinstance(state["config"], dict) or not isinstance(state["env_kwargs"], dict):
        raise CharctlError(f"{path}: an incomplete charctl checkpoint (config and env_kwargs are not mappings)")
    env_settings = state["env_kwargs"].get("config")
    if state["env_id"] == IMITATION_ENV_ID and isinstance(env_settings, dict):
        from charctl.envs.config import completed_saved_config

        state["env_kwargs"] = {**state["env_kwargs"], "config": completed_saved_config(env_settings)}
    return state


# torch.save(..., _use_new_zipfile_serialization=False) begins with a pickled magic number (protocol 2, a long)
_LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _unreadable_because(path: Path, err: Exception) -> str:
    """Why torch could not load the file, in a few words: torch's own messages run to a paragraph, and the
    weights-only one suggests loading the file unsafely, which a charctl checkpoint never needs."""
    if isinstance(err, OSError):  # permissions, a read error: the system's own words say it
        return err.strerror or str(err)
    with open(path, "rb") as file:
        head = file.read(len(_LEGACY_TORCH_HEAD))
    legacy = head == _LEGACY_TORCH_HEAD  # torch's format before 1.6, which charctl never writes
    if not legacy and head[:4] != b"PK\x03\x04":  # torch.save writes a zip archive
        return "not a file written by torch.save: charctl checkpoints are the .pt files charctl train writes"
    if isinstance(err, pickle.UnpicklingError):
        return (("a torch file in the legacy format (before torch 1.6); " if legacy else "")
                + "it holds Python objects besides tensors, numbers, strings, lists and dicts, so it is not one "
                "charctl wrote; it was not loaded, so none of its code ran")
    kind = "file in the legacy format" if legacy else "archive"
    return f"a damaged or cut-off torch {kind}: {str(err).split('.')[0]}"


def played_actor_weights(agent_state: dict, averaged: bool = True) -> dict:
    """The actor weights a checkpoint plays with: the mean of the actor's weights when its run keeps one
    (AWRConfig.average_from) and `averaged`, else the actor's (the network the run fits)."""
    average = agent_state.get("actor_average")
    return agent_state["actor"] if average is None or not averaged else average


def keeps_actor_average(state: dict) -> bool:
    """Whether the checkpoint's run keeps a mean of the actor's weights beside the actor."""
    return state["agent"].get("actor_average") is not None


def actor_from_checkpoint(state: dict, averaged: bool = True) -> Actor:
    """The checkpoint's actor network with the weights it plays with (`averaged=False`: the actor it fits)."""
    config = build_config(state["config"], "checkpoint config")
    action = ActionSpec(**state["action"])
    actor = Actor(state["observation_size"], action, config.actor_layers, config.actor_init_output_scale,
                  config.action_std)
    actor.load_state_dict(played_actor_weights(state["agent"], averaged))
    return actor


def policy_from_checkpoint(state: dict, averaged: bool = True) -> NumpyPolicy:
    actor = actor_from_checkpoint(state, averaged)
    normalizer = ObsNormalizer(state["observation_size"])
    normalizer.load_state_dict(state["agent"]["normalizer"])
    return NumpyPolicy.from_actor(actor, normalizer)

