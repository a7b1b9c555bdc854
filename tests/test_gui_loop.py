"""The GUI loop against a stand-in window and a stand-in clock (no display, nothing timed): the simulation keeps the
control clock whatever the window does, the window gets a frame whenever it is ready for one, keys act, and one
note says when the machine cannot simulate in real time."""

from pathlib import Path

import numpy as np
import pytest

from charctl.play import playback
from charctl.play.playback import Player, RealTimeClock, run_gui
from charctl.play.policy_file import open_policy
from charctl.play.scene import GHOST_OFFSET
from charctl.play.window import KEYS_HELP, StatusLine

POLICY = Path(__file__).resolve().parents[1] / "policies" / "dog_trot.pt"


class FakeTime:
    """time.monotonic and time.sleep for the loop: sleeping moves the clock, so do the steps' costs."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class FakeWindow:
    """Ready for a frame once in `every` offers (a window slower than the simulation); keys from a script, one
    entry per time the loop asks."""

    def __init__(self, every: int = 1, keys=()):
        self.every, self.script = every, list(keys)
        self.offers, self.shown = 0, []

    @property
    def frames(self) -> int:
        return len(self.shown)

    def offer(self, make_frame) -> bool:
        self.offers += 1
        if (self.offers - 1) % self.every:
            return False
        self.shown.append(make_frame())
        return True

    def keys(self) -> list[str]:
        return self.script.pop(0) if self.script else []


@pytest.fixture
def player(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(playback, "time", clock)
    task = open_policy(POLICY)
    env = task.make_env()
    player = Player(env, task.policy, env.unwrapped.config.horizon, seed=0, deterministic=True)
    player.steps = 0
    player.step_cost = lambda n: 0.01  # seconds the n-th step takes: 10 ms of the 33 ms budget unless a test says
    original = player.step

    def step():
        player.steps += 1
        clock.now += player.step_cost(player.steps)
        return original()

    monkeypatch.setattr(player, "step", step)
    yield player
    env.close()


def test_the_simulation_keeps_real_time_and_the_window_takes_the_frames_it_can(player):
    window, notes = FakeWindow(every=4), []
    run = run_gui(player, window, seconds=2.0, episodes=None, note=notes.append)
    assert 59 <= player.steps <= 61  # 2 s at 30 Hz: never faster than the clock, and not held back by the window
    assert run.speed == pytest.approx(1.0, abs=0.03) and notes == []
    assert window.offers == player.steps + 1  # the first frame before any step, then one offer per step
    assert len(window.shown) == pytest.approx(window.offers / 4, abs=1)  # the rest skipped, never waited for
    assert run.frames_per_second == pytest.approx(len(window.shown) / 2.0, rel=0.05)
    first = window.shown[0]
    assert "t  0.00 s" in first.text and KEYS_HELP in first.text  # the window opens on the scene and its keys


def test_a_machine_too_slow_for_real_time_is_told_once(player):
    player.step_cost = lambda n: 0.1  # 0.33x real time at best
    notes = []
    run = run_gui(player, FakeWindow(), seconds=6.0, episodes=None, note=notes.append)
    assert len(notes) == 1 and "0.33x real time" in notes[0]
    assert run.speed == pytest.approx(1 / 3, abs=0.02)


def test_a_hiccup_is_caught_up_and_a_long_stall_is_not(player):
    player.step_cost = lambda n: 0.2 if n == 10 else 0.01  # a 0.2 s hiccup: caught up by not sleeping
    run_gui(player, FakeWindow(), seconds=2.0, episodes=None)
    assert 59 <= player.steps <= 61
    clock = RealTimeClock(0.1, max_lag=0.25)
    playback.time.sleep(1.0)  # 10 ticks behind: more than max_lag, so it carries on from now
    clock.wait()
    start = playback.time.monotonic()
    clock.wait()
    assert playback.time.monotonic() - start == pytest.approx(0.1)


def test_frames_show_the_character_its_ghost_beside_it_and_the_status(player):
    window = FakeWindow(keys=[[], ["quit"]])
    run_gui(player, window, seconds=None, episodes=None)
    with_ghost = window.shown[-1]  # after the one step
    reference = player.imitation.reference_pose()
    assert np.allclose(with_ghost.ghost.orientation, reference.root_rot)
    shift = np.asarray(with_ghost.ghost.position) - np.asarray(with_ghost.character.position)
    assert np.linalg.norm(shift[:2] - np.asarray(GHOST_OFFSET)[:2]) < 0.5  # beside it, give or take its lag
    state = player.imitation.sim.state()
    middle = np.append(state.com_pos[:, :2].mean(axis=0), state.root_pos[2])  # across the ground; root height
    assert np.allclose(with_ghost.target, middle + np.asarray(GHOST_OFFSET) / 2)  # the camera between the two
    assert "normalised return" in with_ghost.text
    assert np.allclose(with_ghost.text_position, state.root_pos + [0, -0.8, 0.9])
    player.toggle_ghost()
    without = player.frame()
    assert without.ghost is None and np.allclose(without.target, middle)  # the camera on the character alone


def test_keys_pause_step_ghost_reset_and_quit(player):
    window = FakeWindow(keys=[[], ["pause"], [], ["step"], ["ghost"], ["reset"], ["quit"]])
    run_gui(player, window, seconds=None, episodes=None)
    assert player.steps == 2  # one while running, none while paused, one single step with n
    assert not player.ghost_visible  # g hid the ghost
    assert player.episode == 2  # r started a second episode
    assert "[paused]" in window.shown[-1].text


def test_episodes_end_the_loop(player):
    player.imitation.config.time_limit = 0.2  # 6 steps an episode
    run = run_gui(player, FakeWindow(), seconds=None, episodes=2)
    assert run.episodes == 2 and player.steps == 12


def test_the_status_line_is_redrawn_only_when_changed_and_at_most_hz_times_a_second():
    line = StatusLine(hz=2.0)
    assert line.due("a", 0.0) and not line.due("b", 0.3) and line.due("b", 0.5) and not line.due("b", 2.0)


# --------------------------------------------------------------------------------------------- the window process
@pytest.fixture
def direct_window(monkeypatch):
    """charctl.play.window.Window with its process's GUI client swapped for a DIRECT one (no display needed; the
    forked process inherits the patches)."""
    import pybullet

    connect = pybullet.connect
    monkeypatch.setattr(pybullet, "connect", lambda mode, options="": connect(pybullet.DIRECT))
    task = open_policy(POLICY)
    env = task.make_env()
    player = Player(env, task.policy, env.unwrapped.config.horizon, seed=0, deterministic=True)
    player.reset()
    yield player
    env.close()


def offer_until(window, player, frames: int, timeout: float = 120.0) -> list[str]:
    import time

    keys, deadline = [], time.monotonic() + timeout
    while window.frames < frames and not window.closed and time.monotonic() < deadline:
        window.offer(player.frame)
        keys += window.keys()
        time.sleep(0.01)
    return keys


def test_the_window_process_draws_frames_reports_keys_and_saves_its_picture(direct_window, monkeypatch, tmp_path):
    import imageio.v3 as iio
    import pybullet

    from charctl.play.window import Window

    presses = iter([{}, {ord("g"): pybullet.KEY_WAS_TRIGGERED, ord("x"): pybullet.KEY_WAS_TRIGGERED}])
    monkeypatch.setattr(pybullet, "getKeyboardEvents", lambda **kwargs: next(presses, {}))
    player = direct_window
    window = Window(player.imitation.character, ghost=True, camera_distance=2.2)
    try:
        keys = offer_until(window, player, frames=3)
        assert window.frames >= 3 and keys == ["ghost"]  # the window's keys by name; others ignored
    finally:
        window.close(tmp_path / "shot.png")
    assert window.closed and not window._process.is_alive()
    picture = iio.imread(tmp_path / "shot.png").astype(int)
    spread = picture.max(axis=-1) - picture.min(axis=-1)
    assert np.mean((spread < 25) & (picture.max(axis=-1) < 200)) > 0.005  # the grey character


def test_a_window_that_cannot_start_or_goes_away_is_told(direct_window, monkeypatch):
    import pybullet

    from charctl.play.window import Window
    from charctl.util.errors import CharctlError

    player = direct_window
    window = Window(player.imitation.character, ghost=False, camera_distance=2.2)
    offer_until(window, player, frames=1)
    window._process.kill()  # as when its user closes it
    window._process.join(30)
    drawn = window.frames  # 1 or 2: a second frame may have been drawn and counted before the kill
    assert offer_until(window, player, frames=drawn + 1, timeout=5) == ["quit"] and window.closed
    window.close()

    def broken(*args, **kwargs):
        raise pybullet.error("cannot load")

    monkeypatch.setattr(pybullet, "loadURDF", broken)
    with pytest.raises(CharctlError, match="the PyBullet window failed: error: cannot load"):
        Window(player.imitation.character, ghost=False, camera_distance=2.2)
