"""Static datasets of whole episodes as .npz files (format: docs/datasets.md)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from charctl.awr.buffer import Episode, flatten
from charctl.awr.policy import ActionSpec
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_write_bytes

KEYS = ("observations", "actions", "rewards", "terminated", "truncated", "next_observations")


def save_dataset(path: str | Path, episodes: list[Episode], env_id: str | None = None,
                 env_kwargs: dict | None = None) -> None:
    """Write episodes as flat transition arrays; every episode's last row has terminated or truncated set."""
    flat = flatten(episodes)
    last = flat.is_last
    next_obs = np.empty_like(flat.observations)
    next_obs[:-1] = flat.observations[1:]
    next_obs[last] = flat.final_observations
    terminated = np.zeros(len(flat), dtype=bool)
    terminated[last] = flat.terminated
    truncated = last & ~terminated
    arrays = {"observations": flat.observations, "actions": flat.actions, "rewards": flat.rewards,
              "terminated": terminated, "truncated": truncated, "next_observations": next_obs}
    if env_id is not None:
        arrays["env_id"] = np.array(env_id)
    if env_kwargs:
        arrays["env_kwargs"] = np.array(json.dumps(env_kwargs, sort_keys=True))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_dataset(path: str | Path, obs_size: int, action: ActionSpec, env_id: str | None = None) -> list[Episode]:
    """Episodes from a dataset file, checked against the env (its id when the file records one, observation
    size, action space)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in KEYS if k not in data.files]
            if missing:
                raise CharctlError(f"{path}: missing array '{missing[0]}' (needs {', '.join(KEYS)})")
            arrays = {k: data[k] for k in KEYS}
            recorded_env = str(data["env_id"]) if "env_id" in data.files else None
    except FileNotFoundError:
        raise CharctlError(f"{path}: no such dataset file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CharctlError(f"{path}: not a readable .npz dataset ({err})") from None

    if env_id is not None and recorded_env is not None and recorded_env != env_id:
        raise CharctlError(f"{path}: collected in {recorded_env}, not {env_id}")
    n = len(arrays["rewards"])
    if n == 0:
        raise CharctlError(f"{path}: 'rewards' is empty")
    expected = {"observations": (n, obs_size), "next_observations": (n, obs_size), "rewards": (n,),
                "terminated": (n,), "truncated": (n,),
                "actions": (n,) if action.discrete else (n, action.size)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise CharctlError(f"{path}: '{key}' has shape {arrays[key].shape}, expected {shape}")
    for key in ("terminated", "truncated"):
        if arrays[key].dtype != bool:
            raise CharctlError(f"{path}: '{key}' must be bool, not {arrays[key].dtype}")
    if action.discrete:
        if not np.issubdtype(arrays["actions"].dtype, np.integer):
            raise CharctlError(f"{path}: 'actions' must be integers for a Discrete action space")
        if arrays["actions"].min() < 0 or arrays["actions"].max() >= action.size:
            raise CharctlError(f"{path}: 'actions' outside 0..{action.size - 1}")
    for key in ("observations", "next_observations", "rewards", "actions"):
        if not np.all(np.isfinite(arrays[key])):
            row = int(np.argwhere(~np.isfinite(arrays[key]))[0][0])
            raise CharctlError(f"{path}: '{key}' row {row} is not finite")
    ends = arrays["terminated"] | arrays["truncated"]
    if not ends[-1]:
        raise CharctlError(f"{path}: the last row ends no episode (set 'terminated' or 'truncated' on it)")

    last = np.flatnonzero(ends)
    starts = np.concatenate([[0], last[:-1] + 1])
    actions = arrays["actions"].astype(np.int64 if action.discrete else np.float32)
    return [Episode(observations=arrays["observations"][s:e + 1].astype(np.float32),
                    actions=actions[s:e + 1], rewards=arrays["rewards"][s:e + 1].astype(np.float32),
                    final_observation=arrays["next_observations"][e].astype(np.float32),
                    terminated=bool(arrays["terminated"][e]))
            for s, e in zip(starts, last)]
