"""charctl plot: the curve against the task's no-policy baseline and the paper, from 0, its axis labelled."""

import csv
import json

import numpy as np
import pytest
import yaml

from charctl.envs.config import config_to_dict, load_env_config
from charctl.play.curves import PAPER_RETURNS, plot_runs
from charctl.util.errors import CharctlError


def synthetic_run(path, returns, time_limit=3.0):
    path.mkdir(parents=True)
    settings = config_to_dict(load_env_config("dog", "trot", {"time_limit": time_limit}))
    (path / "config.yaml").write_text(yaml.safe_dump(
        {"env_id": "charctl/Imitate-v0", "env_kwargs": {"character": "dog", "motion": "trot", "config": settings},
         "dataset": None}))
    with open(path / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["iteration", "samples", "wall_time", "test_return",
                                               "test_normalized_return"])
        writer.writeheader()
        for i, value in enumerate(returns):
            writer.writerow({"iteration": i, "samples": 2048 * (i + 1), "wall_time": 30.0 * (i + 1),
                             "test_return": value * 90, "test_normalized_return": value})
    return path


def lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}


def test_plot_draws_baseline_and_paper_lines_on_an_axis_from_zero(tmp_path):
    # a curve wobbling in a 0.006-wide band, as a short run does
    run = synthetic_run(tmp_path / "dog_trot-s0", [0.120, 0.123, 0.118, 0.124, 0.121])
    figures = []
    plot_runs([run], tmp_path / "curves.png", figure=figures)
    assert (tmp_path / "curves.png").stat().st_size > 0
    baseline = float(__import__("json").loads((run / "reference_pd.json").read_text())["normalized_return"])
    assert 0.0 < baseline < 0.5  # reference PD falls within a second of a 3 s episode
    for ax in figures[0].axes:
        low, high = ax.get_ylim()
        assert low == 0.0 and high >= 1.2 * max(0.124, baseline, PAPER_RETURNS["dog_trot"]) - 1e-9
        lines = lines_by_gid(ax)
        assert np.allclose(lines["baseline"].get_ydata(), baseline) and lines["baseline"].get_linestyle() == "--"
        assert np.allclose(lines["paper"].get_ydata(), 0.86) and lines["paper"].get_linestyle() == ":"
        assert "normalised test return" in ax.get_ylabel() and "deterministic" in ax.get_ylabel()
        assert "90-step episodes" in ax.get_ylabel()
    # the baseline is cached in the run directory: a second plot does not measure it again
    (run / "reference_pd.json").write_text((run / "reference_pd.json").read_text().replace(
        f'"normalized_return": {baseline}', '"normalized_return": 0.25'))
    figures = []
    plot_runs([run], tmp_path / "again.png", figure=figures)
    assert np.allclose(lines_by_gid(figures[0].axes[0])["baseline"].get_ydata(), 0.25)


def test_a_bench_learn_run_is_drawn_from_its_held_out_marks(tmp_path):
    """`charctl bench learn` trains without test evaluations; its marks' held-out returns are the curve."""
    run = synthetic_run(tmp_path / "dog_trot-s0", [])
    with open(run / "progress.csv", "a", newline="") as f:
        csv.writer(f).writerows([[0, 50_000, 100.0, "", ""], [1, 100_400, 200.0, "", ""], [2, 200_900, 420.0, "", ""]])
    (run / "marks").mkdir()
    for samples, value in ((200_900, 0.031), (100_400, 0.022)):
        (run / "marks" / f"{samples // 1000 * 1000}.json").write_text(
            json.dumps({"samples": samples, "normalized_return": value, "episodes": 16}))
    figures = []
    (drawn,) = plot_runs([run], tmp_path / "curves.png", figure=figures)
    np.testing.assert_array_equal(drawn.samples, [100_400, 200_900])
    np.testing.assert_array_equal(drawn.returns, [0.022, 0.031])
    np.testing.assert_allclose(drawn.wall_time, [200.0, 420.0])  # the wall time of the iteration that saved it
    assert "held-out starts" in figures[0].axes[0].get_ylabel() and "16 per mark" in figures[0].axes[0].get_ylabel()
    (run / "marks" / "300000.json").write_text('{"samples": 300000}')
    with pytest.raises(CharctlError, match="300000.json: not a held-out mark"):
        plot_runs([run], tmp_path / "again.png")
