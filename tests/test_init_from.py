"""A warm start (`--init CHECKPOINT`, AWRConfig.init_from): a new run begins from another run's actor, critic and
observation normaliser, with its own optimisers, samples and seed; a checkpoint whose networks do not fit the run
is refused before anything is written."""

from pathlib import Path

import pytest
import torch

from charctl.awr.checkpoint import load_checkpoint
from charctl.awr.config import load_config
from charctl.awr.trainer import train
from charctl.cli import main
from charctl.util.errors import CharctlError
from quick_training import QUICK_CARTPOLE

QUICK = {**QUICK_CARTPOLE, "normalizer_samples": 512}


def cartpole(out: Path, env_id: str = "CartPole-v1", **settings):
    return train(env_id, {}, load_config(env_id, overrides={**QUICK, **settings}), out, progress=False)


def networks(path: Path) -> dict:
    agent = load_checkpoint(path)["agent"]
    return {"actor": agent["actor"], "critic": agent["critic"], "normalizer mean": agent["normalizer"]["mean"]}


def assert_same(a: dict, b: dict) -> None:
    for part in ("actor", "critic"):
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, rtol=0, atol=0)
    torch.testing.assert_close(torch.as_tensor(b["normalizer mean"]), torch.as_tensor(a["normalizer mean"]),
                               rtol=0, atol=0)


def test_a_warm_start_begins_from_the_source_networks_and_counts_its_own_samples(tmp_path):
    source = cartpole(tmp_path / "source", samples=1024, seed=1)
    # frozen learning rates and normaliser: what the warm-started run holds after an iteration is what it began from
    frozen = {"actor_lr": 0.0, "critic_lr": 0.0, "normalizer_samples": 0, "samples": 512}
    warm = cartpole(tmp_path / "warm", init_from=str(source.last_checkpoint), **frozen)
    cold = cartpole(tmp_path / "cold", **frozen)

    assert_same(networks(source.last_checkpoint), networks(warm.last_checkpoint))
    with pytest.raises(AssertionError):  # without it the run holds its own fresh networks
        assert_same(networks(source.last_checkpoint), networks(cold.last_checkpoint))
    state = load_checkpoint(warm.last_checkpoint)
    assert state["samples"] == warm.samples < 1024 and state["iteration"] == 1
    assert state["config"]["init_from"] == str(source.last_checkpoint) and state["config"]["seed"] == 0
    assert "init_from: " in (tmp_path / "warm" / "config.yaml").read_text()


def test_a_warm_started_run_learns_on_from_where_it_began(tmp_path):
    source = cartpole(tmp_path / "source", samples=1024)
    warm = cartpole(tmp_path / "warm", init_from=str(source.last_checkpoint), samples=512)
    before, after = networks(source.last_checkpoint), networks(warm.last_checkpoint)
    moved = max(float((after["actor"][k] - v).abs().max()) for k, v in before["actor"].items())
    assert 0 < moved < 1  # trained on, by small steps from the source's weights, not from a fresh init
    # the normaliser goes on counting from the source's statistics (as DeepMimic's loaded normalisers do)
    counts = [load_checkpoint(run)["agent"]["normalizer"]["count"] for run in (source.last_checkpoint,
                                                                                warm.last_checkpoint)]
    assert counts[1] > counts[0] > 500


@pytest.mark.parametrize("settings, message", [
    ({"actor_layers": [32]}, r"\(--init\): its actor_layers is \[128, 64\], this run's \[32\] "
                             r"\(--set actor_layers=\[128,64\] to match\)"),
    ({"env_id": "Acrobot-v1"}, r"\(--init\): its policy observes 4 numbers, this task 6"),
    ({"init_from": "missing.pt"}, r"missing\.pt: no such checkpoint"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_before_anything_is_written(tmp_path, settings, message):
    source = cartpole(tmp_path / "source", samples=512)
    settings = {"init_from": str(source.last_checkpoint), "samples": 512, **settings}
    with pytest.raises(CharctlError, match=message):
        cartpole(tmp_path / "warm", **settings)
    assert not (tmp_path / "warm").exists()


def test_the_cli_warm_starts_a_dog_clip_from_another_clip_and_a_resume_keeps_it(tmp_path, capsys):
    quick = ["--no-progress", "--workers", "0", "--samples", "64", "--set", "samples_per_iter=64",
             "--set", "critic_steps=5", "--set", "actor_steps=10", "--set", "eval_every=0",
             "--set", "eval_episodes=1", "--set", "env.time_limit=1"]
    trot = tmp_path / "trot"
    assert main(["train", "dog", "trot", "--out", str(trot), *quick]) == 0
    canter = tmp_path / "canter"
    source = str(trot / "dog_trot-last.pt")
    assert main(["train", "dog", "canter", "--out", str(canter), "--init", source, *quick]) == 0
    assert f"dog_canter: begins from the networks of {source}" in capsys.readouterr().out
    assert load_checkpoint(canter / "dog_canter-last.pt")["config"]["init_from"] == source

    assert main(["train", "dog", "canter", "--out", str(canter), "--resume", "--init", "other.pt"]) == 2
    assert "--init: a resumed run keeps its init_from" in capsys.readouterr().err


def test_a_policy_of_another_schedule_is_refused_with_every_setting_that_differs(tmp_path, capsys):
    """The trot shipped before has [128, 64] networks, a new dog run [1024, 512]: one line names both and the
    settings that match them; nothing is written."""
    out = tmp_path / "canter"
    assert main(["train", "dog", "canter", "--out", str(out), "--init", "policies/earlier/dog_trot-5M/dog_trot.pt",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists()
    assert ("its actor_layers is [128, 64], this run's [1024, 512]; its critic_layers is [128, 64], this run's "
            "[1024, 512] (--set actor_layers=[128,64] --set critic_layers=[128,64] to match)") in err


def test_a_fresh_actor_output_keeps_the_source_features_and_starts_at_the_new_clips_baseline(tmp_path, capsys):
    """init_actor_output=fresh: the source's hidden layers, critic and normaliser, and a new run's output layer;
    for an imitation run (output scale 0) that is exactly the reference-PD baseline of the new clip."""
    import json

    source = "policies/dog_trot.pt"  # the dog's own networks: a new canter run takes it as it is
    frozen = ["--no-progress", "--workers", "0", "--samples", "64", "--set", "samples_per_iter=64",
              "--set", "actor_lr=0", "--set", "critic_lr=0", "--set", "normalizer_samples=0", "--set", "eval_every=0",
              "--set", "eval_episodes=0",
              "--set", "env.time_limit=1"]
    out = tmp_path / "canter"
    assert main(["train", "dog", "canter", "--out", str(out), "--init", source,
                 "--set", "init_actor_output=fresh", *frozen]) == 0
    assert "with a fresh actor output layer" in capsys.readouterr().out
    before, after = load_checkpoint(source)["agent"], load_checkpoint(out / "dog_canter-last.pt")["agent"]
    head = max(k for k in after["actor"] if k.endswith(".weight"))  # the last layer's key, e.g. net.4.weight
    for key, value in before["actor"].items():
        if key.startswith(head.rsplit(".", 1)[0] + "."):
            assert not after["actor"][key].any()  # the output layer as a new imitation run's: zeros
        else:
            torch.testing.assert_close(after["actor"][key], value, rtol=0, atol=0)
    for key, value in before["critic"].items():
        torch.testing.assert_close(after["critic"][key], value, rtol=0, atol=0)
    torch.testing.assert_close(torch.as_tensor(after["normalizer"]["mean"]),
                               torch.as_tensor(before["normalizer"]["mean"]), rtol=0, atol=0)
    # zero residual actions: its episodes are reference PD's, start for start (to rounding)
    assert main(["eval", str(out / "dog_canter-last.pt"), "--episodes", "3", "--baseline", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert fresh["mean_length"] == fresh["baseline"]["mean_length"]
    assert max(map(abs, fresh["comparison"]["gain_ci95"])) < 1e-12
    # without it the trot's output layer acts: the same starts go otherwise
    kept = tmp_path / "kept"
    assert main(["train", "dog", "canter", "--out", str(kept), "--init", source, *frozen]) == 0
    capsys.readouterr()
    assert main(["eval", str(kept / "dog_canter-last.pt"), "--episodes", "3", "--baseline", "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["comparison"]["mean_gain"]) > 1e-4
