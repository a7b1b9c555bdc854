"""Return per sample of training variants: `charctl bench learn CHARACTER MOTION --name VARIANT --set KEY=VALUE`.

Each variant is trained with each seed in steps to fixed sample marks; at every mark the policy of that moment
(its last checkpoint, copied to marks/MARK.pt) is evaluated as `charctl eval` does: deterministic episodes
from held-out start states, training-only terminations off, normalised return. Seeds advance mark by mark in
turn, so a run cut short still compares the variants at equal samples. Everything is resumable: a finished
mark is never redone, a half-trained one continues from its checkpoint. A variant may change settings at a mark
(`--from MARK KEY=VALUE`, a curriculum): its runs continue from there with them, as `charctl train --resume --set`.
A variant may start as a fork of another at one of its marks (`--fork VARIANT MARK`): each seed's run begins from
that variant's policy at the mark, with its history up to there, so a change from a late mark on costs only the
samples after it.

    OUT/VARIANT/variant.yaml           the settings that define the variant
    OUT/VARIANT/sSEED/                 a `charctl train` run directory
    OUT/VARIANT/sSEED/marks/MARK.pt    the policy at the mark; MARK.json its evaluation
    OUT/VARIANT/sSEED/forked_from.txt  a fork's origin: the run and mark it began from
    OUT/baseline.json                  reference PD (no policy) from the same starts, default env settings
    OUT/VARIANT/baseline.json          the same under the variant's env settings (a variant with env.* settings:
                                       a controller or a physics rate moves the baseline itself)
    OUT/learn.csv, OUT/learn.png       every variant's marks, side by side
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from charctl.awr.checkpoint import load_checkpoint, save_checkpoint
from charctl.envs import IMITATION_ENV_ID
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_write_text

CSV_COLUMNS = ("variant", "seed", "mark", "samples", "normalized_return", "normalized_return_std", "mean_length",
               "fall_rate", "pose", "velocity", "end_effector", "root", "com", "speed", "reference_speed",
               "heading_error_degrees", "baseline", "samples_per_second")
TERM_COLUMNS = ("pose", "velocity", "end_effector", "root", "com")


class RunStopped(KeyboardInterrupt):
    """A variant's run stopped before its mark: Ctrl-C, or SIGTERM after the iteration in flight."""

    def __init__(self, by_sigterm: bool = False):
        super().__init__()
        self.by_sigterm = by_sigterm


@dataclass
class LearnSpec:
    character: str
    motion: str
    variant: str
    overrides: dict  # flat --set keys, env.* for env settings
    seeds: list[int]
    samples: int
    every: int
    episodes: int
    workers: int | None = None
    switches: dict[int, dict] = field(default_factory=dict)  # from this many samples on, these settings as well
    fork: tuple[str, int] | None = None  # (variant, mark): each seed begins from that variant's policy at the mark

    def __post_init__(self):
        _check_switches(self)
        if self.fork is not None:
            parent, at = self.fork
            if parent == self.variant:
                raise CharctlError(f"--fork {parent} {at}: a variant cannot fork itself")
            if at not in self.marks[:-1]:
                raise CharctlError(f"--fork {parent} {at}: forks begin at an evaluation mark before --samples "
                                   f"{self.samples} (marks: {', '.join(map(str, self.marks))})")

    @property
    def marks(self) -> list[int]:
        marks = list(range(self.every, self.samples + 1, self.every))
        return marks if marks and marks[-1] == self.samples else marks + [self.samples]

    def settings_to(self, mark: int) -> dict:
        """The settings that train the samples up to `mark` from the mark before it: --set, then every switch at
        or before that earlier mark."""
        settings = dict(self.overrides)
        for at in sorted(self.switches):
            if at < mark:
                settings.update(self.switches[at])
        return settings


def _check_switches(spec: LearnSpec) -> None:
    """A switch lands on an evaluation mark, so each mark's training has one set of settings, and its settings are
    checked before anything trains."""
    from argparse import Namespace

    from charctl.awr.config import FIXED_ON_RESUME, load_config, split_env_settings
    from charctl.commands.train import resolve

    for at, settings in spec.switches.items():
        fixed = sorted(set(settings) & set(FIXED_ON_RESUME))
        if fixed:
            raise CharctlError(f"--from {at} {fixed[0]}=...: a run keeps its {fixed[0]} from its start; "
                               "set it with --set")
        if at not in spec.marks and at % spec.every:  # past --samples it waits for a longer budget
            raise CharctlError(f"--from {at}: settings change at an evaluation mark, a multiple of --every "
                               f"{spec.every} (marks: {', '.join(map(str, spec.marks))})")
        awr_settings, env_settings = split_env_settings(spec.settings_to(at + 1))
        resolve(Namespace(character=spec.character, target=spec.motion), env_settings)
        load_config(None, None, awr_settings, character=spec.character, motion=spec.motion)


def _variant_file(out: Path, spec: LearnSpec) -> None:
    """A variant's settings are fixed by its first run; the same name with other settings is refused."""
    path = out / spec.variant / "variant.yaml"
    wanted = _variant_settings(spec)
    if path.exists():
        saved = yaml.safe_load(path.read_text())
        if saved != wanted:
            raise CharctlError(f"{path}: variant '{spec.variant}' was started with {saved}; "
                               f"name this one differently (asked: {wanted})")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(wanted, sort_keys=False))


def _variant_settings(spec: LearnSpec) -> dict:
    settings = {"character": spec.character, "motion": spec.motion, "set": dict(sorted(spec.overrides.items()))}
    if spec.switches:  # absent for a variant without switches, so files written before switches existed still match
        settings["from"] = {at: dict(sorted(spec.switches[at].items())) for at in sorted(spec.switches)}
    if spec.fork is not None:
        settings["fork"] = {"variant": spec.fork[0], "mark": spec.fork[1]}
    return settings


def check_fork(out: Path, spec: LearnSpec) -> None:
    """A fork is its parent up to the mark: the same --set and the same switches before it, so the variant's
    settings say what trained every sample behind its marks."""
    parent, at = spec.fork
    path = out / parent / "variant.yaml"
    try:
        saved = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise CharctlError(f"--fork {parent} {at}: no variant '{parent}' in {out} ({path} not found)") from None
    except yaml.YAMLError as error:
        raise CharctlError(f"{path}: not a variant file ({error})") from None
    ours = _variant_settings(spec)
    before = {mark: settings for mark, settings in ours.get("from", {}).items() if mark < at}
    theirs = {mark: settings for mark, settings in (saved.get("from") or {}).items() if mark < at}
    if (saved.get("character"), saved.get("motion"), saved.get("set")) != (spec.character, spec.motion, ours["set"]) \
            or before != theirs:
        raise CharctlError(f"--fork {parent} {at}: {path} has {saved}; a fork keeps its parent's --set and its "
                           f"--from before the mark (asked: {ours})")
    for seed in spec.seeds:  # every seed's origin is there before anything is written
        policy = out / parent / f"s{seed}" / "marks" / f"{at}.pt"
        if not (out / spec.variant / f"s{seed}").exists() and not policy.exists():
            raise CharctlError(f"{policy}: no policy to fork from; run variant '{parent}' with seed {seed} to {at} "
                               "first")


def _fork_run(out: Path, spec: LearnSpec, seed: int) -> None:
    """Begin the seed's run from the parent's policy at the fork's mark: its config, progress and settings changes
    up to that iteration, its marks' results up to the mark, and the policy as the last checkpoint (without a
    replay buffer: it refills). Built in a temporary folder and renamed, so a half-copied fork is never a run."""
    from charctl.awr.trainer import ProgressLog

    parent, at = spec.fork
    run_dir, source = out / spec.variant / f"s{seed}", out / parent / f"s{seed}"
    policy = source / "marks" / f"{at}.pt"
    lasts = sorted(source.glob("*-last.pt"))
    if not lasts or not (source / "config.yaml").exists():
        raise CharctlError(f"{source}: not a run directory to fork from (needs config.yaml and a -last checkpoint)")
    state = load_checkpoint(policy)
    iteration = int(state["iteration"])  # iterations done: changes from this one on are the parent's own
    building = run_dir.with_name(run_dir.name + ".forking")
    shutil.rmtree(building, ignore_errors=True)
    (building / "marks").mkdir(parents=True)
    shutil.copy2(source / "config.yaml", building / "config.yaml")
    if (source / "progress.csv").exists():  # its rows to the mark, as a resume from that checkpoint keeps them
        ProgressLog(source / "progress.csv", iteration, state.get("last_row")).write(building / "progress.csv")
    if (source / "settings_changes.txt").exists():
        changes = [line for line in (source / "settings_changes.txt").read_text().splitlines(keepends=True)
                   if (found := re.match(r"iteration (\d+)", line)) and int(found.group(1)) < iteration]
        (building / "settings_changes.txt").write_text("".join(changes))
    for result in source.glob("marks/*.json"):
        if int(result.stem) <= at:
            shutil.copy2(result, building / "marks" / result.name)
    shutil.copy2(policy, building / "marks" / policy.name)
    save_checkpoint(building / lasts[0].name, {**state, "buffer": None})
    (building / "forked_from.txt").write_text(f"{source} at mark {at} ({state['samples']} samples, "
                                             f"{iteration} iterations)\n")
    os.replace(building, run_dir)


def _train_to(spec: LearnSpec, seed: int, mark: int, run_dir: Path) -> Path:
    """Train (or continue) the seed's run until `mark` samples; returns its last checkpoint."""
    from argparse import Namespace

    from charctl.awr.config import load_config, split_env_settings
    from charctl.awr.trainer import last_checkpoint_path, train
    from charctl.commands.train import on_saved_env, resolve

    awr_overrides, env_overrides = split_env_settings(spec.settings_to(mark))
    env_id, env_kwargs, name = resolve(Namespace(character=spec.character, target=spec.motion), env_overrides)
    overrides = {**awr_overrides, "samples": mark, "seed": seed, "keep_every": 0}  # it keeps marks/MARK.pt itself
    if spec.workers is not None:
        overrides["num_workers"] = spec.workers
    config = load_config(None, None, overrides, character=env_kwargs["character"], motion=spec.motion)
    last = last_checkpoint_path(run_dir, name)
    # a resumed run keeps its saved settings: the next mark's budget, a worker count and the settings of a switch
    # are changes to it (the variant's other settings are already the saved ones)
    changes = {key: value for key, value in overrides.items() if key != "seed"}
    result = train(env_id, env_kwargs, config, run_dir, resume=last.exists(), progress=False, name=name,
                   changes=changes, resumed_env=on_saved_env(env_kwargs, env_overrides))
    if result.interrupted:
        raise RunStopped(by_sigterm=result.stopped_by_sigterm)
    return last


def _evaluate(checkpoint: Path, episodes: int) -> dict:
    """The mark's held-out evaluation, on as many processes as its run collects with (the same numbers as in one)."""
    from charctl.play.evaluation import evaluate
    from charctl.play.policy_file import open_policy

    task = open_policy(checkpoint)
    env = task.make_env(evaluation=True)
    try:
        summary = evaluate(env, task.policy, episodes, workers=task.config.num_workers).summary()
    finally:
        env.close()
    return {"samples": task.samples, **summary}


def baseline(out: Path, character: str, motion: str, episodes: int) -> dict:
    """Reference PD from the evaluation's start states, measured once per output folder (and episode count)."""
    from charctl.play.evaluation import cached_reference_pd

    return cached_reference_pd(out / "baseline.json", IMITATION_ENV_ID, {"character": character, "motion": motion},
                               episodes)


def variant_baseline(out: Path, spec: LearnSpec) -> dict | None:
    """Reference PD under the variant's env settings, as its marks are evaluated (the training-only settings off),
    in OUT/VARIANT/baseline.json; None for a variant without env settings (OUT/baseline.json is its)."""
    from charctl.awr.config import split_env_settings
    from charctl.envs.config import for_evaluation
    from charctl.play.evaluation import cached_reference_pd

    _, env_overrides = split_env_settings(spec.settings_to(spec.samples))  # the env the variant ends in
    if not env_overrides:
        return None
    kwargs = {"character": spec.character, "motion": spec.motion, "config": for_evaluation(env_overrides)}
    return cached_reference_pd(out / spec.variant / "baseline.json", IMITATION_ENV_ID, kwargs, spec.episodes)


def run_variant(out: Path, spec: LearnSpec, log=print) -> None:
    if spec.fork is not None:
        check_fork(out, spec)
    _variant_file(out, spec)
    variant_baseline(out, spec)
    for mark in spec.marks:
        if spec.fork is not None and mark <= spec.fork[1]:
            continue  # the parent's marks
        for seed in spec.seeds:
            run_dir = out / spec.variant / f"s{seed}"
            if spec.fork is not None and not run_dir.exists():
                _fork_run(out, spec, seed)
            result_path = run_dir / "marks" / f"{mark}.json"
            if result_path.exists():
                continue
            snapshot = run_dir / "marks" / f"{mark}.pt"
            if not snapshot.exists():
                last = _train_to(spec, seed, mark, run_dir)
                snapshot.parent.mkdir(parents=True, exist_ok=True)
                # the policy of the moment, without the replay buffer (~100 MB for the dog) that only a resume needs
                save_checkpoint(snapshot, {**load_checkpoint(last), "buffer": None})
            summary = _evaluate(snapshot, spec.episodes)
            atomic_write_text(result_path, json.dumps(summary))
            log(f"{spec.variant} seed {seed}: {summary['samples']} samples, normalised return "
                f"{summary['normalized_return']:.3f} +- {summary['normalized_return_std']:.3f} over "
                f"{summary['episodes']} held-out episodes, mean length {summary['mean_length']:.0f} steps, "
                f"fall rate {summary['fall_rate']:.2f}")


def _baseline_return(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["normalized_return"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not measured yet (or unreadable): the next run of the variant measures it


def _segment_speeds(run_dir: Path, reached: dict[int, int]) -> dict[int, float]:
    """The median of progress.csv's samples_per_second over the iterations that trained each mark's samples (`reached`:
    mark -> the samples its policy had; those past the mark before it): the speed behind that mark's return."""
    try:
        with open(run_dir / "progress.csv", newline="") as f:
            progress = [(int(row["samples"]), float(row["samples_per_second"])) for row in csv.DictReader(f)
                        if row.get("samples_per_second")]
    except (OSError, ValueError, KeyError):
        return {}
    speeds, previous = {}, 0
    for mark, samples in sorted(reached.items()):
        segment = [speed for done, speed in progress if previous < done <= samples]
        if segment:
            speeds[mark] = float(np.median(segment))
        previous = samples
    return speeds


def collect_rows(out: Path) -> list[dict]:
    """Every evaluated mark in OUT, with the baseline that applies to its variant (its own, else the folder's), and
    the training speed of the samples behind it."""
    rows, folder_baseline = [], _baseline_return(out / "baseline.json")
    summaries = {result: json.loads(result.read_text()) for result in sorted(out.glob("*/s*/marks/*.json"))}
    speeds = {run_dir: _segment_speeds(run_dir, {int(r.stem): summaries[r]["samples"] for r in summaries
                                                 if r.parents[1] == run_dir})
              for run_dir in {r.parents[1] for r in summaries}}
    for result, summary in summaries.items():
        terms = summary.get("reward_terms", {})
        variant_dir = result.parents[2]
        own = _baseline_return(variant_dir / "baseline.json")
        rows.append({"variant": variant_dir.name, "seed": int(result.parents[1].name[1:]),
                     "mark": int(result.stem), "samples": summary["samples"],
                     "normalized_return": summary["normalized_return"],
                     "normalized_return_std": summary["normalized_return_std"], "mean_length": summary["mean_length"],
                     "fall_rate": summary["fall_rate"], **{k: terms.get(k) for k in TERM_COLUMNS},
                     **{k: summary.get("pace", {}).get(k) for k in ("speed", "reference_speed")},
                     "heading_error_degrees": summary.get("heading_error_degrees"),
                     "baseline": own if own is not None else folder_baseline,
                     "samples_per_second": speeds[result.parents[1]].get(int(result.stem))})
    rows.sort(key=lambda r: (r["variant"], r["mark"], r["seed"]))
    return rows


def write_table(out: Path, rows: list[dict]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    path = out / "learn.csv"
    atomic_write_text(path, text.getvalue())
    return path


def _saved_variant(out: Path, variant: str) -> dict:
    """A variant's variant.yaml, or {} when it is missing or unreadable (the plot then draws it plainly)."""
    try:
        saved = yaml.safe_load((out / variant / "variant.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return saved if isinstance(saved, dict) else {}


def variant_switches(out: Path, variant: str) -> list[int]:
    """The marks where a curriculum variant's settings change (its variant.yaml's `from`)."""
    return sorted(int(at) for at in _saved_variant(out, variant).get("from", {}) or {})


def variant_fork(out: Path, variant: str) -> tuple[str, int] | None:
    """(parent, mark) for a variant begun as a fork (its variant.yaml's `fork`), else None."""
    fork = _saved_variant(out, variant).get("fork")
    return (str(fork["variant"]), int(fork["mark"])) if isinstance(fork, dict) else None


def drawn_rows(rows: list[dict], variant: str, fork: tuple[str, int] | None) -> list[dict]:
    """A variant's marks as its curve draws them: a fork's from its fork mark on (before it, its rows are the
    parent's own results, which the parent's curve draws)."""
    return [r for r in rows if r["variant"] == variant and (fork is None or r["mark"] >= fork[1])]


def variant_label(variant: str, rows: list[dict], switches: list[int] = (),
                  fork: tuple[str, int] | None = None) -> str:
    """The legend's name for a variant's mean curve: how many seeds each mark averages (a screen cut short has
    fewer at its last marks), where a curriculum changes its settings (drawn as dotted lines too) and, for a fork,
    where it left its parent."""
    counts = sorted({sum(r["mark"] == m for r in rows) for m in {r["mark"] for r in rows}})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    changes = f"; settings change at {', '.join(f'{at:,}' for at in switches)}" if switches else ""
    origin = f"; from {fork[0]} at {fork[1]:,}" if fork else ""
    return f"{variant} (mean of {seeds} seed{'s' if counts[-1] > 1 else ''} per mark{changes}{origin})"


def plot(out: Path, rows: list[dict], base: dict | None, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for index, variant in enumerate(sorted({r["variant"] for r in rows})):
        color = f"C{index}"
        fork = variant_fork(out, variant)
        mine = drawn_rows(rows, variant, fork)
        if not mine:
            continue
        for seed in sorted({r["seed"] for r in mine}):
            points = sorted((r["mark"], r["normalized_return"]) for r in mine if r["seed"] == seed)
            ax.plot(*zip(*points), color=color, alpha=0.35, linewidth=1)
        marks = sorted({r["mark"] for r in mine})
        means = [np.mean([r["normalized_return"] for r in mine if r["mark"] == m]) for m in marks]
        switches = variant_switches(out, variant)
        ax.plot(marks, means, color=color, linewidth=2, marker="o", markersize=3,
                label=variant_label(variant, mine, switches, fork))
        for at in switches:
            ax.axvline(at, color=color, linestyle=":", linewidth=1, alpha=0.6)
        own = mine[0]["baseline"]
        if own is not None and (base is None or abs(own - base["normalized_return"]) > 1e-9):
            ax.axhline(own, color=color, linestyle=":", linewidth=1, label=f"{variant}: reference PD ({own:.3f})")
    if base is not None:
        ax.axhline(base["normalized_return"], color="grey", linestyle="--", linewidth=1,
                   label=f"reference PD, no policy ({base['normalized_return']:.3f})")
    ax.set_xlabel("training samples")
    ax.set_ylabel("normalised return (held-out starts)")
    ax.set_title(title)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "learn.png"
    tmp = path.with_name(".learn.png.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
