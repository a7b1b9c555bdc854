"""AWR settings as a typed dataclass: its defaults (the authors' reference code, xbpeng/awr awr_configs.py, where it
has them), then the task's YAML under configs/awr/ (gym/<ENV_ID>.yaml or imitation/<character>.yaml), then overrides.

The dataclass below is the one place the defaults are written: the YAML files hold only what differs for a task.
Every key of `AWRConfig` can appear in a YAML file or in `--set key=value`; unknown keys and values of the
wrong type are a `CharctlError` naming the file (or `--set`) and the key. The algorithm: docs/awr.md.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from charctl.util.errors import CharctlError
from charctl.util.fileio import read_yaml_mapping
from charctl.util.paths import CONFIGS_DIR
from charctl.util.typed_config import checked_fields, ranged

AWR_CONFIGS_DIR = CONFIGS_DIR / "awr"
ENV_PREFIX = "env."  # --set env.time_limit=10 sets an imitation env setting, other keys are AWR settings
# what a run keeps from its start: a resume or a switch may not change them
FIXED_ON_RESUME = ("actor_layers", "critic_layers", "normalizer_std_floor", "seed", "init_from", "init_actor_output")


@dataclass
class AWRConfig:
    # --- run
    samples: int = ranged(1_000_000, ge=1)  # environment samples to train on (dataset mode: see docs/datasets.md)
    seed: int = ranged(0, ge=0)
    num_workers: int = ranged(2, ge=0)  # rollout worker processes; 0 runs the env in the learner process
    # learner's torch and numpy-BLAS threads; 0: one per rollout worker, at most the machine's cores (they wait
    # while it updates; with overlap_collection they do not, and it takes 1): 1.09x the samples/s of a dog run alone
    # on 2 cores, but two runs or test processes sharing the cores each take 2. Measured: docs/benchmarks.md
    torch_threads: int = ranged(1, ge=0)
    device: str = "auto"                 # learner's torch device: auto (a GPU when torch sees one), cpu, cuda
    eval_every: int = ranged(10, ge=0)  # iterations between deterministic test evaluations (0: only at the end)
    eval_episodes: int = ranged(10, ge=0)
    checkpoint_buffer: bool = True       # keep the replay buffer in the checkpoint (--resume continues exactly)
    # a run resumed from a checkpoint without its replay buffer (a kept mark, a policy file, checkpoint_buffer
    # false) collects buffer_size samples before it updates again: fitted on a buffer of one iteration, a trained
    # actor drifts (docs/awr.md)
    refill_on_resume: bool = True
    # samples between kept policies (0: none): the first iteration at or past each multiple of it also writes
    # marks/NAME-SAMPLES.pt (no replay buffer), to evaluate a long run's policies on held-out starts later
    keep_every: int = ranged(0, ge=0)
    # seconds a rollout worker may go without a sign of life (it sends one at least every second while it steps
    # its env) before it counts as hung and the run stops
    worker_timeout: float = ranged(30.0, gt=0)
    # the workers collect the next iteration's samples while the learner updates, with the policy from before
    # that update (one update behind: AWR is off-policy); not on iterations that end with a test evaluation
    overlap_collection: bool = False
    # a new run begins from this checkpoint's actor, critic and observation normaliser (a run of the same
    # observation and action sizes and layers, e.g. another clip of the same character: DeepMimic's
    # --model_files); its optimisers, samples and seed start afresh
    init_from: str | None = None
    # fresh: the actor's output layer starts as a new run's (actor_init_output_scale; 0 for imitation: the new
    # clip's reference-PD baseline) over init_from's hidden layers, whose features it keeps; keep: all of it
    init_actor_output: typing.Literal["keep", "fresh"] = "keep"
    # --- data
    samples_per_iter: int = ranged(2048, ge=1)  # new samples per iteration (whole episodes, so a little more)
    buffer_size: int = ranged(50_000, ge=1)  # FIFO replay buffer, in samples; whole oldest episodes are evicted
    on_policy: bool = False              # ablation: the buffer holds only the latest iteration's episodes
    discount: float = ranged(0.99, ge=0, lt=1)
    td_lambda: float = ranged(0.95, ge=0, le=1)
    # monte_carlo: the lambda = 1 ablation (a truncated episode still bootstraps)
    returns: typing.Literal["td_lambda", "monte_carlo"] = "td_lambda"
    # --- advantages and weights
    baseline: bool = True                # false: RWR ablation, weights from returns instead of advantages
    normalize_advantages: bool = True    # reference code: A_hat = (A - mean) / (std + 1e-5)
    temperature: float = ranged(1.0, gt=0)  # beta in exp(A_hat / beta)
    weight_clip: float = ranged(20.0, gt=0)
    # --- actor: Gaussian with fixed std (Box actions) or categorical (Discrete), momentum SGD
    actor_layers: list[int] = ranged(default_factory=lambda: [128, 64], ge=1, min_items=1)
    actor_lr: float = ranged(5e-5, ge=0)
    actor_momentum: float = ranged(0.9, ge=0, lt=1)
    actor_batch_size: int = ranged(256, ge=1)
    actor_steps: int = ranged(1000, ge=0)  # per samples_per_iter new samples (scaled by the actual count)
    actor_init_output_scale: float = ranged(0.01, ge=0)
    action_std: float = ranged(0.2, gt=0)  # fixed Gaussian std in normalised action units (Box actions)
    exploration_rate: float = ranged(1.0, gt=0, le=1)  # share of training steps that sample an action; the
    # others take the mean, and the actor is fitted to the sampled ones only (DeepMimic's and MimicKit's
    # exploration probability)
    action_bound_weight: float = ranged(10.0, ge=0)  # penalty on the policy mean outside [-1, 1] (normalised units)
    action_l2_weight: float = ranged(0.0, ge=0)  # 0.5 * mean(sum(x^2)) of the mean (Box) or the logits (Discrete)
    # scale each actor step's gradient down to this norm (null: never)
    actor_max_grad_norm: float | None = ranged(None, gt=0)
    # the mean of the actor's weights over the run's updates (stochastic weight averaging; `charctl average` does
    # it afterwards from kept policies): from the first update at or past `average_from` samples (null: never; not
    # before normalizer_samples, as weights fitted to other normalisations do not average) the run keeps it beside
    # the actor, tests it, and saves it as the policy that plays; the rollouts and the fit keep the actor itself
    average_from: int | None = ranged(None, ge=0)
    # samples the mean spans: an exponential moving average taking new samples / average_window of each update's
    # actor; 0: the plain mean of every update since average_from
    average_window: int = ranged(0, ge=0)
    # --- critic: predicts V / value_scale, momentum SGD
    critic_layers: list[int] = ranged(default_factory=lambda: [128, 64], ge=1, min_items=1)
    critic_lr: float = ranged(0.01, ge=0)
    critic_momentum: float = ranged(0.9, ge=0, lt=1)
    critic_batch_size: int = ranged(256, ge=1)
    critic_steps: int = ranged(200, ge=0)  # per samples_per_iter new samples (scaled by the actual count)
    value_scale: float | None = ranged(None, gt=0)  # the critic predicts V / value_scale; null: 1 / (1 - discount)
    # --- observation normaliser
    normalizer_samples: int = ranged(300_000, ge=0)  # running mean/std updated until this many samples, then frozen
    normalizer_std_floor: float = ranged(0.01, gt=0)
    obs_clip: float | None = ranged(None, gt=0)  # clip normalised observations to +-obs_clip (null: no clip)
    # --- a curriculum: {SAMPLES: {KEY: VALUE, ...}}; from the first iteration at or past SAMPLES on, the run trains
    # with these settings as well (AWR keys, or env.KEY for an imitation env setting that keeps the observation and
    # action sizes), as a `--resume --set` there would; each applies once, recorded in settings_changes.txt
    switches: dict = dataclasses.field(default_factory=dict)

    @property
    def effective_lambda(self) -> float:
        return 1.0 if self.returns == "monte_carlo" else self.td_lambda

    @property
    def effective_torch_threads(self) -> int:
        if self.torch_threads:
            return self.torch_threads
        if self.overlap_collection or self.num_workers <= 1:
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(self.num_workers, cores))

    @property
    def effective_value_scale(self) -> float:
        return self.value_scale if self.value_scale is not None else 1.0 / (1.0 - self.discount)


def build_config(values: dict, source: str) -> AWRConfig:
    """An AWRConfig from a flat mapping; `source` names where the values came from in errors."""
    return AWRConfig(**_checked(values, source))


def read_yaml(path: Path) -> dict:
    data = read_yaml_mapping(path, "AWR settings")
    return _checked(data, path)  # name the file and key here: merged values lose their origin


def parse_overrides(items: list[str] | None) -> dict:
    """`--set key=value` pairs; values are YAML (so 0.1, true, null, [64, 64] work)."""
    values = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CharctlError(f"--set {item}: expected key=value")
        try:
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CharctlError(f"--set {item}: value is not valid YAML") from None
    return values


def env_config_path(env_id: str, directory: Path = AWR_CONFIGS_DIR) -> Path:
    """Per-env reference settings: configs/awr/gym/<env id>.yaml ('/' in ids becomes '_')."""
    return directory / "gym" / f"{env_id.replace('/', '_')}.yaml"


def character_config_path(character: str, directory: Path = AWR_CONFIGS_DIR) -> Path:
    """Imitation settings per character: configs/awr/imitation/<character>.yaml, with a `clips:` section."""
    return directory / "imitation" / f"{character}.yaml"


def _imitation_values(character: str, motion: str | None, directory: Path) -> tuple[dict, str | None]:
    """The character's settings with its clip's overrides applied (the `clips:` section), and their file."""
    path = character_config_path(character, directory)
    if not path.exists():
        return {}, None
    data = read_yaml_mapping(path, "AWR settings")
    clips = data.pop("clips", None) or {}
    if not isinstance(clips, dict):
        raise CharctlError(f"{path}: clips: expected a mapping of clip name to settings")
    values = _checked(data, path)
    clip_values = clips.get(motion) or {}
    if not isinstance(clip_values, dict):
        raise CharctlError(f"{path}: clips: {motion}: expected a mapping of AWR settings")
    values.update(_checked(clip_values, f"{path}: clips: {motion}"))
    return values, str(path)


def _checked(data: dict, where) -> dict:
    """`data` with every key known and every value of its field's type (ints accepted for floats, converted)."""
    values = checked_fields(AWRConfig, data, where, "the keys: AWRConfig in charctl/awr/config.py")
    if "switches" in values:
        values["switches"] = _checked_switches(values["switches"], f"{where}: switches")
    return values


def _checked_switches(switches: dict, where: str) -> dict:
    """Switches in sample order, each AWR value typed and in range; env.* values are the env's to check (the
    trainer does, before the run starts)."""
    out = {}
    for mark, settings in switches.items():
        if isinstance(mark, bool) or not isinstance(mark, int) or mark < 1:
            raise CharctlError(f"{where}: {mark!r}: expected a sample count >= 1")
        if not isinstance(settings, dict) or not settings:
            raise CharctlError(f"{where}: {mark}: expected a mapping of settings, got {settings!r}")
        env = {key: value for key, value in settings.items() if str(key).startswith(ENV_PREFIX)}
        awr = {key: value for key, value in settings.items() if key not in env}
        for key in awr:
            if key in (*FIXED_ON_RESUME, "samples", "switches"):
                raise CharctlError(f"{where}: {mark}: {key} cannot switch during a run")
        out[mark] = {**_checked(awr, f"{where}: {mark}"), **env}
    return dict(sorted(out.items()))


def split_env_settings(settings: dict) -> tuple[dict, dict]:
    """(AWR settings, nested imitation env settings) from flat keys, env.KEY (env.sim.KEY nests) for the env."""
    awr, env = {}, {}
    for key, value in settings.items():
        if not str(key).startswith(ENV_PREFIX):
            awr[key] = value
            continue
        *parents, leaf = key[len(ENV_PREFIX):].split(".")
        node = env
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return awr, env


def load_config(env_id: str | None = None, config_file: str | Path | None = None, overrides: dict | None = None,
                directory: Path = AWR_CONFIGS_DIR, character: str | None = None,
                motion: str | None = None) -> AWRConfig:
    """AWRConfig's defaults, then the env's reference file (Gym) or the character's file and its clip section
    (imitation), then `config_file`, then `overrides`."""
    values: dict = {}
    source = "AWRConfig defaults"
    if character is not None:
        extra, extra_source = _imitation_values(character, motion, directory)
        values.update(extra)
        source = extra_source or source
    elif env_id is not None and env_config_path(env_id, directory).exists():
        values.update(read_yaml(env_config_path(env_id, directory)))
        source = str(env_config_path(env_id, directory))
    if config_file is not None:
        values.update(read_yaml(Path(config_file)))
        source = str(config_file)
    values.update(_checked(overrides or {}, "--set"))
    return build_config(values, source)


def config_to_dict(config: AWRConfig) -> dict:
    return dataclasses.asdict(config)
