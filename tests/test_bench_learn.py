"""`charctl bench learn`: variants trained to sample marks, evaluated on held-out starts, resumable, side by side."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from charctl.awr.config import load_config

TROT_LR = load_config(character="dog", motion="trot").actor_lr  # the variants' own, until a --from changes it
TINY = ["--set", "samples_per_iter=300", "--set", "eval_every=0", "--set", "eval_episodes=1", "--episodes", "1",
        "--workers", "0", "--seeds", "1", "--every", "300"]


def bench(out, name, samples, *extra):
    return subprocess.run([sys.executable, "-m", "charctl", "bench", "learn", "dog", "trot", "--name", name,
                           "--samples", str(samples), "--out", str(out), *TINY, *extra],
                          capture_output=True, text=True, timeout=600)


def rows(out):
    with open(out / "learn.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_variants_side_by_side_at_marks_and_a_rerun_continues(tmp_path):
    out = tmp_path / "trot"
    first = bench(out, "plain", 600)
    assert first.returncode == 0, first.stderr
    assert [(r["variant"], int(r["mark"])) for r in rows(out)] == [("plain", 300), ("plain", 600)]
    at_600 = json.loads((out / "plain/s0/marks/600.json").read_text())
    assert at_600["samples"] >= 600 and at_600["episodes"] == 1 and 0.0 < at_600["normalized_return"] <= 1.0
    assert 2.0 < float(rows(out)[1]["reference_speed"]) < 2.8  # the pace columns: the trot clip's ~2.4 m/s
    assert 0.0 <= float(rows(out)[1]["heading_error_degrees"]) < 90.0
    assert (out / "learn.png").stat().st_size > 0 and (out / "baseline.json").exists()
    # a mark keeps the policy of that moment, not the replay buffer only a resume needs
    snapshot = torch.load(out / "plain/s0/marks/600.pt", weights_only=True)
    assert snapshot["buffer"] is None and snapshot["samples"] == at_600["samples"]
    assert torch.load(out / "plain/s0/dog_trot-last.pt", weights_only=True)["buffer"] is not None

    # a longer budget continues the same run: the old marks are kept as they were, one new mark is trained
    before = (out / "plain/s0/marks/300.json").stat().st_mtime_ns
    longer = bench(out, "plain", 900)
    assert longer.returncode == 0, longer.stderr
    assert (out / "plain/s0/marks/300.json").stat().st_mtime_ns == before
    at_900 = json.loads((out / "plain/s0/marks/900.json").read_text())
    assert at_900["samples"] > at_600["samples"]

    # a second variant lands in the same table; its env setting reached the trained env
    other = bench(out, "strays", 300, "--set", "env.pose_termination_distance=0.3", "--set", "keep_every=100")
    assert other.returncode == 0, other.stderr
    assert {r["variant"] for r in rows(out)} == {"plain", "strays"}
    config = (out / "strays/s0/config.yaml").read_text()
    assert "pose_termination_distance: 0.3" in config
    # bench learn keeps its own marks (MARK.pt): the trainer's keep_every stays off in its runs
    assert "keep_every: 0" in config and sorted(p.name for p in (out / "strays/s0/marks").glob("*.pt")) == ["300.pt"]

    # a variant with env settings is drawn against the baseline under its settings: with a training-only
    # setting it is the folder's, with another controller it is not
    folder_baseline = json.loads((out / "baseline.json").read_text())["normalized_return"]
    strays_baseline = json.loads((out / "strays/baseline.json").read_text())["normalized_return"]
    assert strays_baseline == pytest.approx(folder_baseline, abs=1e-12)
    motors = bench(out, "motors", 300, "--set", "env.sim.controller=motors", "--set", "env.sim.physics_hz=360")
    assert motors.returncode == 0, motors.stderr
    by_variant = {r["variant"]: float(r["baseline"]) for r in rows(out)}
    assert by_variant["plain"] == pytest.approx(folder_baseline, abs=1e-12)
    assert by_variant["motors"] == json.loads((out / "motors/baseline.json").read_text())["normalized_return"]
    assert abs(by_variant["motors"] - folder_baseline) > 1e-4

    # the same name with other settings is refused, and nothing of the variant is touched
    clash = bench(out, "plain", 300, "--set", "action_std=0.1")
    assert clash.returncode == 2 and "variant 'plain' was started with" in clash.stderr
    assert clash.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_curriculum_variant_changes_its_settings_at_a_mark(tmp_path):
    from charctl.bench.learn import variant_switches

    out = tmp_path / "trot"
    curriculum = ["--set", "env.clip_speed=0.5", "--from", "300", "env.clip_speed=1", "--from", "300",
                  "actor_lr=5e-5"]
    first = bench(out, "pace", 600, *curriculum)
    assert first.returncode == 0, first.stderr

    def trained_with(mark):
        snapshot = torch.load(out / f"pace/s0/marks/{mark}.pt", weights_only=True)
        return snapshot["env_kwargs"]["config"]["clip_speed"], snapshot["config"]["actor_lr"]

    # the first mark trained at half the clip's pace, the second went on at its own with the new learning rate
    assert trained_with(300) == (0.5, TROT_LR)
    assert trained_with(600) == (1.0, 5e-5)
    assert variant_switches(out, "pace") == [300]
    changes = (out / "pace/s0/settings_changes.txt").read_text()
    assert "env.clip_speed 0.5 -> 1.0" in changes and f"actor_lr {TROT_LR} -> 5e-05" in changes
    # both marks are drawn against the folder's baseline: clip_speed is training only
    assert [int(r["mark"]) for r in rows(out)] == [300, 600]
    folder_baseline = json.loads((out / "baseline.json").read_text())["normalized_return"]
    assert all(float(r["baseline"]) == pytest.approx(folder_baseline, abs=1e-12) for r in rows(out))

    # the switches are part of the variant: a longer budget continues it, other switches are refused
    longer = bench(out, "pace", 900, *curriculum)
    assert longer.returncode == 0, longer.stderr
    assert trained_with(900) == (1.0, 5e-5)
    assert (out / "pace/s0/settings_changes.txt").read_text().count("clip_speed") == 1  # switched once
    clash = bench(out, "pace", 900, "--set", "env.clip_speed=0.5", "--from", "600", "env.clip_speed=1")
    assert clash.returncode == 2 and "variant 'pace' was started with" in clash.stderr


@pytest.mark.slow
def test_one_seed_of_a_variant_trains_alone(tmp_path):
    # --seed 1 continues or runs that seed only: no seed 0 run appears, its marks are the table's only rows
    out = tmp_path / "trot"
    alone = bench(out, "plain", 300, "--seed", "1")
    assert alone.returncode == 0, alone.stderr
    assert not (out / "plain/s0").exists()
    assert "seed: 1" in (out / "plain/s1/config.yaml").read_text().splitlines()
    assert [(r["seed"], int(r["mark"])) for r in rows(out)] == [("1", 300)]


def test_the_legend_says_how_many_seeds_each_mark_averages():
    from charctl.bench.learn import variant_label

    both = [{"mark": m, "seed": s} for m in (100, 200) for s in (0, 1)]
    assert variant_label("default", both) == "default (mean of 2 seeds per mark)"
    assert variant_label("default", both + [{"mark": 300, "seed": 0}]) == "default (mean of 1-2 seeds per mark)"
    assert variant_label("motors", [{"mark": 100, "seed": 0}]) == "motors (mean of 1 seed per mark)"
    assert (variant_label("pace", both, [100]) ==
            "pace (mean of 2 seeds per mark; settings change at 100)")
    assert (variant_label("late", both, [200], ("default", 200)) ==
            "late (mean of 2 seeds per mark; settings change at 200; from default at 200)")


def test_a_fork_s_curve_is_drawn_from_its_fork_mark_on():
    from charctl.bench.learn import drawn_rows

    rows = [{"variant": v, "mark": m, "seed": 0} for v in ("default", "late") for m in (100, 200, 300)]
    assert [r["mark"] for r in drawn_rows(rows, "late", ("default", 200))] == [200, 300]
    assert [r["mark"] for r in drawn_rows(rows, "late", None)] == [100, 200, 300]
    assert {r["variant"] for r in drawn_rows(rows, "default", None)} == {"default"}


def test_each_mark_carries_the_speed_of_the_samples_behind_it(tmp_path):
    from charctl.bench.learn import collect_rows

    run = tmp_path / "trot" / "fast" / "s0"
    (run / "marks").mkdir(parents=True)
    for mark in (100, 200):
        (run / "marks" / f"{mark}.json").write_text(json.dumps(
            {"samples": mark + 3, "normalized_return": 0.02, "normalized_return_std": 0.01, "mean_length": 20.0,
             "fall_rate": 1.0}))
    # iterations up to 100 samples ran at 10-30 samples/s, the ones past it at 100-300; a resumed iteration's row
    # may lack the speed
    progress = "iteration,samples,samples_per_second\n0,40,10\n1,80,30\n2,103,20\n3,150,100\n4,170,\n5,203,300\n"
    (run / "progress.csv").write_text(progress)
    speeds = {int(r["mark"]): r["samples_per_second"] for r in collect_rows(tmp_path / "trot")}
    assert speeds == {100: 20.0, 200: 200.0}
    (run / "progress.csv").unlink()  # a run without its log still lists its marks
    assert [r["samples_per_second"] for r in collect_rows(tmp_path / "trot")] == [None, None]


@pytest.mark.slow
def test_a_fork_begins_from_its_parent_s_policy_at_a_mark(tmp_path):
    out = tmp_path / "trot"
    assert bench(out, "plain", 600).returncode == 0
    parent_300 = torch.load(out / "plain/s0/marks/300.pt", weights_only=True)

    # refused before anything is written: another --set than the parent's, a mark the parent has no policy at
    clash = bench(out, "late", 600, "--fork", "plain", "300", "--set", "action_std=0.1")
    assert clash.returncode == 2 and "a fork keeps its parent's --set" in clash.stderr
    missing = bench(out, "late", 1200, "--fork", "plain", "900")
    assert missing.returncode == 2 and "plain/s0/marks/900.pt: no policy to fork from" in missing.stderr
    assert missing.stderr.count("\n") == 1 and not (out / "late").exists()

    fork = bench(out, "late", 600, "--fork", "plain", "300", "--from", "300", "actor_lr=5e-5")
    assert fork.returncode == 0, fork.stderr
    # the parent's history up to the mark, its mark's result as it was; trained from there with the new setting
    assert (out / "late/s0/marks/300.json").read_text() == (out / "plain/s0/marks/300.json").read_text()
    late_600 = torch.load(out / "late/s0/marks/600.pt", weights_only=True)
    assert late_600["config"]["actor_lr"] == 5e-5 and late_600["samples"] >= 600
    assert late_600["iteration"] > parent_300["iteration"]
    fork_rows = (out / "late/s0/progress.csv").read_text().splitlines()
    shared = parent_300["iteration"] + 1  # the header and the iterations done
    assert fork_rows[:shared] == (out / "plain/s0/progress.csv").read_text().splitlines()[:shared]
    assert [int(r.split(",")[0]) for r in fork_rows[1:]] == list(range(len(fork_rows) - 1))
    assert "plain/s0 at mark 300" in (out / "late/s0/forked_from.txt").read_text()
    from charctl.bench.learn import variant_fork

    assert variant_fork(out, "late") == ("plain", 300) and variant_fork(out, "plain") is None
    changes = (out / "late/s0/settings_changes.txt").read_text()  # the parent's own change at 300 is not the fork's
    assert changes.count("samples 300 -> 600") == 1 and f"actor_lr {TROT_LR} -> 5e-05" in changes
    assert {(r["variant"], int(r["mark"])) for r in rows(out)} >= {("late", 300), ("late", 600), ("plain", 600)}


@pytest.mark.slow
def test_sigterm_stops_a_bench_after_the_iteration_in_flight(tmp_path):
    import signal
    import time

    out = tmp_path / "trot"
    process = subprocess.Popen([sys.executable, "-m", "charctl", "bench", "learn", "dog", "trot", "--name", "plain",
                                "--samples", "30000", "--out", str(out), *TINY], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    progress = out / "plain/s0/progress.csv"
    deadline = time.monotonic() + 300
    while not (progress.exists() and len(progress.read_text().splitlines()) > 1):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM after the iteration in flight; rerun the same command to continue" in stdout
    state = torch.load(out / "plain/s0/dog_trot-last.pt", weights_only=True)
    assert state["iteration"] == len(progress.read_text().splitlines()) - 1 and state["samples"] < 30000
