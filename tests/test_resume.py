"""`charctl train --resume` continues the run as it was started: its saved sample budget, seed, workers and
AWR settings; what the resume command changes is applied and said; what cannot change is refused before
anything is written."""

from pathlib import Path

import pytest
import torch
import yaml

from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.trainer import _env_difference
from charctl.cli import main

QUICK = ["--no-progress", "--set", "samples_per_iter=512", "--set", "critic_steps=5", "--set", "actor_steps=10",
         "--set", "eval_every=0", "--set", "eval_episodes=1"]


def snapshot(directory: Path) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def run(tmp_path, capsys):
    """A finished 1024-sample CartPole run started with seed 3 and no workers."""
    out = tmp_path / "run"
    assert main(["train", "gym", "CartPole-v1", "--samples", "1024", "--seed", "3", "--workers", "0",
                 "--out", str(out), *QUICK]) == 0
    capsys.readouterr()
    return out


def saved(run: Path) -> dict:
    return load_checkpoint(run / "CartPole-v1-last.pt")


def test_a_plain_resume_keeps_the_budget_seed_and_workers(run, capsys):
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert " samples, 2 iterations" in out and "resuming with" not in out  # nothing more to do, no change
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["samples"], config["seed"], config["num_workers"]) == (1024, 3, 0)
    assert config["samples_per_iter"] == 512  # the --set values of the first command are kept too
    assert not (run / "settings_changes.txt").exists()


@pytest.mark.parametrize("flag", [["--samples", "2048"], ["--set", "samples=2048"]])
def test_a_new_budget_is_applied_and_said(run, capsys, flag):
    saved_samples = saved(run)["samples"]
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress", *flag]) == 0
    out = capsys.readouterr().out
    assert "CartPole-v1: resuming with samples 1024 -> 2048" in out
    state = saved(run)
    assert (state["iteration"], state["config"]["samples"], state["config"]["seed"]) == (4, 2048, 3)
    assert (run / "settings_changes.txt").read_text() == \
        f"iteration 2 ({saved_samples} samples): samples 1024 -> 2048\n"
    # the next plain resume keeps the new budget
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert saved(run)["config"]["samples"] == 2048


@pytest.mark.parametrize("argv, expected", [
    (["--seed", "5"], "--seed: a resumed run keeps its seed (3); start a new run to change it"),
    (["--set", "seed=5"], "--seed: a resumed run keeps its seed (3)"),
    (["--set", "actor_layers=[32]"], "--set actor_layers: a resumed run keeps its actor_layers ([128, 64])"),
    (["--set", "critic_layers=[8, 8]"], "--set critic_layers: a resumed run keeps its critic_layers"),
    (["--set", "normalizer_std_floor=0.5"], "--set normalizer_std_floor: a resumed run keeps its"),
    (["--samples", "0"], "samples"),
    (["--set", "nonsense=1"], "unknown key 'nonsense'"),
])
def test_what_cannot_change_is_refused_with_one_line_and_nothing_written(run, capsys, argv, expected):
    before = snapshot(run)
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert snapshot(run) == before


def test_the_same_seed_again_is_no_change(run, capsys):
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress",
                 "--seed", "3", "--samples", "1024"]) == 0
    assert "resuming with" not in capsys.readouterr().out


def test_a_changed_worker_count_is_applied_and_said(run, capsys):
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress",
                 "--workers", "1", "--samples", "1536"]) == 0
    assert "resuming with samples 1024 -> 1536; num_workers 0 -> 1" in capsys.readouterr().out
    assert saved(run)["config"]["num_workers"] == 1


def test_stale_temporary_files_are_removed_on_resume(run):
    stale = [run / ".CartPole-v1-last.pt.abc123.pt.tmp", run / ".progress.csv.x1.csv.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert not any(path.exists() for path in stale)


def test_another_env_is_named_in_a_short_line():
    kwargs = {"character": "dog", "motion": "trot", "config": {"time_limit": 20.0, "sim": {"control_hz": 30}}}
    assert _env_difference("charctl/Imitate-v0", kwargs, "CartPole-v1", {}) == "charctl/Imitate-v0, not CartPole-v1"
    assert _env_difference("charctl/Imitate-v0", kwargs, "charctl/Imitate-v0", {**kwargs, "motion": "canter"}) \
        == "trot (motion), not canter"
    other = {**kwargs, "config": {"time_limit": 10.0, "sim": {"control_hz": 30}}}
    assert _env_difference("charctl/Imitate-v0", kwargs, "charctl/Imitate-v0", other) == \
        "env settings config.time_limit 20.0, not 10.0"


@pytest.mark.parametrize("poison", ["loss", "weights", "return"])
def test_a_non_finite_iteration_stops_with_one_line_and_keeps_the_good_checkpoints(run, capsys, monkeypatch, poison):
    import math

    import torch

    import charctl.awr.agent as agent_module
    import charctl.awr.trainer as trainer_module

    update = agent_module.AWRAgent.update

    def diverging_update(self, buffer, new_samples):
        stats = update(self, buffer, new_samples)
        if poison == "loss":
            stats["critic_loss"] = math.nan
        elif poison == "weights":
            with torch.no_grad():
                next(self.actor.parameters()).fill_(math.inf)
        return stats

    def nan_returns(self, row):
        row["test_return"] = math.nan
        return True

    monkeypatch.setattr(agent_module.AWRAgent, "update", diverging_update)
    if poison == "return":
        monkeypatch.setattr(trainer_module._Run, "test", nan_returns)
    before = {name: (run / name).read_bytes() for name in ("CartPole-v1.pt", "CartPole-v1-last.pt", "progress.csv")}
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress",
                 "--samples", "2048"]) == 2
    err = capsys.readouterr().err.strip()
    expected = {"loss": "critic_loss", "weights": "actor network weights", "return": "test_return"}[poison]
    assert len(err.splitlines()) == 1 and "iteration 2: non-finite" in err and expected in err, err
    assert "CartPole-v1-last.pt (2 iterations) is kept" in err
    assert {name: (run / name).read_bytes() for name in before} == before


def test_an_imitation_run_resumes_with_its_own_env_settings_or_the_ones_it_is_told(tmp_path, capsys):
    """A bare --resume keeps the env settings the run was started with (here a --set env.* one) and repeating them
    is no change. --set env.* changes one from there on, as an AWR setting, said and recorded; the best policy so
    far is kept and the best return starts again. A change of the observation's size is refused, nothing written."""
    out = tmp_path / "dog"
    assert main(["train", "dog", "trot", "--out", str(out), "--samples", "64", "--workers", "0", *QUICK,
                 "--set", "samples_per_iter=64", "--set", "env.time_limit=1"]) == 0
    first = load_checkpoint(out / "dog_trot-last.pt")
    assert first["best_test_return"] is not None
    resume = ["train", "dog", "trot", "--resume", "--out", str(out), "--no-progress"]
    assert main([*resume, "--samples", str(first["samples"] + 1)]) == 0
    second = load_checkpoint(out / "dog_trot-last.pt")
    assert main([*resume, "--samples", str(second["samples"] + 1), "--set", "env.time_limit=1"]) == 0
    state = load_checkpoint(out / "dog_trot-last.pt")
    assert state["iteration"] == first["iteration"] + 2 and state["env_kwargs"] == first["env_kwargs"]
    assert state["env_kwargs"]["config"]["time_limit"] == 1.0
    assert "env." not in (out / "settings_changes.txt").read_text()
    best_before = (out / "dog_trot.pt").read_bytes()  # the best so far, whichever iteration's it is
    capsys.readouterr()

    assert main([*resume, "--samples", str(state["samples"] + 1), "--set", "env.time_limit=2",
                 "--set", "env.pd_target_velocity=true"]) == 0
    said = capsys.readouterr().out
    assert "resuming with env.pd_target_velocity False -> True; env.time_limit 1.0 -> 2.0" in said, said
    changed = load_checkpoint(out / "dog_trot-last.pt")
    assert changed["env_kwargs"]["config"]["time_limit"] == 2.0
    assert changed["env_kwargs"]["config"]["pd_target_velocity"] is True
    assert changed["iteration"] == state["iteration"] + 1
    history = (out / "settings_changes.txt").read_text().splitlines()[-1]
    assert history.startswith(f"iteration {state['iteration']} ") and "env.time_limit 1.0 -> 2.0" in history
    kept = out / f"dog_trot-before-iteration-{state['iteration']}.pt"
    assert kept.read_bytes() == best_before and "kept as " + kept.name in history
    best = load_checkpoint(out / "dog_trot.pt")  # the first test in the changed env is the new best
    assert best["env_kwargs"] == changed["env_kwargs"] and best["iteration"] == changed["iteration"]
    assert yaml.safe_load((out / "config.yaml").read_text())["env_kwargs"]["config"]["time_limit"] == 2.0

    before = snapshot(out)
    assert main([*resume, "--samples", "1000", "--set", "env.reference_ahead=[1]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "changes the observation from 437 to" in err, err
    assert "env.reference_ahead [] -> [1]" in err, err
    assert snapshot(out) == before


def test_a_run_directory_in_use_by_another_process_is_refused(run, capsys):
    """Two runs writing one directory would delete each other's temporaries: while a live process holds the run
    directory, a second `charctl train` there is refused with one line and nothing written; after it, it goes on."""
    from charctl.util.fileio import DirectoryLock

    resume = ["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress", "--samples", "1536"]
    with DirectoryLock(run, "the run directory"):  # a separate open descriptor: flock refuses it as another process
        before = snapshot(run)
        assert main(resume) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{run}: the run directory is in use by another process" in err, err
        assert snapshot(run) == before
    assert main(resume) == 0
    assert saved(run)["samples"] >= 1536


def _kept_samples(run: Path) -> list[int]:
    return sorted(int(p.stem.rsplit("-", 1)[1]) for p in (run / "marks").glob("CartPole-v1-*.pt"))


def _crossings(run: Path, every: int, after: int = 0) -> list[int]:
    """The sample counts of progress.csv's iterations that passed a multiple of `every` (past `after`)."""
    samples = [0] + [int(line.split(",")[1]) for line in (run / "progress.csv").read_text().splitlines()[1:]]
    return [now for before, now in zip(samples, samples[1:]) if now // every > before // every and before >= after]


def test_keep_every_keeps_the_policy_past_each_multiple_without_the_buffer_and_a_resume_goes_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "gym", "CartPole-v1", "--samples", "3000", "--workers", "0", "--out", str(out), *QUICK,
                 "--set", "keep_every=1000"]) == 0
    kept = _kept_samples(out)
    assert kept == _crossings(out, 1000) and len(kept) == 3  # past 1000, 2000 and 3000
    last = saved(out)
    assert kept[-1] == last["samples"]  # the final iteration passed 3000: its policy is the last one
    final = load_checkpoint(out / "marks" / f"CartPole-v1-{kept[-1]}.pt")
    assert final["buffer"] is None and last["buffer"] is not None
    assert all(torch.equal(a, b) for a, b in zip(final["agent"]["actor"].values(), last["agent"]["actor"].values()))
    first = load_checkpoint(out / "marks" / f"CartPole-v1-{kept[0]}.pt")
    assert first["samples"] == kept[0] and first["iteration"] < last["iteration"]
    # a resume with another interval keeps going from where the run is, never twice the same mark
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(out), "--no-progress",
                 "--samples", "6000", "--set", "keep_every=1500"]) == 0
    assert _kept_samples(out) == kept + _crossings(out, 1500, after=last["samples"])
    assert _kept_samples(out)[-1] >= 6000
    assert f"CartPole-v1: {len(_kept_samples(out))} kept policies in {out / 'marks'}" in capsys.readouterr().out


def test_without_keep_every_no_marks_are_kept(run, capsys):
    assert not (run / "marks").exists()
    assert main(["train", "gym", "CartPole-v1", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert "kept policies" not in capsys.readouterr().out
