"""`charctl bench env` prints the env rate, the raw physics rate and their ratio."""

import re

from charctl.cli import main


def test_bench_env_reports_rates_and_ratio(capsys):
    assert main(["bench", "env", "humanoid", "spinkick", "--seconds", "0.3"]) == 0
    out = capsys.readouterr().out
    env_rate = float(re.search(r"env control steps/s \(1 process\):\s+([\d.]+)", out).group(1))
    raw_rate = float(re.search(r"raw physics control steps/s:\s+([\d.]+)", out).group(1))
    ratio = float(re.search(r"ratio env / raw:\s+([\d.]+)", out).group(1))
    assert env_rate > 0 and raw_rate > 0
    assert abs(ratio - env_rate / raw_rate) < 0.01
    assert "substeps 3 (90 Hz physics), PD mode implicit motors" in out  # configs/env/humanoid.yaml


def test_bench_env_peer_measures_pybullets_deepmimic_port(capsys):
    assert main(["bench", "env", "humanoid", "spinkick", "--seconds", "0.3", "--peer"]) == 0
    out = capsys.readouterr().out
    env_rate = float(re.search(r"env control steps/s \(1 process\):\s+([\d.]+)", out).group(1))
    port_rate = float(re.search(r"pybullet DeepMimic port steps/s:\s+([\d.]+)", out).group(1))
    ratio = float(re.search(r"ratio env / port:\s+([\d.]+)", out).group(1))
    assert port_rate > 0 and abs(ratio - env_rate / port_rate) < 0.01


def test_bench_env_peer_refuses_characters_the_port_lacks(capsys):
    assert main(["bench", "env", "dog", "trot", "--seconds", "0.1", "--peer"]) != 0
    assert "humanoid3d clips only" in capsys.readouterr().err


def test_bench_env_measures_the_env_with_its_settings_changed(capsys):
    assert main(["bench", "env", "humanoid", "spinkick", "--seconds", "0.2", "--set", "env.sim.controller=stable_pd",
                 "--set", "env.sim.physics_hz=240"]) == 0
    assert "substeps 8 (240 Hz physics), PD mode stable PD re-sent each substep" in capsys.readouterr().out
    assert main(["bench", "env", "dog", "trot", "--seconds", "0.2", "--set", "env.sim.controller=motors",
                 "--set", "env.sim.physics_hz=240", "--set", "env.sim.motor_position_gain=0.5"]) == 0
    out = capsys.readouterr().out
    assert "substeps 8 (240 Hz physics), PD mode implicit motors sent once per control step (gains 0.5, 1)" in out


def test_bench_env_refuses_training_settings(capsys):
    assert main(["bench", "env", "humanoid", "spinkick", "--seconds", "0.1", "--set", "actor_lr=1"]) != 0
    assert "--set actor_lr: bench env takes env settings only" in capsys.readouterr().err
