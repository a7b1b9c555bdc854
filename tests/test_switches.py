"""A curriculum in the settings (`switches: {SAMPLES: {KEY: VALUE}}`): from the first iteration at or past SAMPLES the
run trains with those settings as well, exactly as `--resume --set` there would; each switch is made once, also
when the run stopped at its mark; a bad switch is refused before anything is written."""

import re
from pathlib import Path

import pytest
import torch

from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.config import load_config
from charctl.cli import main
from charctl.util.errors import CharctlError
from quick_training import train_cartpole as cartpole

FREEZE_AT_1024 = {1024: {"actor_lr": 0}}  # actor_lr 0 freezes the actor: the switch's effect is visible exactly


def actor(run: Path) -> dict:
    return load_checkpoint(run / "CartPole-v1-last.pt")["agent"]["actor"]


def test_a_switch_is_a_resume_with_its_settings_at_its_mark(tmp_path):
    switched = cartpole(tmp_path / "switched", samples=4 * 512, switches=FREEZE_AT_1024)
    at = cartpole(tmp_path / "by-hand", samples=2 * 512).samples  # the first iteration's end at or past 1024
    by_hand = cartpole(tmp_path / "by-hand", resume=True, changes={"samples": 4 * 512, "actor_lr": 0})
    # stopped at the mark by its budget: the switch is made when the run goes on
    cartpole(tmp_path / "stopped", samples=2 * 512, switches=FREEZE_AT_1024)
    stopped = cartpole(tmp_path / "stopped", resume=True, changes={"samples": 4 * 512})

    assert (switched.iteration, switched.samples) == (by_hand.iteration, by_hand.samples) == \
        (stopped.iteration, stopped.samples)
    for run in ("by-hand", "stopped"):
        for key, value in actor(tmp_path / "switched").items():
            torch.testing.assert_close(actor(tmp_path / run)[key], value, rtol=0, atol=0)
    state = load_checkpoint(switched.last_checkpoint)
    assert state["config"]["actor_lr"] == 0.0 and state["switches_made"] == [1024]
    history = (tmp_path / "switched" / "settings_changes.txt").read_text().splitlines()
    assert history == [f"iteration 2 ({at} samples): the switch at 1024 samples; "
                       "actor_lr 0.0005 -> 0.0"]
    history = (tmp_path / "stopped" / "settings_changes.txt").read_text().splitlines()
    assert history[-1].endswith("the switch at 1024 samples; actor_lr 0.0005 -> 0.0"), history
    assert len(history) == 2  # the new budget, then the switch


def test_a_switch_is_made_once_even_when_the_run_sets_it_back(tmp_path):
    cartpole(tmp_path / "run", samples=3 * 512, switches=FREEZE_AT_1024)
    cartpole(tmp_path / "run", resume=True, changes={"samples": 4 * 512, "actor_lr": 0.0005})
    state = load_checkpoint(tmp_path / "run" / "CartPole-v1-last.pt")
    assert state["config"]["actor_lr"] == 0.0005 and state["switches_made"] == [1024]
    assert "the switch" not in (tmp_path / "run" / "settings_changes.txt").read_text().splitlines()[-1]


def test_a_resume_says_when_the_switches_it_keeps_differ_from_the_tasks(tmp_path, capsys):
    """A resumed run keeps its saved switches; when the ones it has not made yet differ from the task's config now
    (changed since the run began), it says so in one line, and says nothing when they agree."""
    run, later = tmp_path / "run", {4096: {"actor_lr": 0}}
    cartpole(run, samples=512, switches=later)
    capsys.readouterr()
    cartpole(run, resume=True, changes={"samples": 2 * 512}, switches=later)  # the task's config as the run's
    assert "keeps its own switches" not in capsys.readouterr().out
    cartpole(run, resume=True, changes={"samples": 3 * 512})  # the task's config now without the switch
    said = [line for line in capsys.readouterr().out.splitlines() if "switches" in line]
    assert said == ["CartPole-v1: keeps its own switches still to make, {4096: {'actor_lr': 0.0}}; the task's "
                    "config now has none (--set 'switches={...}' with --resume takes others)"]
    assert load_checkpoint(run / "CartPole-v1-last.pt")["config"]["switches"] == later  # kept, as it said
    cartpole(run, resume=True, changes={"samples": 4 * 512, "switches": {}})  # asked for: a change, not a note
    assert "keeps its own switches" not in capsys.readouterr().out

    # a switch the task's config has now at samples the run has passed would still be made: it counts
    plain = tmp_path / "plain"
    assert cartpole(plain, samples=3 * 512).samples > 1024
    capsys.readouterr()
    # ... unless it would set what the run has already: then it changes nothing and nothing is said
    its_lr = load_checkpoint(plain / "CartPole-v1-last.pt")["config"]["actor_lr"]
    cartpole(plain, resume=True, changes={"samples": 4 * 512}, switches={1024: {"actor_lr": its_lr}})
    assert "keeps its own switches" not in capsys.readouterr().out
    cartpole(plain, resume=True, changes={"samples": 5 * 512}, switches=FREEZE_AT_1024)
    said = [line for line in capsys.readouterr().out.splitlines() if "switches" in line]
    assert said == ["CartPole-v1: keeps its own switches still to make, none; the task's config now has "
                    "{1024: {'actor_lr': 0.0}} (--set 'switches={...}' with --resume takes others)"], said
    assert load_checkpoint(plain / "CartPole-v1-last.pt")["switches_made"] == []  # kept its own: none made


@pytest.mark.parametrize("switches, message", [
    ({1024: {"env.time_limit": 2}}, r"switches: 1024: env\.\* settings apply to imitation tasks only"),
    ({1024: {"seed": 2}}, r"switches: 1024: seed cannot switch during a run"),
    ({0: {"actor_lr": 0}}, r"switches: 0: expected a sample count >= 1"),
])
def test_a_bad_switch_is_refused_before_anything_is_written(tmp_path, switches, message):
    with pytest.raises(CharctlError, match=message):
        cartpole(tmp_path / "run", samples=2048, switches=switches)
    assert not (tmp_path / "run").exists()


def test_an_imitation_run_switches_env_settings_and_refuses_a_bad_one_up_front(tmp_path, capsys):
    out = tmp_path / "dog"
    quick = ["--no-progress", "--workers", "0", "--set", "samples_per_iter=64", "--set", "critic_steps=5",
             "--set", "actor_steps=10", "--set", "eval_every=0", "--set", "eval_episodes=1",
             "--set", "env.time_limit=1"]
    switch = "switches={64: {env.pd_target_velocity: true, env.pd_target_velocity_scale: 0.5}}"
    assert main(["train", "dog", "trot", "--out", str(out), "--samples", "128", *quick, "--set", switch]) == 0
    said = capsys.readouterr().out
    assert "the switch at 64 samples; env.pd_target_velocity False -> True; env.pd_target_velocity_scale 1.0 -> 0.5" \
        in said, said
    state = load_checkpoint(out / "dog_trot-last.pt")
    assert state["samples"] >= 128 and state["switches_made"] == [64]
    settings = state["env_kwargs"]["config"]
    assert settings["pd_target_velocity"] is True and settings["pd_target_velocity_scale"] == 0.5

    for bad, expected in (("switches={64: {env.reference_ahead: [1]}}", "would change the observation"),
                          ("switches={64: {env.no_such_setting: 1}}", "no_such_setting")):
        assert main(["train", "dog", "trot", "--out", str(tmp_path / "bad"), "--samples", "128", *quick,
                     "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "switches: 64" in err and expected in err, err
        assert not (tmp_path / "bad").exists()


REPOSITORY = Path(__file__).parents[1]
TASKS_WITH_SWITCHES = [clip.stem for clip in sorted((REPOSITORY / "motions").glob("*.bvh"))
                       if load_config(character=clip.stem.split("_")[0], motion=clip.stem.split("_", 1)[1]).switches]


def test_the_dog_trot_has_a_curriculum():
    assert "dog_trot" in TASKS_WITH_SWITCHES


# the policy each task's switches were taken from, where it is not policies/TASK.pt: the shipped dog trot learnt
# its 1.2M samples before the trot's first switch (2M)
RECIPE_POLICIES = {"dog_trot": "earlier/dog_trot-5M/dog_trot.pt"}


@pytest.mark.parametrize("task", TASKS_WITH_SWITCHES)
def test_the_default_switches_are_the_recipe_of_the_policy_they_came_from(task):
    """A task's settings reproduce the recipe of the policy its switches came from (policies/TASK.pt or the one
    RECIPE_POLICIES names): its run's history (settings_changes.txt) made each switch's settings at that switch's
    samples, and each switched setting's last value is the one it ended with."""
    character, motion = task.split("_", 1)
    switches = load_config(character=character, motion=motion).switches
    shipped = load_checkpoint(REPOSITORY / "policies" / RECIPE_POLICIES.get(task, f"{task}.pt"))
    history = (REPOSITORY / "policies" / "runs" / f"{task}-s0" / "settings_changes.txt").read_text().splitlines()
    assert switches and max(switches) < shipped["samples"]
    for at, settings in switches.items():
        # the first iteration at or past the switch's samples
        made = [line for line in history
                if at <= int(re.search(r"\((\d+) samples\)", line)[1]) < at + shipped["config"]["samples_per_iter"]]
        for key, value in settings.items():
            assert any(re.search(rf"(^|: |; ){re.escape(key)} \S+ -> {re.escape(str(value))}(;|$)", line)
                       for line in made), (at, key)
    final = {key: value for _, settings in sorted(switches.items()) for key, value in settings.items()}
    for key, value in final.items():
        trained = shipped["env_kwargs"]["config"][key.removeprefix("env.")] if key.startswith("env.") \
            else shipped["config"][key]
        assert trained == value, key
