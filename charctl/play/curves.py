"""Learning curves from run directories (progress.csv + config.yaml), grouped by task: median and spread, against
the task's no-policy baseline and the AWR paper's result. A run trained without test evaluations by `charctl bench
learn` is drawn from its marks' held-out evaluations (marks/*.json) instead."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from charctl.util.errors import CharctlError

# The AWR paper's normalised returns (Peng et al. 2019, Table 2, AWR column) for the five imitation tasks.
PAPER_RETURNS = {"humanoid_cartwheel": 0.78, "humanoid_spinkick": 0.77, "dog_canter": 0.86, "dog_trot": 0.86,
                 "dog_turn": 0.82}
BASELINE_EPISODES = 8  # reference PD falls within ~1 s, so 8 episodes take a second or two
BASELINE_CACHE = "reference_pd.json"


@dataclass
class Run:
    path: Path
    task: str                 # runs of the same task (seeds) are drawn as one group
    samples: np.ndarray       # at each test evaluation
    wall_time: np.ndarray     # seconds
    returns: np.ndarray       # test return, normalised for imitation tasks
    normalized: bool
    env_id: str = ""
    env_kwargs: dict | None = None
    horizon: int | None = None  # control steps of a full test episode (imitation tasks)
    held_out_episodes: int | None = None  # set when the points are bench learn's held-out marks, not test returns


def read_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    progress, config_path = run_dir / "progress.csv", run_dir / "config.yaml"
    if not progress.exists() or not config_path.exists():
        raise CharctlError(f"{run_dir}: not a run directory (needs progress.csv and config.yaml from charctl train)")
    config = yaml.safe_load(config_path.read_text()) or {}
    kwargs = config.get("env_kwargs") or {}
    task = f"{kwargs['character']}_{kwargs['motion']}" if "character" in kwargs else str(config.get("env_id"))
    if config.get("dataset"):
        task += " (offline)"
    with open(progress, newline="") as f:
        progress_rows = list(csv.DictReader(f))
    common = dict(path=run_dir, task=task, env_id=str(config.get("env_id")), env_kwargs=kwargs or None,
                  horizon=_horizon(kwargs))
    rows = [r for r in progress_rows if r.get("test_return")]
    if rows:
        normalized = bool(rows[0].get("test_normalized_return"))
        key = "test_normalized_return" if normalized else "test_return"
        return Run(samples=np.array([float(r["samples"]) for r in rows]),
                   wall_time=np.array([float(r["wall_time"]) for r in rows]),
                   returns=np.array([float(r[key]) for r in rows]), normalized=normalized, **common)
    marks = sorted((_read_mark(path) for path in run_dir.glob("marks/*.json")), key=lambda m: m["samples"])
    if not marks or not progress_rows:
        raise CharctlError(f"{progress}: no evaluated iterations yet (and no held-out marks in {run_dir / 'marks'})")
    samples = np.array([float(m["samples"]) for m in marks])
    # each mark is the policy saved at an iteration's end: its wall time is that iteration's
    trained = np.array([float(r["samples"]) for r in progress_rows])
    wall = np.array([float(r["wall_time"]) for r in progress_rows])
    return Run(samples=samples, wall_time=np.interp(samples, trained, wall),
               returns=np.array([float(m["normalized_return"]) for m in marks]), normalized=True,
               held_out_episodes=int(marks[0]["episodes"]), **common)


def _read_mark(path: Path) -> dict:
    """One held-out evaluation written by `charctl bench learn`."""
    try:
        mark = json.loads(path.read_text())
        float(mark["samples"]), float(mark["normalized_return"]), int(mark["episodes"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CharctlError(f"{path}: not a held-out mark from charctl bench learn ({error})") from None
    return mark


def _horizon(env_kwargs: dict) -> int | None:
    settings = (env_kwargs or {}).get("config") or {}
    sim = settings.get("sim") or {}
    if "time_limit" not in settings:
        return None
    return int(round(settings["time_limit"] * sim.get("control_hz", 30.0)))


def reference_baseline(run: Run, episodes: int = BASELINE_EPISODES) -> float | None:
    """The task's no-policy baseline for an imitation run: the mean normalised return of PD targets taken
    straight from the clip (charctl.play.evaluation.evaluate_reference_pd) in the run's own env settings, over
    `episodes` held-out starts. Cached in the run directory (reference_pd.json) with the settings it used."""
    if not run.normalized or not run.env_kwargs or "character" not in run.env_kwargs:
        return None
    from charctl.play.evaluation import cached_reference_pd

    return float(cached_reference_pd(run.path / BASELINE_CACHE, run.env_id, run.env_kwargs,
                                     episodes)["normalized_return"])


def group_curve(runs: list[Run], x: str, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grid, median, low, high) over the runs on a shared grid; each point uses the runs that reach it."""
    xs = [getattr(r, x) for r in runs]
    grid = np.linspace(min(v[0] for v in xs), max(v[-1] for v in xs), points)
    values = np.stack([np.where((grid >= v[0]) & (grid <= v[-1]), np.interp(grid, v, r.returns), np.nan)
                       for v, r in zip(xs, runs)])
    covered = ~np.all(np.isnan(values), axis=0)
    values, grid = values[:, covered], grid[covered]
    return grid, np.nanmedian(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


def plot_runs(run_dirs: list[str | Path], out: str | Path, title: str | None = None, figure: list | None = None
              ) -> list[Run]:
    """Draw the runs' curves into `out`; `figure`, when given, receives the matplotlib Figure (for tests)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from charctl.util.fileio import atomic_path

    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CharctlError(f"--out {out}: pictures are .png, .svg or .pdf")
    runs = [read_run(d) for d in run_dirs]
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.task, []).append(run)
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 3.6 * len(groups)), constrained_layout=True,
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10
    for row, ((task, members), color) in enumerate(zip(groups.items(), colors)):
        first = members[0]
        episode = f"{first.horizon}-step episodes" if first.horizon else "full episodes"
        if first.held_out_episodes:
            ylabel = f"normalised return, held-out starts\n({first.held_out_episodes} per mark, {episode})"
        elif first.normalized:
            ylabel = f"normalised test return\n(deterministic, {episode})"
        else:
            ylabel = "test return (deterministic)"
        baseline = reference_baseline(first)
        paper = PAPER_RETURNS.get(task) if first.normalized else None
        for ax, x, scale, xlabel in ((axes[row, 0], "samples", 1e6, "samples (millions)"),
                                     (axes[row, 1], "wall_time", 60.0, "wall time (minutes)")):
            single = len(members) == 1
            for run in members:
                ax.plot(getattr(run, x) / scale, run.returns, color=color, alpha=1.0 if single else 0.4,
                        linewidth=1.5 if single else 0.8, marker=".", markersize=3,
                        label=run.path.name if single else None)
            if len(members) > 1:
                grid, median, low, high = group_curve(members, x)
                ax.plot(grid / scale, median, color=color, linewidth=2, label=f"median of {len(members)} runs")
                ax.fill_between(grid / scale, low, high, color=color, alpha=0.15, label="min-max")
            if baseline is not None:
                ax.axhline(baseline, color="0.3", linestyle="--", linewidth=1.2,
                           label=f"no policy (reference PD) {baseline:.3f}", gid="baseline")
            if paper is not None:
                ax.axhline(paper, color="tab:green", linestyle=":", linewidth=1.5,
                           label=f"AWR paper {paper:.2f}", gid="paper")
            if first.normalized:
                # from 0, so noise around a tiny value does not fill the axis and look like progress
                top = max([float(np.max(r.returns)) for r in members] + [baseline or 0.0, paper or 0.0])
                ax.set_ylim(0.0, max(top * 1.2, 0.05))
            ax.legend(fontsize=8)
            ax.set(xlabel=xlabel, ylabel=ylabel, title=task)
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format=out.suffix[1:])
    if figure is not None:
        figure.append(fig)
    else:
        plt.close(fig)
    return runs
