"""Learning curves from run directories (progress.csv + config.yaml), grouped by task: median and spread."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from charctl.util.errors import CharctlError


@dataclass
class Run:
    path: Path
    task: str                 # runs of the same task (seeds) are drawn as one group
    samples: np.ndarray       # at each test evaluation
    wall_time: np.ndarray     # seconds
    returns: np.ndarray       # test return, normalised for imitation tasks
    normalized: bool


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
        rows = [r for r in csv.DictReader(f) if r.get("test_return")]
    if not rows:
        raise CharctlError(f"{progress}: no evaluated iterations yet")
    normalized = bool(rows[0].get("test_normalized_return"))
    key = "test_normalized_return" if normalized else "test_return"
    return Run(path=run_dir, task=task, samples=np.array([float(r["samples"]) for r in rows]),
               wall_time=np.array([float(r["wall_time"]) for r in rows]),
               returns=np.array([float(r[key]) for r in rows]), normalized=normalized)


def group_curve(runs: list[Run], x: str, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grid, median, low, high) over the runs on a shared grid; each point uses the runs that reach it."""
    xs = [getattr(r, x) for r in runs]
    grid = np.linspace(min(v[0] for v in xs), max(v[-1] for v in xs), points)
    values = np.stack([np.where((grid >= v[0]) & (grid <= v[-1]), np.interp(grid, v, r.returns), np.nan)
                       for v, r in zip(xs, runs)])
    covered = ~np.all(np.isnan(values), axis=0)
    values, grid = values[:, covered], grid[covered]
    return grid, np.nanmedian(values, axis=0), np.nanmin(values, axis=0), np.nanmax(values, axis=0)


def plot_runs(run_dirs: list[str | Path], out: str | Path, title: str | None = None) -> list[Run]:
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
        ylabel = "normalised return" if members[0].normalized else "test return"
        for ax, x, scale, xlabel in ((axes[row, 0], "samples", 1e6, "samples (millions)"),
                                     (axes[row, 1], "wall_time", 60.0, "wall time (minutes)")):
            single = len(members) == 1
            for run in members:
                ax.plot(getattr(run, x) / scale, run.returns, color=color, alpha=1.0 if single else 0.4,
                        linewidth=1.5 if single else 0.8, marker=".", markersize=3)
            if len(members) > 1:
                grid, median, low, high = group_curve(members, x)
                ax.plot(grid / scale, median, color=color, linewidth=2, label=f"median of {len(members)} runs")
                ax.fill_between(grid / scale, low, high, color=color, alpha=0.15, label="min-max")
                ax.legend(fontsize=8)
            ax.set(xlabel=xlabel, ylabel=f"{ylabel} (deterministic)", title=task)
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format=out.suffix[1:])
    plt.close(fig)
    return runs
