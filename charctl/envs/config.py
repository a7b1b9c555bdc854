"""Typed environment settings: the dataclasses' defaults (DeepMimic's where it has them), then
configs/env/<character>.yaml, then its `clips:` section for the clip, then the `config` mapping given to
gymnasium.make.

The dataclasses below are the one place the defaults are written: the YAML files hold only what differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from charctl.sim.simulation import SimConfig
from charctl.util.fileio import read_yaml_mapping
from charctl.util.paths import CONFIGS_DIR
from charctl.util.typed_config import checked_fields, ranged


@dataclass
class RewardConfig:
    """r = sum_i w_i exp(-k_i e_i): DeepMimic's weights and scales (the pose and velocity scales are for its
    15-joint humanoid and are scaled by joints / 15, as the joint weights are normalised)."""

    pose_weight: float = ranged(0.5, ge=0)
    pose_scale: float = ranged(2.0, ge=0)
    velocity_weight: float = ranged(0.05, ge=0)
    velocity_scale: float = ranged(0.1, ge=0)
    end_effector_weight: float = ranged(0.15, ge=0)
    end_effector_scale: float = ranged(10.0, ge=0)
    root_weight: float = ranged(0.2, ge=0)
    root_scale: float = ranged(5.0, ge=0)
    com_weight: float = ranged(0.1, ge=0)
    com_scale: float = ranged(10.0, ge=0)


@dataclass
class EnvConfig:
    time_limit: float = ranged(20.0, gt=0)  # seconds; reaching it truncates the episode (its value is bootstrapped)
    train_time_limit: float | None = ranged(None, gt=0)  # seconds; a shorter cap on training episodes, truncated
    # as at the time limit: DeepMimic trains on 0.5 s episodes at first, lengthened to 20 s over 32M samples (a
    # curriculum: `bench learn --from`). Training only: evaluation runs the full time_limit; null: off
    train_start_phases: list[float] | None = ranged(None, ge=0, le=1, min_items=2, max_items=2)  # [from, to]:
    # training episodes start at a phase of the clip's cycle in this window (wrapping through 1 when from > to),
    # to practise one part of a clip; training only: evaluation starts anywhere; null: anywhere
    train_start_window_share: float = ranged(1.0, ge=0, le=1)  # with train_start_phases: the share of training
    # episodes that start in the window, the rest anywhere in the cycle (so the rest of the clip is still practised)
    sync_heading: bool = False  # at each new cycle also turn the reference to the simulated heading (turning loop)
    pd_target_velocity: bool = False  # False: PD target velocity 0 (DeepMimic); True: the reference joint velocities
    pd_target_velocity_scale: float = ranged(1.0, ge=0)  # with pd_target_velocity, the targets are this share of the
    # reference's joint velocities: stepped from 0 to 1 over a run (`bench learn --from`), it moves a policy that
    # learnt with zero targets onto the clip's velocities a little at a time
    # absolute: the action is the PD target (DeepMimic, the AWR paper); residual: the action is added to the
    # reference pose's own action (docs/environment.md)
    action_mode: Literal["absolute", "residual"] = "absolute"
    ground_contact_bodies: list[str] | None = None  # None: the character YAML's list
    pose_termination_distance: float | None = ranged(None, ge=0)  # m; an episode also ends when a body is this
    # far from the reference's (MimicKit: 1.0 humanoid, 0.5 quadruped); null: off. Training only: evaluation
    # turns it off
    clip_speed: float = ranged(1.0, gt=0)  # the reference plays this many times as fast (0.5: half the pace, a
    # slower first stage of a pace curriculum, then `--resume --set env.clip_speed=1`). Training only: evaluation
    # plays the clip as it is
    train_grounded_clip: bool = False  # train on the clip with its root moved vertically per frame so its feet in
    # contact touch the ground and no body is below it, as `charctl retarget` grounds a BVH (DeepMimic's canter puts
    # toes 3 cm, a foot 1 cm into the ground). Training only: evaluation follows the clip as it is
    observe_phase: bool = True  # the clip's phase in [0, 1) as the first observation
    observe_world_root: bool = False  # the root body's rotation and velocities in world axes rather than its heading
    # frame, so the policy sees its heading (DeepMimic's RecordWorldRootRot, where the reference heading is not synced)
    reference_ahead: list[int] = ranged(default_factory=list, ge=0)  # also observe the reference this many
    # control steps ahead (MimicKit: [1, 2, 3]): its root offset and rotation, joint rotations and end effectors
    sim: SimConfig = field(default_factory=SimConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)

    @property
    def horizon(self) -> int:
        """Control steps in a full episode: the denominator of the AWR paper's normalised return."""
        return int(round(self.time_limit * self.sim.control_hz))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read(path: Path) -> dict:
    return read_yaml_mapping(path, "environment settings") if path.exists() else {}


def load_env_config(character: str, motion: str, overrides: dict | None = None,
                    directory: Path = CONFIGS_DIR / "env") -> EnvConfig:
    per_character = _read(directory / f"{character}.yaml")
    clips = per_character.pop("clips", {}) or {}
    values = dict(per_character)
    values = _merge(values, clips.get(motion, {}) or {})
    values = _merge(values, overrides or {})
    return EnvConfig(**checked_fields(EnvConfig, values, directory / f"{character}.yaml"))


def env_config_on(saved: dict, overrides: dict | None, source: str) -> EnvConfig:
    """Settings saved with a run (a checkpoint's), with `overrides` on top: what a resumed run asks for."""
    return EnvConfig(**checked_fields(EnvConfig, _merge(saved, overrides or {}), source))


def config_to_dict(config: EnvConfig) -> dict:
    return dataclasses.asdict(config)


def for_evaluation(settings: dict) -> dict:
    """Env settings as evaluation (eval, play, bench learn's marks and baselines) runs them: an episode ends only as
    the AWR paper's do, on a fall or the time limit, and follow the clip as it is at its own speed, so the
    training-only pose termination, clip speed, episode cap, start window and grounded clip are off and returns
    compare across training settings."""
    return {**settings, "pose_termination_distance": None, "clip_speed": 1.0, "train_time_limit": None,
            "train_start_phases": None, "train_grounded_clip": False}


def completed_saved_config(saved: dict) -> dict:
    """A run's saved env settings with every setting added since it was saved at its default: the run had none,
    which is the default's behaviour, so a newer per-character YAML value (applied under a run's settings)
    must not fill the gap."""
    return _merge(config_to_dict(EnvConfig()), saved)
