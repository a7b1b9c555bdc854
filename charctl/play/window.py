"""The play window: a PyBullet GUI in a process of its own, at the lowest CPU priority, drawing the newest Frame
each time it has finished the last.

Why a process: PyBullet's GUI client keeps its render and command threads spinning whether or not anything changes
(about a core under software OpenGL), and every call into it waits for them. In the simulating process that slowed
the dog's physics by half or more with no call made, and the calls took ~0.12 s per 33 ms control step on a loaded
2-core machine (docs/benchmarks.md, "play"). Here the simulation never waits for the window: it offers each new
frame, the window takes one whenever it is ready and the rest are skipped, so the motion keeps the control clock and
the window draws as many frames as the machine has time left for.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from charctl.character.model import Character
from charctl.play.scene import Frame, Scene
from charctl.util.errors import CharctlError
from charctl.util.quiet import NativeOutputSilenced, import_pybullet

pybullet = import_pybullet()  # without its build banner

KEYS = {ord(" "): "pause", ord("n"): "step", ord("r"): "reset", ord("g"): "ghost", ord("q"): "quit"}
KEYS_HELP = "space pause  n step  r reset  g ghost  q quit"
# --nogui: the window opens without PyBullet's debug panes (turning them off after connecting shows them for a
# frame). The update time is in microseconds, whatever its name says: draw at most 30 times a second (the control
# rate; more would draw the same pose again) rather than PyBullet's 250.
CONNECT_OPTIONS = "--nogui --minGraphicsUpdateTimeMs=33000"
CAMERA_YAW, CAMERA_PITCH = 30.0, -15.0


class Window:
    """The parent's handle on the window process. `offer` and `keys` never wait for it."""

    def __init__(self, character: Character, ghost: bool, camera_distance: float, text_hz: float = 2.0,
                 start_timeout: float = 300.0):
        context = mp.get_context("fork")  # starts at once, without importing the command line's __main__ again
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, character, ghost, camera_distance, text_hz),
                                        name="charctl-window", daemon=True)
        self._process.start()
        child.close()
        self._keys: list[str] = []
        self.frames = 0  # frames the window has drawn
        self.closed = False  # by its user, or its process ended
        self._ready = False  # it has asked for a frame and not got one yet
        try:
            started = self._receive(start_timeout)  # its first request: connected, scene loaded
        except CharctlError:
            self.close()
            raise
        if not started:
            self.close()
            raise CharctlError(f"the PyBullet window did not start within {start_timeout:g} s")

    def offer(self, make_frame: Callable[[], Frame]) -> bool:
        """Hand the window a frame if it is ready for one (`make_frame` is called only then)."""
        if not self._ready and not self._receive():
            return False
        self._send(("frame", make_frame()))
        self._ready = False
        return True

    def keys(self) -> list[str]:
        """The keys pressed since last asked, by name (KEYS); "quit" once the window is closed."""
        if not self._ready:
            self._receive()
        keys, self._keys = self._keys, []
        return keys + (["quit"] if self.closed else [])

    def close(self, screenshot: Path | None = None) -> None:
        """Close the window, saving its picture to `screenshot` first, and wait for its process to end."""
        try:
            if not self.closed and (self._ready or self._receive(timeout=60.0)):
                self._send(("close", None if screenshot is None else str(screenshot)))
                if self._conn.poll(120.0):
                    kind, error = self._conn.recv()
                    if error:
                        raise CharctlError(f"--screenshot {screenshot}: {error}")
        except (EOFError, OSError):
            pass
        finally:
            self.closed = True
            self._process.join(10.0)
            if self._process.is_alive():
                self._process.terminate()
            self._conn.close()

    def _receive(self, timeout: float = 0.0) -> bool:
        """Take the window's next request for a frame (with the keys pressed since its last), if one comes within
        `timeout` seconds. Its process ending (its user closed it) marks the window closed."""
        if self.closed:
            return False
        try:
            if not self._conn.poll(timeout):
                if not self._process.is_alive():  # ended, though its end of the pipe may live on in another process
                    self.closed = True
                return False
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            self.closed = True
            return False
        if kind == "error":
            self.closed = True
            raise CharctlError(f"the PyBullet window failed: {payload}")
        codes, self.frames = payload
        self._keys += [KEYS[code] for code in codes if code in KEYS]
        self._ready = True
        return True

    def _send(self, message) -> None:
        try:
            self._conn.send(message)
        except OSError:  # its process has ended
            self.closed = True


class StatusLine:
    """Text is the slowest thing to draw (0.05-0.3 s a line under software OpenGL): redrawn only when it changed,
    at most `hz` times a second."""

    def __init__(self, hz: float):
        self.period = 1.0 / hz
        self.shown, self.drawn_at = None, -np.inf

    def due(self, text: str, now: float) -> bool:
        if text == self.shown or now - self.drawn_at < self.period:
            return False
        self.shown, self.drawn_at = text, now
        return True


# --------------------------------------------------------------------------------------------- the window process
def _serve(conn, character: Character, ghost: bool, distance: float, text_hz: float) -> None:
    """The window process: set up, then draw each frame it is sent and ask for the next, until told to close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the simulating process's to handle: it closes the window
    _lower_priority()
    NativeOutputSilenced().start()  # PyBullet's GUI prints OpenGL and thread reports for as long as it runs
    view = None
    try:
        view = _View(character, ghost, distance, text_hz)
        conn.send(("ready", ([], 0)))
        while True:
            kind, payload = conn.recv()
            if kind == "close":
                conn.send(("closed", view.close(payload)))
                return
            view.draw(payload)
            conn.send(("ready", (view.pressed(), view.frames)))
    except (EOFError, OSError):  # the simulating process has gone
        return
    except Exception as err:  # told to the parent, which raises it as a one-line error
        if view is not None and not view.connected():
            return  # its user closed the window: the parent sees the process end
        try:
            conn.send(("error", f"{type(err).__name__}: {err}"))
        except OSError:
            pass


def _lower_priority() -> None:
    """The simulation comes first: the window gets only CPU time nothing else wants (SCHED_IDLE, Linux), or the
    lowest nice level elsewhere."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


class _View:
    """The GUI client and its Scene, inside the window process."""

    def __init__(self, character: Character, ghost: bool, distance: float, text_hz: float):
        self.client = pybullet.connect(pybullet.GUI, options=CONNECT_OPTIONS)
        p = self.p = dict(physicsClientId=self.client)
        pybullet.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 0, **p)  # nothing until the first frame
        self.scene = Scene(character, self.client, ghost)
        self.distance = distance
        self.status = StatusLine(text_hz)
        self.text_id = -1
        self.frames = 0
        self.last: Frame | None = None

    def draw(self, frame: Frame) -> None:
        self.scene.show(frame)
        x, y, z = frame.target
        pybullet.resetDebugVisualizerCamera(self.distance, CAMERA_YAW, CAMERA_PITCH, [x, y, 0.7 * z], **self.p)
        if frame.text_position is not None and self.status.due(frame.text, time.monotonic()):
            self.text_id = pybullet.addUserDebugText(frame.text, frame.text_position, textColorRGB=[0.0, 0.0, 0.0],
                                                     textSize=1.0, replaceItemUniqueId=self.text_id, **self.p)
        if self.frames == 0:  # the scene is set up: show it
            pybullet.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1, **self.p)
        self.frames += 1
        self.last = frame

    def pressed(self) -> list[int]:
        events = pybullet.getKeyboardEvents(**self.p)
        return [key for key, state in events.items() if state & pybullet.KEY_WAS_TRIGGERED]

    def connected(self) -> bool:
        try:
            return bool(pybullet.isConnected(self.client))
        except pybullet.error:
            return False

    def close(self, screenshot: str | None) -> str | None:
        """Save the picture (if asked) and disconnect; returns an error message or None."""
        error = None
        if screenshot is not None and self.last is not None:
            try:
                save_window(self.client, Path(screenshot), np.asarray(self.last.target), self.distance)
            except Exception as err:  # reported by the parent
                error = str(err).splitlines()[0]
        self.scene.close()
        return error


def save_window(client: int, path: Path, target: np.ndarray, distance: float, width: int = 640,
                height: int = 480) -> None:
    """A picture rendered by the GUI's own OpenGL renderer (not TinyRenderer): proof the window draws."""
    from charctl.sim.render import Camera, render_client, write_frames

    frame = render_client(client, target, Camera(width, height, distance, CAMERA_YAW, CAMERA_PITCH),
                          renderer=pybullet.ER_BULLET_HARDWARE_OPENGL)
    write_frames(path, [frame], 30.0)
