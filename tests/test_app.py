"""The application end to end: charctl train CHARACTER MOTION -> eval -> play (video and a real GUI) -> plot.
The GUI loop and the window process on their own: tests/test_gui_loop.py."""

import json
import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from charctl.awr.checkpoint import load_checkpoint
from charctl.cli import main
from charctl.envs.config import config_to_dict, load_env_config

# Two tiny iterations: 256 new samples each, few gradient steps.
TINY = ["--samples", "512", "--workers", "2", "--no-progress", "--set", "samples_per_iter=256",
        "--set", "critic_steps=10", "--set", "actor_steps=20", "--set", "eval_episodes=2",
        "--set", "env.time_limit=3"]


@pytest.fixture(scope="module")
def dog_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("app") / "dog_trot"
    assert main(["train", "dog", "trot", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_best_and_last_checkpoints_and_logs(dog_run):
    assert {p.name for p in dog_run.iterdir()} >= {"dog_trot.pt", "dog_trot-last.pt", "progress.csv",
                                                    "config.yaml", "tb"}
    state = load_checkpoint(dog_run / "dog_trot-last.pt")
    assert state["iteration"] == 2 and state["env_id"] == "charctl/Imitate-v0"
    # every env setting is kept, so the policy plays in the env it was trained in whatever configs/env/ says later
    expected = config_to_dict(load_env_config("dog", "trot", {"time_limit": 3}))
    assert state["env_kwargs"] == {"character": "dog", "motion": "trot", "config": expected}
    assert expected["action_mode"] == "residual" and expected["sim"]["physics_hz"] == 720.0
    header = (dog_run / "progress.csv").read_text().splitlines()[0]
    assert "test_normalized_return" in header and "train_normalized_return" in header


def test_eval_prints_a_normalised_return_in_0_1(dog_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 3 and result["character"] == "dog" and result["motion"] == "trot"
    assert 0.0 <= result["normalized_return"] <= 1.0 and 0.0 <= result["fall_rate"] <= 1.0
    assert set(result["reward_terms"]) == {"pose", "velocity", "end_effector", "root", "com"}
    assert result["normalized_return"] == pytest.approx(result["mean_return"] / 90)  # 3 s at 30 Hz
    assert 2.0 < result["pace"]["reference_speed"] < 2.8 and 0.0 < result["pace"]["speed"] < 3.0  # trot: ~2.4 m/s
    assert 0.0 < result["heading_error_degrees"] < 90.0  # a trot that falls within a few seconds: a little off
    by_joint = result["pose_error_by_joint"]  # every joint once, largest share first
    assert len(by_joint) == 29 and by_joint[0]["share"] >= by_joint[-1]["share"]
    assert sum(row["share"] for row in by_joint) == pytest.approx(1.0)
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "normalised return" in out and "pace (centre of mass" in out and "degrees off" in out
    assert "pose error by joint" in out


def test_eval_baseline_compares_start_by_start_with_the_reference(dog_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "3", "--baseline", "--json"]) == 0
    paired = json.loads(capsys.readouterr().out)
    assert main(["eval", "--reference", "dog", "trot", "--episodes", "3", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    # the same start states as the baseline run on its own (its 20 s limit never matters: it falls within 1 s)
    assert paired["baseline"]["mean_return"] == pytest.approx(alone["mean_return"])
    assert paired["baseline"]["mean_length"] == alone["mean_length"]
    comparison = paired["comparison"]
    assert comparison["mean_gain"] == pytest.approx(paired["normalized_return"]
                                                    - paired["baseline"]["normalized_return"])
    assert comparison["wins"] + comparison["losses"] + comparison["ties"] == 3
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "2", "--baseline"]) == 0
    assert "start by start" in capsys.readouterr().out
    assert main(["eval", "--reference", "dog", "trot", "--baseline"]) == 2
    assert "--reference alone is the baseline" in capsys.readouterr().err


def test_eval_samples_with_the_std_and_exploration_rate_it_is_given(dog_run, capsys):
    """--stochastic samples with the policy's own std on every step unless told otherwise; a std of 0, or a rate
    so small that no step samples, is the deterministic policy step for step."""
    def run(*extra):
        capsys.readouterr()
        assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "2", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    mean, sampled = run(), run("--stochastic")
    assert sampled["action_std"] == 0.05 and sampled["exploration_rate"] == 1.0 and not sampled["deterministic"]
    assert run("--stochastic", "--action-std", "0.05", "--exploration-rate", "1")["mean_return"] == \
        sampled["mean_return"]
    assert sampled["mean_return"] != mean["mean_return"]
    for extra in (["--action-std", "0"], ["--exploration-rate", "1e-12"]):
        quiet = run("--stochastic", *extra)
        assert quiet["mean_return"] == mean["mean_return"] and quiet["mean_length"] == mean["mean_length"]
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--episodes", "1", "--stochastic", "--exploration-rate",
                 "0.5"]) == 0
    assert "actions sampled with std 0.05 on a share 0.5 of the steps" in capsys.readouterr().out
    for bad, message in ((["--exploration-rate", "0.5"], "add --stochastic"),
                         (["--stochastic", "--exploration-rate", "0"], "must be in (0, 1]"),
                         (["--stochastic", "--action-std", "-1"], "must be 0 or more")):
        assert main(["eval", str(dog_run / "dog_trot.pt"), *bad]) == 2
        assert message in capsys.readouterr().err
    assert main(["eval", "--reference", "dog", "trot", "--stochastic"]) == 2
    assert "--reference has no policy" in capsys.readouterr().err


def test_eval_reference_under_other_env_settings_is_the_baseline_a_checkpoint_with_them_gets(capsys):
    """The shipped humanoid spinkick policy was trained with stable PD at 240 Hz (its checkpoint keeps that); the
    humanoid's default is now implicit motors at 90 Hz. --reference with those --set settings gives the baseline
    its --baseline runs, start for start; without them, the default's."""
    stable_pd = ["--set", "env.sim.controller=stable_pd", "--set", "env.sim.physics_hz=240"]
    capsys.readouterr()
    assert main(["eval", "--reference", "humanoid", "spinkick", "--episodes", "3", "--json", *stable_pd]) == 0
    alone = json.loads(capsys.readouterr().out)
    # the header holds every setting the episodes ran with: the --set ones and the humanoid's own for the rest
    assert (alone["config"]["sim"]["controller"], alone["config"]["sim"]["physics_hz"]) == ("stable_pd", 240)
    assert alone["config"]["observe_world_root"] is True and alone["config"]["action_mode"] == "residual"
    assert alone["config"]["time_limit"] == 20.0 and alone["config"]["pose_termination_distance"] is None
    assert main(["eval", "policies/humanoid_spinkick.pt", "--episodes", "3", "--baseline", "--json"]) == 0
    paired = json.loads(capsys.readouterr().out)
    assert paired["baseline"]["mean_return"] == pytest.approx(alone["mean_return"])
    assert main(["eval", "--reference", "humanoid", "spinkick", "--episodes", "3", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert abs(default["mean_return"] - alone["mean_return"]) > 0.1
    # over a checkpoint, --set changes its own settings: these are its own already, so nothing changes
    assert main(["eval", "policies/humanoid_spinkick.pt", "--episodes", "3", "--json", *stable_pd]) == 0
    assert json.loads(capsys.readouterr().out)["mean_return"] == pytest.approx(paired["mean_return"])


def test_eval_sets_env_settings_over_a_checkpoints_own(capsys):
    window = ["--set", "env.train_start_phases=[0.25, 0.45]"]
    capsys.readouterr()
    assert main(["eval", "policies/humanoid_spinkick.pt", "--episodes", "4", "--json", "--as-trained", *window]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["train_start_phases"] == [0.25, 0.45]
    started = [k for k, n in enumerate(result["mean_length_by_start_tenth"]) if n is not None]
    assert started and set(started) <= {2, 3, 4}  # every episode started in the window
    # without --as-trained the window, a training-only setting, is off, and the JSON says so
    assert main(["eval", "policies/humanoid_spinkick.pt", "--episodes", "1", "--json", *window]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["train_start_phases"] is None
    assert main(["eval", "policies/humanoid_spinkick.pt", "--episodes", "2", "--json", "--set",
                 "env.time_limit=0.2"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_length"] <= 6  # 0.2 s of 30 Hz control steps
    # a setting that changes what the policy sees is refused in one line, naming the checkpoint
    assert main(["eval", "policies/humanoid_spinkick.pt", "--set", "env.reference_ahead=[1]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "policies/humanoid_spinkick.pt" in err and "observation size" in err, err
    assert main(["eval", "policies/humanoid_spinkick.pt", "--set", "env.no_such_setting=1"]) == 2
    assert "no_such_setting" in capsys.readouterr().err


def grey_fraction(frame: np.ndarray) -> float:
    """Share of pixels in the characters' grey (the ground is blue and white, the sky white, the ghost blue)."""
    f = frame.astype(int)
    spread = f.max(axis=-1) - f.min(axis=-1)
    return float(np.mean((spread < 25) & (f.max(axis=-1) < 200)))


def test_play_records_a_video_of_the_dog(dog_run, tmp_path):
    video = tmp_path / "trot.gif"
    assert main(["play", str(dog_run / "dog_trot.pt"), "--record", str(video), "--seconds", "1",
                 "--width", "160", "--height", "120", "--no-ghost"]) == 0
    frames = iio.imread(video)
    assert len(frames) >= 2
    distinct = {frames[i].tobytes() for i in range(len(frames))}
    assert len(distinct) >= min(len(frames), 3)
    assert all(grey_fraction(f) > 0.005 for f in frames)  # the dog is in every frame

    from charctl.character.model import load_character
    from charctl.sim.render import Camera, KinematicScene, render_client
    with KinematicScene(load_character("dog"), Camera(width=160, height=120, distance=2.2),
                        show_character=False) as empty:
        assert grey_fraction(render_client(empty.client, np.array([0.0, 0.0, 0.5]),
                                           Camera(width=160, height=120, distance=2.2))) < 0.001


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed (.ci/run installs it)")
def test_play_opens_a_real_gui_window_under_xvfb(dog_run, tmp_path):
    shot = tmp_path / "shot.png"
    result = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-m", "charctl",
                             "play", str(dog_run / "dog_trot.pt"), "--gui", "--seconds", "2", "--screenshot",
                             str(shot)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # play's summary line is all it prints: none of PyBullet's ~45 lines of OpenGL and thread reports
    assert len(result.stdout.strip().splitlines()) == 1 and result.stdout.startswith("dog_trot: ")
    assert "x real time, the window drew" in result.stdout  # how well the machine kept up
    assert "GL_VENDOR" not in result.stdout + result.stderr and "build time" not in result.stderr
    picture = iio.imread(shot)
    assert picture.std() > 10  # not blank
    assert grey_fraction(picture) > 0.005  # the character is in it


def test_gui_without_a_display_says_so(dog_run, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["play", str(dog_run / "dog_trot.pt"), "--gui"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--record" in err


def test_plot_draws_curves(dog_run, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", str(dog_run), str(dog_run), "--out", str(out)]) == 0
    picture = iio.imread(out)
    assert picture.shape[0] > 200 and picture.std() > 5


@pytest.mark.parametrize("argv, expected", [
    (["train", "robot", "walk"], "characters: dog, humanoid"),
    (["train", "dog", "moonwalk"], "clips: canter, trot, turn"),
    (["train", "gym", "Hoper-v5"], "registered: "),
    (["eval", "missing.pt"], "no such checkpoint"),
    (["play", "missing.pt", "--record", "x.gif"], "no such checkpoint"),
    (["train", "dog", "trot", "--set", "env.gravity=1"], "unknown key 'gravity'"),
    (["train", "dog", "trot", "--set", "actor_lr=fast"], "actor_lr: expected float"),
])
def test_unknown_names_get_one_line_and_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_a_checkpoint_of_another_task_or_version_is_refused(dog_run, tmp_path, capsys):
    assert main(["train", "humanoid", "spinkick", "--out", str(dog_run), "--resume", *TINY]) == 2
    assert "holds a run of dog_trot, not humanoid_spinkick" in capsys.readouterr().err
    shutil.copy(dog_run / "dog_trot-last.pt", tmp_path / "humanoid_spinkick-last.pt")
    assert main(["train", "humanoid", "spinkick", "--out", str(tmp_path), "--resume", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained on dog (character), not humanoid" in err and len(err) < 300  # no dump of two settings dicts
    state = torch.load(dog_run / "dog_trot.pt", weights_only=True)
    state["format"] = "charctl-awr-0"
    torch.save(state, tmp_path / "old.pt")
    assert main(["eval", str(tmp_path / "old.pt")]) == 2
    assert "not a charctl AWR checkpoint" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["play", str(tmp_path / "junk.pt"), "--record", str(tmp_path / "x.gif")]) == 2
    assert "not a readable charctl checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.gif").exists()


def test_play_records_mp4(dog_run, tmp_path):
    video = tmp_path / "trot.mp4"
    assert main(["play", str(dog_run / "dog_trot.pt"), "--record", str(video), "--seconds", "0.5",
                 "--width", "160", "--height", "120"]) == 0
    frames = iio.imread(video)
    assert frames.shape[1:] == (120, 160, 3) and len(frames) >= 2


def test_group_curve_takes_the_median_over_the_runs_that_reach_each_point():
    from pathlib import Path

    from charctl.play.curves import Run, group_curve

    def run(samples, returns):
        return Run(Path("."), "t", np.array(samples, float), np.array(samples, float), np.array(returns, float), True)

    runs = [run([0, 10], [0.0, 1.0]), run([0, 10], [0.0, 0.5]), run([0, 20], [0.0, 0.4])]
    grid, median, low, high = group_curve(runs, "samples", points=5)  # grid 0, 5, 10, 15, 20
    np.testing.assert_allclose(grid, [0, 5, 10, 15, 20])
    np.testing.assert_allclose(median, [0.0, 0.25, 0.5, 0.3, 0.4])   # past 10 only the long run counts
    np.testing.assert_allclose(low, [0.0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(high, [0.0, 0.5, 1.0, 0.3, 0.4])


def test_eval_reference_pd_baseline(capsys):
    assert main(["eval", "--reference", "dog", "trot", "--episodes", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference_pd"] and result["fall_rate"] == 1.0  # open loop, the dog falls within a second
    # every fall is put down to the bodies that touched the ground: none of them the dog's paws
    causes = result["fall_causes"]
    assert sum(causes.values()) >= 4 and not set(causes) & {"left_finger", "right_finger", "left_toe", "right_toe"}
    assert list(causes.values()) == sorted(causes.values(), reverse=True)
    assert len(result["falls_per_tenth_of_clip"]) == 10 and sum(result["falls_per_tenth_of_clip"]) == 4
    by_start = result["mean_length_by_start_tenth"]  # each episode counted in the tenth it started in
    assert len(by_start) == 10 and sum(n is not None for n in by_start) >= 1
    assert all(n is None or 1 <= n <= 600 for n in by_start)
    assert main(["eval", "--reference", "dog", "trot", "--episodes", "4"]) == 0
    printed = capsys.readouterr().out
    assert "what ended the 4 falls (an episode can count several bodies): " in printed
    assert "mean length by start phase (steps; episodes started in phase 0-0.1, ..., 0.9-1): " in printed
    # pose termination is training only: evaluation turns it off unless asked to keep it (--as-trained)
    strict = ["eval", "--reference", "dog", "trot", "--episodes", "2", "--json", "--set",
              "env.pose_termination_distance=0"]
    assert main(strict) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert "strayed" not in evaluated["fall_causes"] and evaluated["config"]["pose_termination_distance"] is None
    assert main([*strict, "--as-trained"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert kept["fall_causes"] == {"strayed": 2} and kept["mean_length"] == 2 and kept["as_trained"]
    assert kept["config"]["pose_termination_distance"] == 0
    assert 0.0 < result["normalized_return"] < 0.05
    assert main(["eval", "--episodes", "2"]) == 2
    assert "CHECKPOINT or --reference" in capsys.readouterr().err


def test_eval_of_several_checkpoints_runs_each_from_the_same_starts_and_compares_with_the_first(dog_run, capsys):
    best, last = str(dog_run / "dog_trot.pt"), str(dog_run / "dog_trot-last.pt")
    capsys.readouterr()
    assert main(["eval", last, "--episodes", "3", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert main(["eval", last, best, last, "policies/dog_canter.pt", "--episodes", "3", "--json"]) == 0
    first, other, again, canter = json.loads(capsys.readouterr().out)
    assert first == alone and "against_first" not in first  # the first as it is alone
    assert again["normalized_return"] == first["normalized_return"]
    assert again["against_first"]["mean_gain"] == 0 and again["against_first"]["ties"] == 3
    assert other["against_first"]["mean_gain"] == pytest.approx(other["normalized_return"]
                                                                 - first["normalized_return"])
    assert canter["motion"] == "canter" and "against_first" not in canter  # other starts: nothing to pair
    assert main(["eval", last, last, "--episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.startswith(last) for line in lines[:2]] == [True, True]
    assert "against the first, start by start: +0.0000" in lines[1] and "better from 0 of 2" in lines[1]
    assert lines[2].startswith(f"highest normalised return: {last} (")  # a tie goes to the first


def test_eval_with_workers_prints_what_it_prints_in_one_process(dog_run, capsys):
    """--workers N shares the episodes among forked processes: the same JSON, baseline and comparisons included."""
    def run(*extra):
        capsys.readouterr()
        assert main(["eval", str(dog_run / "dog_trot.pt"), str(dog_run / "dog_trot-last.pt"), "policies/dog_trot.pt",
                     "--episodes", "3", "--baseline", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    alone = run()
    assert run("--workers", "2") == alone
    # the shipped policy's episodes last up to 20 s, the run's 3 s: the same clip, but nothing to pair
    assert "against_first" in alone[1] and "against_first" not in alone[2]
    assert main(["eval", str(dog_run / "dog_trot.pt"), "--workers", "-1"]) == 2
    assert "--workers must be 0 or more, not -1" in capsys.readouterr().err


def test_eval_of_several_checkpoints_refuses_a_bad_one_before_any_episode(dog_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["eval", str(dog_run / "dog_trot.pt"), str(dog_run / "missing.pt"), "--episodes", "2"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "missing.pt: no such checkpoint" in err
    # a Gym policy has no reference to compare with: refused before the imitation policy before it runs
    gym_run = tmp_path / "cartpole"
    assert main(["train", "gym", "CartPole-v1", "--samples", "64", "--workers", "0", "--no-progress", "--out",
                 str(gym_run), "--set", "samples_per_iter=64", "--set", "eval_episodes=0"]) == 0
    capsys.readouterr()
    assert main(["eval", str(dog_run / "dog_trot.pt"), str(gym_run / "CartPole-v1-last.pt"), "--baseline"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "CartPole-v1-last.pt: --baseline needs an imitation policy" in err
