"""The policies shipped in policies/ load from a fresh clone, play, and beat the no-policy baseline."""

import functools
from pathlib import Path

import pytest

from charctl.cli import main
from charctl.play.evaluation import evaluate, evaluate_reference_pd, paired_comparison
from charctl.play.policy_file import open_policy

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def test_shipped_dog_trot_beats_reference_pd_from_the_same_starts():
    """A few seconds of the shipped dog trot policy against PD targets straight from the clip, same start states."""
    task = open_policy(POLICIES / "dog_trot.pt")
    env = task.make_env()
    try:
        policy_result = evaluate(env, task.policy, episodes=8, seed=0)
        baseline_result = evaluate_reference_pd(env, episodes=8, seed=0)
    finally:
        env.close()
    policy, baseline = policy_result.summary(), baseline_result.summary()
    # measured: policy 0.703 (600 steps), reference PD 0.013 (15 steps) (8 episodes; docs/results.md has 32)
    assert policy["normalized_return"] > 1.5 * baseline["normalized_return"]
    assert policy["mean_length"] > 1.5 * baseline["mean_length"]
    comparison = paired_comparison(policy_result, baseline_result)  # start by start, as `charctl eval --baseline`
    assert comparison["wins"] >= 7 and comparison["gain_ci95"][0] > 0


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.pt")), ids=lambda p: p.name)
def test_every_shipped_policy_plays(path, tmp_path):
    video = tmp_path / "clip.gif"
    assert main(["play", str(path), "--record", str(video), "--seconds", "0.5", "--width", "96",
                 "--height", "72"]) == 0
    assert video.stat().st_size > 0


@pytest.mark.parametrize("path", sorted(Path("policies").glob("*.pt")), ids=lambda p: p.stem)
def test_a_policy_saved_before_a_setting_existed_runs_with_its_default(path, monkeypatch, tmp_path):
    """The shipped policies ran stable PD, most of them saved before sim.controller existed. A per-character YAML
    that later sets it (here: motors) must not change the env they are played in: they keep stable PD."""
    import charctl.envs.config as env_config
    import charctl.envs.imitation as imitation

    configs = tmp_path / "env"
    configs.mkdir()
    for yaml_file in Path(env_config.CONFIGS_DIR, "env").glob("*.yaml"):
        text = yaml_file.read_text().replace("\nsim:\n", "\nsim:\n  controller: motors\n")
        if "\nsim:\n" not in text:
            text += "\nsim:\n  controller: motors\n"
        (configs / yaml_file.name).write_text(text)
    with_motors = functools.partial(env_config.load_env_config, directory=configs)
    monkeypatch.setattr(imitation, "load_env_config", with_motors)
    character, motion = path.stem.split("_", 1)
    assert with_motors(character, motion).sim.controller == "motors"
    env = open_policy(path).make_env()
    try:
        assert env.unwrapped.config.sim.controller == "stable_pd"
    finally:
        env.close()
