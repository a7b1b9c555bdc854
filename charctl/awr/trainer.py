"""The AWR training loop: rollouts -> replay buffer -> update -> evaluation -> logs -> checkpoint.

    from charctl.awr.config import load_config
    from charctl.awr.trainer import train
    train("Hopper-v5", {}, load_config("Hopper-v5"), "runs/hopper")

Output directory (NAME defaults to the env id with '/' as '_'):
    NAME-last.pt   everything to resume or play, written atomically after every iteration
    NAME.pt        the policy with the best deterministic test return so far (no replay buffer)
    marks/NAME-SAMPLES.pt  with `keep_every`: the policy at the first iteration past each multiple of it
    progress.csv   one row per iteration;  config.yaml  the resolved settings;  tb/  TensorBoard scalars
A kill at any moment loses at most the iteration in flight; `resume=True` continues from NAME-last.pt.
A curriculum (`config.switches`) is a resume in-process: at the first iteration at or past a switch's samples the
run is closed and resumed with its settings, so what holds for `--resume --set` holds for it.
Ctrl-C stops after closing the workers; the last checkpoint is the end of the last finished iteration. SIGTERM
(kill, docker stop, a scheduler) stops after the iteration in flight, so its samples are kept; a second SIGTERM
stops at once (charctl/awr/graceful_stop.py).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from threadpoolctl import threadpool_limits

from charctl.awr.agent import AWRAgent
from charctl.awr.buffer import EpisodeBuffer
from charctl.awr.checkpoint import (
    FORMAT,
    buffer_from_dict,
    buffer_to_dict,
    check_primitive,
    load_checkpoint,
    played_actor_weights,
    policy_from_dict,
    policy_to_dict,
    save_checkpoint,
)
from charctl.awr.config import ENV_PREFIX, FIXED_ON_RESUME, AWRConfig, build_config, config_to_dict, split_env_settings
from charctl.awr.dataset import load_dataset
from charctl.awr.graceful_stop import stop_on_sigterm
from charctl.awr.rollout import Rollouts, make_env
from charctl.envs import IMITATION_ENV_ID
from charctl.util.errors import CharctlError
from charctl.util.fileio import DirectoryLock, atomic_write_bytes, atomic_write_text

COLUMNS = ["iteration", "samples", "wall_time", "train_return", "train_normalized_return", "train_episodes",
           "train_episode_length", "test_return", "test_return_std", "test_normalized_return", "test_episode_length",
           "critic_loss", "actor_loss", "adv_mean", "adv_std", "weight_mean", "weight_min", "weight_max",
           "clipped_fraction", "critic_steps", "actor_steps", "buffer_samples", "explored_fraction",
           "samples_per_second", "rollout_seconds", "update_seconds", "eval_seconds", "checkpoint_seconds",
           "worker_restarts"]


@dataclass
class TrainResult:
    out_dir: Path
    name: str
    iteration: int
    samples: int
    test_returns: list[tuple[int, float]] = field(default_factory=list)  # (samples, mean test return) this run
    best_test_return: float | None = None
    interrupted: bool = False
    stopped_by_sigterm: bool = False  # interrupted by SIGTERM, after finishing the iteration in flight

    test_episodes: int = 0      # deterministic episodes behind each test return
    horizon: int | None = None  # full-episode control steps (imitation tasks): test return / horizon = normalised

    @property
    def final_test_return(self) -> float | None:
        return self.test_returns[-1][1] if self.test_returns else None

    def final_test_text(self) -> str | None:
        """The last test return, labelled: normalised for imitation tasks, raw for Gym tasks."""
        final = self.final_test_return
        if final is None:
            return None
        episodes = f"({self.test_episodes} deterministic episodes)"
        if self.horizon:
            return f"normalised test return {final / self.horizon:.3f} {episodes}"
        return f"test return {final:.1f} {episodes}"

    @property
    def last_checkpoint(self) -> Path:
        return last_checkpoint_path(self.out_dir, self.name)

    @property
    def best_checkpoint(self) -> Path:
        return best_checkpoint_path(self.out_dir, self.name)


def default_name(env_id: str) -> str:
    return env_id.replace("/", "_")


def last_checkpoint_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"{name}-last.pt"


def best_checkpoint_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.pt"


def episode_horizon(env) -> int | None:
    """Control steps in a full episode when the env defines one (the imitation tasks), for normalised returns."""
    config = getattr(env.unwrapped, "config", None)
    return getattr(config, "horizon", None)


class ProgressLog:
    """progress.csv, rewritten atomically each iteration (it is small); resuming drops rows after the checkpoint."""

    def __init__(self, path: Path, keep_before_iteration: int = 0, checkpoint_row: dict | None = None):
        self.path = path
        self.rows: list[dict] = []
        if keep_before_iteration > 0 and path.exists():
            with open(path, newline="") as f:
                self.rows = [row for row in csv.DictReader(f) if int(row["iteration"]) < keep_before_iteration]
        # a kill between the checkpoint and the CSV write: the checkpoint carries its iteration's row
        if checkpoint_row and not any(int(r["iteration"]) == int(checkpoint_row["iteration"]) for r in self.rows):
            self.rows.append({k: checkpoint_row.get(k, "") for k in COLUMNS})

    def append(self, row: dict) -> None:
        self.rows.append({k: row.get(k, "") for k in COLUMNS})
        self.write(self.path)

    def write(self, path: Path) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(path, text.getvalue())


def _fmt(value) -> str:
    return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))


def _tensorboard(out_dir: Path, purge_step: int):
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(out_dir / "tb"), purge_step=purge_step if purge_step > 0 else None)


# how the command line names a setting in a refusal (others are --set KEY)
FLAGS = {"samples": "--samples", "seed": "--seed", "num_workers": "--workers", "init_from": "--init"}


def _env_difference(saved_id: str, saved_kwargs: dict, env_id: str, env_kwargs: dict) -> str:
    """A short description of how the checkpoint's env differs from the requested one (not two dict dumps)."""
    if saved_id != env_id:
        return f"{saved_id}, not {env_id}"
    for key in ("character", "motion"):
        if saved_kwargs.get(key) != env_kwargs.get(key):
            return f"{saved_kwargs.get(key)} ({key}), not {env_kwargs.get(key)}"
    differences = _flat_differences(saved_kwargs, env_kwargs)
    shown = "; ".join(f"{k} {old!r}, not {new!r}" for k, old, new in differences[:3])
    return f"env settings {shown}" + (f" (and {len(differences) - 3} more)" if len(differences) > 3 else "")


def _flat_differences(saved: dict, wanted: dict) -> list[tuple[str, object, object]]:
    """(dotted key, saved value, wanted value) for each nested setting that differs, sorted by key."""
    flat_saved, flat_wanted = _flatten(saved), _flatten(wanted)
    keys = sorted(k for k in flat_saved.keys() | flat_wanted.keys() if flat_saved.get(k) != flat_wanted.get(k))
    return [(k, flat_saved.get(k), flat_wanted.get(k)) for k in keys]


def _flatten(mapping: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _resume_state(path: Path, env_id: str, env_kwargs: dict, changes: dict | None,
                  resumed_env=None) -> tuple[dict, AWRConfig, list[str]]:
    """The checkpoint, the resumed run's settings (the saved ones with `changes` applied) and a note per change.
    Refusals happen here, before anything in the run directory is written."""
    if not path.exists():
        others = sorted(p.name[:-len("-last.pt")] for p in path.parent.glob("*-last.pt"))
        if others:
            raise CharctlError(f"{path.parent}: holds a run of {', '.join(others)}, "
                               f"not {path.name[:-len('-last.pt')]}; choose another --out")
        raise CharctlError(f"{path}: no checkpoint to resume from")
    state = load_checkpoint(path)
    missing = [key for key in ("torch_rng", "wall_time") if key not in state]
    if missing:
        raise CharctlError(f"{path}: cannot resume from it (no {', '.join(missing)}); a policy-only checkpoint?")
    saved_env = dict(state["env_kwargs"])
    env_notes = []
    if resumed_env is not None:  # the saved env settings with the command's own on top: each difference was asked for
        env_kwargs = resumed_env(saved_env)
        if state["env_id"] == env_id and _same_task(saved_env, env_kwargs):
            env_notes = _env_changes(saved_env, env_kwargs)
    if not env_notes and (state["env_id"] != env_id or saved_env != env_kwargs):
        raise CharctlError(f"{path}: trained on " + _env_difference(state["env_id"], saved_env, env_id, env_kwargs)
                           + "; a resumed run keeps its env (start a new run in another --out)")
    saved = config_to_dict(build_config(state["config"], f"{path}: config"))
    resumed_config = build_config({**saved, **(changes or {})}, "--set")  # types and ranges checked
    resumed = config_to_dict(resumed_config)
    changed = [key for key in (changes or {}) if resumed[key] != saved[key]]
    for key in changed:
        if key in FIXED_ON_RESUME:
            flag = FLAGS.get(key, f"--set {key}")
            raise CharctlError(f"{flag}: a resumed run keeps its {key} ({saved[key]}); start a new run "
                               "to change it")
    notes = [f"{key} {saved[key]} -> {resumed[key]}" for key in changed]
    if env_notes:
        state = {**state, "env_kwargs": env_kwargs, "env_changed": True}
    return state, resumed_config, env_notes + notes


def _kept_switches_note(kept: dict, asked: dict, made: list[int], samples: int, settings: dict) -> str | None:
    """A resumed run keeps its own switches; where the ones it has not made yet differ from those the task's config
    now has and the run has not made (a switch whose samples are past but not made is made at the resume), a
    line saying so and how to take them, else None. `settings` are the run's flat settings now (env.KEY for the
    env's): a passed switch that would set them to what they are changes nothing and does not count."""
    ahead, asked_ahead = _switches_to_make(kept, made, samples, settings), _switches_to_make(asked, made, samples,
                                                                                            settings)
    if ahead == asked_ahead:
        return None
    return (f"keeps its own switches still to make, {ahead or 'none'}; the task's config now has "
            f"{asked_ahead or 'none'} (--set 'switches={{...}}' with --resume takes others)")


def _switches_to_make(switches: dict, made: list[int], samples: int, settings: dict) -> dict:
    """The switches not made yet, less those already passed (made in turn at the resume) that change nothing."""
    now, out = dict(settings), {}
    for mark in sorted(switches):
        if mark in made:
            continue
        if mark <= samples:
            changes = {key: value for key, value in switches[mark].items() if key not in now or now[key] != value}
            now.update(changes)
            if not changes:
                continue
        out[mark] = switches[mark]
    return out


def _space_difference(state: dict, observation_space, action_space) -> tuple[str, int, int] | None:
    """Where a checkpoint's policy does not fit an env: ("observation" or "actions", its size, the env's), or None
    (actions also differ when only their range does)."""
    from charctl.awr.policy import ActionSpec

    size, saved_size = int(observation_space.shape[0]), int(state["observation_size"])
    if size != saved_size:
        return "observation", saved_size, size
    action = ActionSpec.from_space(action_space).to_dict()
    if action != state["action"]:
        return "actions", state["action"]["size"], action["size"]
    return None


def _check_same_spaces(path: Path, state: dict, observation_space, action_space, notes: list[str]) -> None:
    """A resumed run's changed env must keep the policy's inputs and outputs."""
    difference = _space_difference(state, observation_space, action_space)
    if difference is None:
        return
    what = "; ".join(n for n in notes if n.startswith("env."))
    part, saved_size, size = difference
    change = f"the observation from {saved_size} to {size} numbers" if part == "observation" else \
        f"the actions ({saved_size} -> {size} numbers, or their range)"
    raise CharctlError(f"{path}: {what} changes {change}; a resumed run keeps its observation and actions (start a "
                       "new run in another --out)")


def _initial_networks(path: Path, observation_space, action_space, config: AWRConfig) -> dict:
    """The agent state a new run begins from (`init_from`), refused unless its networks fit this run."""
    state = load_checkpoint(path)
    where = f"{path} (--init)"
    difference = _space_difference(state, observation_space, action_space)
    if difference is not None:
        part, saved_size, size = difference
        verb, note = ("observes", "") if part == "observation" else ("acts with", " (or their range differs)")
        raise CharctlError(f"{where}: its policy {verb} {saved_size} numbers, this task {size}{note}")
    # every setting that differs at once: a policy of another schedule differs in both networks
    settings = [(key, state["config"].get(key), getattr(config, key))
                for key in ("actor_layers", "critic_layers", "normalizer_std_floor")]
    differing = [(key, saved, wanted) for key, saved, wanted in settings if saved != wanted]
    if differing:
        what = "; ".join(f"its {key} is {saved}, this run's {wanted}" for key, saved, wanted in differing)
        fix = " ".join(f"--set {key}={str(saved).replace(' ', '')}" for key, saved, _ in differing)
        raise CharctlError(f"{where}: {what} ({fix} to match)")
    # a run that keeps the mean of its actor's weights plays that mean: the new run begins from it
    return {**state["agent"], "actor": played_actor_weights(state["agent"])}


def _check_average_after_normalizer(config: AWRConfig) -> None:
    """The mean of the actor's weights (average_from, the run's or a switch's) begins once the observation
    normaliser is frozen: weights fitted to other normalisations do not average."""
    starts = [(config.average_from, "average_from")] + [
        (settings["average_from"], f"switches: {at}: average_from") for at, settings in config.switches.items()
        if settings.get("average_from") is not None]
    for start, where in starts:
        if start is not None and start < config.normalizer_samples:
            raise CharctlError(f"{where} {start}: before normalizer_samples ({config.normalizer_samples}); the "
                               "actor's weights average only once the observation normaliser is frozen")


def _same_task(saved: dict, wanted: dict) -> bool:
    """Whether two imitation env kwargs differ in their env settings (`config`) only."""
    return ({k: v for k, v in saved.items() if k != "config"} == {k: v for k, v in wanted.items() if k != "config"}
            and isinstance(saved.get("config"), dict) and isinstance(wanted.get("config"), dict))


def _env_changes(saved: dict, wanted: dict) -> list[str]:
    """One note per env setting that differs, as `env.KEY old -> new`."""
    return [f"env.{k} {old} -> {new}" for k, old, new in _flat_differences(saved["config"], wanted["config"])]


def clean_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the `.NAME.*.tmp` files a kill during an atomic write leaves (charctl/util/fileio.py)."""
    removed = []
    for stale in directory.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def train(env_id: str, env_kwargs: dict | None, config: AWRConfig, out_dir: str | Path, *, resume: bool = False,
          dataset: str | Path | None = None, progress: bool = True, name: str | None = None,
          ray_address: str | None = None, changes: dict | None = None, resumed_env=None) -> TrainResult:
    """Train (or, with `resume`, continue training) an AWR policy on a gymnasium env id with Box or Discrete actions.

    `dataset`: train from a static .npz dataset (docs/datasets.md) without stepping the env; the env is used only
    for evaluation. `config.samples` then counts nominal samples (iterations x samples_per_iter).
    `ray_address`: rollout workers as Ray actors ("local" or "": the cluster in RAY_ADDRESS if set, else a local
    Ray instance of the run's own that ends with it; else a cluster address or "auto"); None: local worker
    processes. An already initialised Ray is used as it is.
    `resume`: continue from NAME-last.pt with the run's saved settings (its sample budget and seed too);
    `config` is then not used. `changes`: with `resume`, AWR settings to change from here on (the budget,
    learning rates, std, clips, workers, ...); each change is printed and appended to settings_changes.txt with
    the iteration it starts at. A change of a FIXED_ON_RESUME setting or of the task is refused. `resumed_env`:
    with `resume`, a function from the run's saved env kwargs to the ones the resume asks for (the CLI: the saved
    env settings with the command's --set env.* on top): the imitation env settings may change there, like AWR
    settings, if the observation and action sizes stay; the best test return then starts again, and the best
    policy so far is kept as NAME-before-iteration-N.pt. Without it, `env_kwargs` must be the saved ones.
    """
    # one process per run directory: taken now if the directory exists, else as soon as the run creates it
    with stop_on_sigterm, DirectoryLock(out_dir, "the run directory") as lock:
        run = _Run(env_id, env_kwargs, config, Path(out_dir), resume, dataset, progress, name, changes, resumed_env,
                   lock)
        while (due := _train_until_switch(run, ray_address)) is not None:
            awr_settings, env_settings = split_env_settings(run.config.switches[due])
            switched = run.env_kwargs if not env_settings else \
                switched_env(env_id, run.env_kwargs, env_settings, f"switches: {due}")
            run = _Run(env_id, switched, run.config, Path(out_dir), True, dataset, progress, name, awr_settings,
                       lambda saved: switched, lock, switch=due)
    return run.result


def _train_until_switch(run: _Run, ray_address: str | None) -> int | None:
    """Iterate until the budget is spent (None) or a switch is due (its samples; the last checkpoint then holds the
    run as it is, for the switch to resume from)."""
    try:
        run.open_rollouts(ray_address)
        # again once the rollouts are open: Ray's driver installs a SIGTERM handler of its own
        with stop_on_sigterm as stop:
            while run.samples < run.config.samples:
                if stop.requested:
                    run.result.interrupted = run.result.stopped_by_sigterm = True
                    break
                due = run.due_switch()
                if due is not None:
                    run.save_last()  # this command's own changes too, when no iteration has run since they applied
                    return due
                run.iterate()
    except KeyboardInterrupt:
        run.result.interrupted = True
    finally:
        run.close()
    return None


def switched_env(env_id: str, env_kwargs: dict, env_settings: dict, where: str) -> dict:
    """An imitation task's env kwargs with nested env settings on top (a switch's env.KEY values)."""
    if env_id != IMITATION_ENV_ID or not isinstance(env_kwargs.get("config"), dict):
        raise CharctlError(f"{where}: env.* settings apply to imitation tasks only")
    from charctl.envs.config import config_to_dict as env_config_to_dict
    from charctl.envs.config import env_config_on

    return {**env_kwargs, "config": env_config_to_dict(env_config_on(env_kwargs["config"], env_settings, where))}


class _Run:
    """One training run's state; `iterate` is one iteration, a sequence of named steps."""

    def __init__(self, env_id: str, env_kwargs: dict | None, config: AWRConfig, out_dir: Path, resume: bool,
                 dataset: str | Path | None, progress: bool, name: str | None, changes: dict | None,
                 resumed_env=None, lock: DirectoryLock | None = None, switch: int | None = None):
        self.env_id, self.out_dir = env_id, out_dir
        self.name = name = name or default_name(env_id)
        self.last_path, self.best_path = last_checkpoint_path(out_dir, name), best_checkpoint_path(out_dir, name)
        if out_dir.exists() and not out_dir.is_dir():
            raise CharctlError(f"{out_dir}: is a file, not a run directory (--out)")
        self.env_kwargs = env_kwargs = dict(env_kwargs or {})
        check_primitive(env_kwargs, "env kwargs")
        state, notes = None, []
        if resume:
            asked = config  # the task's settings as a new run would take them
            state, config, notes = _resume_state(self.last_path, env_id, env_kwargs, changes, resumed_env)
            if "switches" not in (changes or {}):
                settings = {**config_to_dict(config), **_flatten(state["env_kwargs"].get("config") or {}, ENV_PREFIX)}
                note = _kept_switches_note(config.switches, asked.switches, state.get("switches_made", []),
                                           int(state["samples"]), settings)
                if note is not None:
                    print(f"{name}: {note}")
            self.env_kwargs = env_kwargs = dict(state["env_kwargs"])  # the same as asked for, or refused
            dataset = state.get("dataset")
            clean_stale_temporaries(out_dir)
            clean_stale_temporaries(out_dir / "marks")
        elif self.last_path.exists():
            raise CharctlError(f"{self.last_path}: a run already exists here; pass --resume to continue it "
                               "or choose another --out")
        self.config, self.dataset = config, dataset
        if dataset is None:  # a static dataset sets the normaliser once, before the first update
            _check_average_after_normalizer(config)

        torch.set_num_threads(config.effective_torch_threads)
        probe = make_env(env_id, env_kwargs)
        self.observation_space, action_space, self.horizon = (probe.observation_space, probe.action_space,
                                                              episode_horizon(probe))
        probe.close()
        if state is not None and state.get("env_changed"):
            _check_same_spaces(self.last_path, state, self.observation_space, action_space, notes)
        # the switches this run has made (a resumed run's from its checkpoint) and, for one about to be made now, it
        self.switches_made = sorted({*(state.get("switches_made", []) if state is not None else []),
                                     *([switch] if switch is not None else [])})
        if switch is not None:
            notes.insert(0, f"the switch at {switch} samples")
        self._check_switches(action_space)  # a bad switch fails now, not millions of samples in
        self.agent = agent = AWRAgent(self.observation_space, action_space, config)
        self.buffer = EpisodeBuffer(None if dataset is not None else config.buffer_size)
        self.iteration, self.samples, wall_offset, self.best = 0, 0, 0.0, None
        self.refill_until = 0  # while samples are below it the buffer refills and the networks stay as they are
        if dataset is not None:
            self.buffer.add(load_dataset(dataset, self.observation_space.shape[0], agent.action, env_id))
            if state is None:  # the whole dataset sets the normaliser, which then stays fixed
                agent.normalizer.record(self.buffer.flat().observations)
                agent.normalizer.update()
        if state is None and config.init_from is not None:  # after the dataset: the policy keeps its normaliser
            agent.load_networks(_initial_networks(Path(config.init_from), self.observation_space, action_space, config))
            fresh = config.init_actor_output == "fresh"
            if fresh:
                with torch.random.fork_rng():  # the run's own random stream stays as without a warm start
                    torch.manual_seed(config.seed)
                    agent.actor.init_output(config.actor_init_output_scale)
            print(f"{name}: begins from the networks of {config.init_from}"
                  + (" with a fresh actor output layer" if fresh else ""))
        if state is not None:
            agent.load_state_dict(state["agent"])  # then the config's optimiser and normaliser settings apply
            torch.set_rng_state(state["torch_rng"])
            if dataset is None:
                self.buffer.add(buffer_from_dict(state["buffer"]))
            self.iteration, self.samples, wall_offset = state["iteration"], state["samples"], state["wall_time"]
            self.refill_until = self._refill_until(state)
            if self.refill_until > self.samples < config.samples and state.get("buffer") is None:
                print(f"{name}: its checkpoint holds no replay buffer: the next {config.buffer_size} samples refill "
                      "it before the networks are updated again (--set refill_on_resume=false updates at once)")
            # test returns in a changed env are not comparable with the old env's best: the best starts again
            self.best = None if state.get("env_changed") else state.get("best_test_return")
        # overlap_collection: the policy (from before the last update) that collects the next iteration, and
        # whether the workers have begun
        self.next_policy = policy_from_dict(state.get("next_collection_policy")) \
            if state is not None and config.overlap_collection else None
        self.collection_started = False

        out_dir.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()  # a new run's directory exists from here
        if state is not None and state.get("env_changed") and self.best_path.exists():  # kept, not overwritten
            kept = out_dir / f"{name}-before-iteration-{self.iteration}.pt"
            atomic_write_bytes(kept, self.best_path.read_bytes())
            notes.append(f"the best policy so far kept as {kept.name}")
        config_text = yaml.safe_dump({"env_id": env_id, "env_kwargs": env_kwargs, "dataset": _path_str(dataset),
                                      **config_to_dict(config)}, sort_keys=False)
        atomic_write_text(out_dir / "config.yaml", config_text)
        if notes:
            line = f"iteration {self.iteration} ({self.samples} samples): {'; '.join(notes)}\n"
            history = out_dir / "settings_changes.txt"
            recorded = history.read_text() if history.exists() else ""
            # a resume stopped before its first checkpoint applies the same changes again when rerun: noted once
            if not recorded.endswith(line):
                atomic_write_text(history, recorded + line)
            print(f"{name}: resuming with {'; '.join(notes)}")
        self.last_row = state.get("last_row") if state else None  # the last finished iteration's progress row
        self.log = ProgressLog(out_dir / "progress.csv", self.iteration, self.last_row)
        self.writer = _tensorboard(out_dir, purge_step=self.samples)
        self.result = TrainResult(out_dir=out_dir, name=name, iteration=self.iteration, samples=self.samples,
                                  best_test_return=self.best, test_episodes=config.eval_episodes,
                                  horizon=self.horizon)
        self.rollouts = None
        from tqdm import tqdm
        self.bar = tqdm(total=config.samples, initial=min(self.samples, config.samples), unit="samples",
                        disable=not progress, dynamic_ncols=True, desc=name)
        self.start = time.perf_counter() - wall_offset
        # numpy's BLAS too (the minibatch steps run in numpy): with its default of a thread per core it spun against
        # the rollout workers and made each step 4-5x slower (docs/benchmarks.md)
        self.blas_limits = threadpool_limits(limits=config.effective_torch_threads, user_api="blas")

    def open_rollouts(self, ray_address: str | None) -> None:
        if self.dataset is None or self.config.eval_episodes > 0:
            self.rollouts = make_rollouts(self.env_id, self.env_kwargs, self.config, ray_address, self.bar.write)

    def iterate(self) -> None:
        """One iteration: collect, update, test, checkpoint, log."""
        t0 = time.perf_counter()
        restarts_before = self.rollouts.restarts if self.rollouts is not None else 0
        row: dict = {"iteration": self.iteration}
        new_samples = self.collect(row)
        if not self.test_due(self.samples + new_samples):  # the test episodes need the workers
            self.start_next_collection(self.samples + new_samples)
        t1 = time.perf_counter()
        stats = self.update(new_samples)
        t2 = time.perf_counter()
        evaluated = self.test(row)
        self.start_next_collection(self.samples)
        t3 = time.perf_counter()

        self.iteration += 1
        row.update(stats)
        row["worker_restarts"] = (self.rollouts.restarts if self.rollouts is not None else 0) - restarts_before
        row.update(samples=self.samples, wall_time=t3 - self.start, rollout_seconds=t1 - t0, update_seconds=t2 - t1,
                   eval_seconds=t3 - t2,
                   samples_per_second=new_samples / (t3 - t0) if self.dataset is None else None)
        self.check_finite(row)  # before the checkpoints: a diverged iteration never replaces a good one
        improved = evaluated and (self.best is None or row["test_return"] > self.best)
        if improved:
            self.best = self.result.best_test_return = row["test_return"]
        row = {k: _fmt(v) for k, v in row.items()}
        self.save_checkpoints(self.checkpoint(row, wall_time=t3 - self.start), improved,
                              keep=self.keep_due(self.samples - new_samples, self.samples))
        self.last_row = row
        row["checkpoint_seconds"] = _fmt(time.perf_counter() - t3)
        self.log_row(row)
        self.result.iteration, self.result.samples = self.iteration, self.samples

    def check_finite(self, row: dict) -> None:
        """Stop the run with one line when a return, a loss, a weight statistic or a network weight is NaN or
        infinite (a diverged update): the last good checkpoints stay as they are."""
        bad = [key for key in ("train_return", "test_return", "critic_loss", "actor_loss", "adv_mean", "adv_std",
                               "weight_mean", "weight_min", "weight_max")
               if isinstance(row.get(key), (float, np.floating)) and not np.isfinite(row[key])]
        for part in ("actor", "critic", "actor_average"):
            network = getattr(self.agent, part)
            if network is not None and any(not torch.isfinite(t).all() for t in network.state_dict().values()):
                bad.append(f"{part} network weights")
        if bad:
            done = self.iteration - 1
            kept = f"{self.last_path} ({done} iterations)" if self.last_path.exists() else "no checkpoint"
            raise CharctlError(f"iteration {self.iteration - 1}: non-finite {', '.join(bad)}; training stopped and "
                               f"{kept} is kept; lower the learning rates (--resume --set actor_lr=...) to go on")

    def collect(self, row: dict) -> int:
        """New episodes into the replay buffer (none from a static dataset); returns the new sample count."""
        config = self.config
        if self.dataset is not None:
            return config.samples_per_iter
        if not self.collection_started:
            policy = self.next_policy if self.next_policy is not None else self.agent.policy()
            self.rollouts.start_collect(policy, config.samples_per_iter, self.iteration)
        episodes = self.rollouts.finish_collect()
        self.collection_started = False
        new_samples = sum(len(e) for e in episodes)
        if config.on_policy:
            self.buffer.clear()
        self.buffer.add(episodes)
        self.record_observations(episodes)
        returns = np.array([e.total_reward for e in episodes])
        row.update(train_return=float(np.mean(returns)), train_episodes=len(episodes),
                   train_episode_length=new_samples / len(episodes))
        if self.horizon:
            row["train_normalized_return"] = float(np.mean(returns)) / self.horizon
        # the next iteration is collected with the policy from before this iteration's update, whenever the
        # workers begin it
        self.next_policy = self.agent.policy() if config.overlap_collection else None
        return new_samples

    def start_next_collection(self, samples: int) -> None:
        """With overlap_collection, have the workers begin the next iteration (once; not past the budget): before
        the update, so that they run while the learner fits, or after the test episodes."""
        if self.next_policy is None or self.collection_started or samples >= self.config.samples:
            return
        self.rollouts.start_collect(self.next_policy, self.config.samples_per_iter, self.iteration + 1)
        self.collection_started = True

    def record_observations(self, episodes: list) -> None:
        """The observation normaliser sees whole episodes until `normalizer_samples`, then stays frozen (as the
        reference records); its first statistics are set from the first iteration, before any update."""
        seen = self.samples
        for episode in episodes:
            if seen < self.config.normalizer_samples:
                self.agent.normalizer.record(episode.observations)
                self.agent.normalizer.record(episode.final_observation)
            seen += len(episode)
        if self.iteration == 0:
            self.agent.normalizer.update()

    def _refill_until(self, state: dict) -> int:
        """The samples up to which a resumed run refills its replay buffer before updating: buffer_size more from a
        checkpoint without one, and a run stopped while refilling goes on with it."""
        config = self.config
        if not config.refill_on_resume or config.on_policy or self.dataset is not None:
            return 0
        if state.get("buffer") is None:
            return self.samples + config.buffer_size
        return int(state.get("refill_until") or 0)

    def update(self, new_samples: int) -> dict:
        """One AWR update on the buffer, then the normaliser folds in this iteration's records (no-op once frozen);
        while the buffer refills after a resume, the networks and their mean stay as they are."""
        refilling = self.samples < self.refill_until
        stats = {"critic_steps": 0, "actor_steps": 0, "buffer_samples": len(self.buffer)} if refilling else \
            self.agent.update(self.buffer, new_samples)
        self.agent.normalizer.update()
        self.samples += new_samples
        if not refilling:
            self.agent.update_average(self.samples, new_samples)
        return stats

    def test(self, row: dict) -> bool:
        """Deterministic test episodes every `eval_every` iterations and at the end; whether they ran."""
        config = self.config
        evaluated = self.test_due(self.samples)
        if evaluated:
            test_returns, test_lengths = self.rollouts.evaluate(self.agent.policy(averaged=True),
                                                                config.eval_episodes)
            row.update(test_return=float(np.mean(test_returns)), test_return_std=float(np.std(test_returns)),
                       test_episode_length=float(np.mean(test_lengths)))
            if self.horizon:
                row["test_normalized_return"] = row["test_return"] / self.horizon
            self.result.test_returns.append((self.samples, row["test_return"]))
        return evaluated

    def test_due(self, samples: int) -> bool:
        """Whether this iteration ends with test episodes, once `samples` have been collected."""
        config = self.config
        return config.eval_episodes > 0 and (
            (config.eval_every > 0 and self.iteration % config.eval_every == 0) or samples >= config.samples)

    def checkpoint(self, row: dict, wall_time: float) -> dict:
        """Everything to resume the run or play its policy (charctl/awr/checkpoint.py lists the contents)."""
        config, agent = self.config, self.agent
        keep_buffer = self.dataset is None and config.checkpoint_buffer
        return {
            "format": FORMAT, "env_id": self.env_id, "env_kwargs": self.env_kwargs, "config": config_to_dict(config),
            "observation_size": int(self.observation_space.shape[0]), "action": agent.action.to_dict(),
            "iteration": self.iteration, "samples": self.samples, "wall_time": wall_time,
            "agent": agent.state_dict(), "torch_rng": torch.get_rng_state(), "best_test_return": self.best,
            "buffer": buffer_to_dict(self.buffer.episodes()) if keep_buffer else None,
            "dataset": _path_str(self.dataset), "last_row": row,
            "next_collection_policy": policy_to_dict(self.next_policy), "switches_made": self.switches_made,
            "refill_until": self.refill_until if self.samples < self.refill_until else None,
        }

    def due_switch(self) -> int | None:
        """The first switch not made yet whose samples the run has reached."""
        return next((at for at in self.config.switches if at <= self.samples and at not in self.switches_made), None)

    def save_last(self) -> None:
        """The last checkpoint rewritten with the run's settings as they are now (same iteration, same state)."""
        save_checkpoint(self.last_path, self.checkpoint(self.last_row, wall_time=time.perf_counter() - self.start))

    def _check_switches(self, action_space) -> None:
        """Every switch still to come: its env settings valid for this task and keeping the observation and action
        sizes (the AWR settings were checked with the config)."""
        for at, settings in self.config.switches.items():
            _, env_settings = split_env_settings(settings)
            if at in self.switches_made or not env_settings:
                continue
            where = f"switches: {at}"
            probe = make_env(self.env_id, switched_env(self.env_id, self.env_kwargs, env_settings, where))
            try:
                same = probe.observation_space.shape == self.observation_space.shape \
                    and probe.action_space == action_space
            finally:
                probe.close()
            if not same:
                raise CharctlError(f"{where}: {', '.join(_flatten(env_settings, ENV_PREFIX))} would change the "
                                   "observation or the actions; a switch keeps their sizes")

    def keep_due(self, before: int, after: int) -> bool:
        """Whether an iteration that took the run from `before` to `after` samples passed a multiple of
        keep_every (so a resume, or a keep_every changed on one, never keeps a mark twice nor skips one)."""
        every = self.config.keep_every
        return every > 0 and after // every > before // every

    def kept_path(self) -> Path:
        return self.out_dir / "marks" / f"{self.name}-{self.samples}.pt"

    def save_checkpoints(self, checkpoint: dict, improved: bool, keep: bool = False) -> None:
        if improved:  # the best policy first: a kill between the writes never loses it
            save_checkpoint(self.best_path, {**checkpoint, "buffer": None})
        if keep:
            save_checkpoint(self.kept_path(), {**checkpoint, "buffer": None})
        save_checkpoint(self.last_path, checkpoint)

    def log_row(self, row: dict) -> None:
        """progress.csv, TensorBoard and the progress bar."""
        self.log.append(row)
        for key in COLUMNS[3:]:
            if row.get(key):
                self.writer.add_scalar(f"awr/{key}", float(row[key]), self.samples)
        self.bar.update(min(self.samples, self.config.samples) - self.bar.n)
        self.bar.set_postfix(_postfix(row, self.result, self.horizon), refresh=False)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
        if self.rollouts is not None:
            self.rollouts.close()
        self.blas_limits.restore_original_limits()


def make_rollouts(env_id: str, env_kwargs: dict, config: AWRConfig, ray_address: str | None, log):
    if ray_address is None:
        return Rollouts(env_id, env_kwargs, config.num_workers, config.seed, timeout=config.worker_timeout)
    from charctl.awr.ray_rollout import RayRollouts

    return RayRollouts(env_id, env_kwargs, config.num_workers, config.seed, ray_address, log=log)


def _postfix(row: dict, result: TrainResult, horizon: int | None) -> dict:
    """Progress-bar fields, named for what they are: samples/s, the mean return of this iteration's training
    episodes (exploring) and of the last deterministic test, normalised (sum of rewards / full-episode steps) when
    the task has a horizon, raw otherwise."""
    test = result.final_test_return
    speed = {"samples/s": _short(row.get("samples_per_second", ""))}
    if horizon:
        return {**speed, "train return (normalised)": _short(row.get("train_normalized_return", "")),
                "test return (normalised)": _short(_fmt(test / horizon if test is not None else None))}
    return {**speed, "train return": _short(row.get("train_return", "")), "test return": _short(_fmt(test))}


def _short(text: str) -> str:
    """A logged number to 3 significant figures (whole above 1000) for the bar; progress.csv keeps 6."""
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _path_str(path) -> str | None:
    return None if path is None else str(path)
