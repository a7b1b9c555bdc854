"""The GUI loop (run headless on a DIRECT world): paced to the control clock, text redrawn a few times a second,
one note when the machine cannot keep up."""

import time
from pathlib import Path

import pybullet

from charctl.play.playback import Player, run_gui
from charctl.play.policy_file import open_policy

POLICY = Path(__file__).resolve().parents[1] / "policies" / "dog_trot.pt"


def test_gui_loop_paces_redraws_text_sparingly_and_says_when_slow(monkeypatch):
    task = open_policy(POLICY)
    env = task.make_env()
    player = Player(env, task.policy, env.unwrapped.config.horizon, seed=0, deterministic=True)
    texts, notes, steps = [], [], []
    original_text, original_step = pybullet.addUserDebugText, player.step
    monkeypatch.setattr(pybullet, "addUserDebugText", lambda *a, **k: texts.append(a[0]) or original_text(*a, **k))
    monkeypatch.setattr(player, "step", lambda: steps.append(1) or original_step())
    started = time.monotonic()
    run_gui(player, seconds=1.0, episodes=None, note=notes.append)
    assert time.monotonic() - started >= 1.0
    assert len(steps) >= 3
    assert len(steps) <= 1.0 * 30 + 2  # never faster than the 30 Hz clock
    elapsed = time.monotonic() - started
    assert len(texts) <= 2 * elapsed + 1 and "space pause" in texts[0]  # 2x a second, not every step
    assert notes == []  # too short a run to judge

    def slow_step():  # a machine that needs 0.1 s a step: 0.33x real time at best
        time.sleep(0.1)
        return original_step()

    monkeypatch.setattr(player, "step", slow_step)
    run_gui(player, seconds=3.0, episodes=None, note=notes.append)
    env.close()
    assert len(notes) == 1 and "x real time" in notes[0]
    speed = float(notes[0].split("runs at ")[1].split("x")[0])
    assert 0.05 < speed < 0.4
