"""Replaying a trained imitation policy in the physics simulation: in a PyBullet window or to a video.

The reference clip is drawn as a translucent ghost beside the simulated character. Pictures come from a world of
their own (charctl/play/scene.py) posed after each control step, so the ghost never enters the physics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from charctl.play.scene import GHOST_OFFSET, GHOST_RGBA, TEXT_OFFSET, Frame, Scene
from charctl.sim.bullet_pose import body_pose


@dataclass
class StepInfo:
    phase: float
    reward: float
    normalized_return: float
    time: float
    done: bool
    fell: bool


class Player:
    """Runs the policy in an imitation env, one control step at a time; `frame` is the picture of where it is."""

    def __init__(self, env, policy, horizon: int, seed: int, deterministic: bool, ghost: bool = True,
                 ghost_offset=GHOST_OFFSET):
        self.env, self.policy, self.horizon = env, policy, horizon
        self.imitation = env.unwrapped
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.episode = 0
        self.has_ghost = self.ghost_visible = ghost
        self.ghost_offset = np.asarray(ghost_offset, dtype=np.float64)
        self.obs = None
        self.total = 0.0
        self.last = StepInfo(0.0, 0.0, 0.0, 0.0, False, False)

    @property
    def root_position(self) -> np.ndarray:
        state = self.imitation.sim.state()
        return state.root_pos

    def view_target(self, state) -> np.ndarray:
        """Where the camera looks: between the character and its ghost, or on the character alone without one. Across
        the ground it takes the character's middle (the mean of its bodies' centres of mass; the dog's root is at
        its hips, 0.2 m behind it), its height from the root."""
        centre = np.append(state.com_pos[:, :2].mean(axis=0), state.root_pos[2])
        if self.ghost_visible:
            return centre + self.ghost_offset / 2
        return centre

    def toggle_ghost(self) -> None:
        self.ghost_visible = self.has_ghost and not self.ghost_visible

    def frame(self, text: str = "") -> Frame:
        """The picture now: the character as simulated, the reference pose beside it (when shown), the camera's
        target, and `text` anchored near the character."""
        ghost = None
        if self.ghost_visible:
            reference = self.imitation.reference_pose()
            beside = replace(reference, root_pos=reference.root_pos + self.ghost_offset)
            ghost = body_pose(self.imitation.character, beside)
        state = self.imitation.sim.state()
        return Frame(character=self.imitation.sim.body_pose(), ghost=ghost,
                     target=self.view_target(state).tolist(), text=text,
                     text_position=(state.root_pos + TEXT_OFFSET).tolist())

    def reset(self) -> None:
        from charctl.awr.rollout import evaluation_seed

        self.obs, info = self.env.reset(seed=evaluation_seed(self.seed, self.episode, held_out=True))
        self.episode += 1
        self.total = 0.0
        self.last = StepInfo(info["phase"], 0.0, 0.0, 0.0, False, False)

    def step(self) -> StepInfo:
        action = self.policy.act(self.obs, deterministic=self.deterministic, rng=self.rng)
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        self.total += reward
        self.last = StepInfo(phase=info.get("phase", 0.0), reward=float(reward),
                             normalized_return=self.total / self.horizon,
                             time=info["time"] - self.imitation.start_time, done=terminated or truncated,
                             fell=bool(terminated))
        return self.last

    def status_text(self) -> str:
        s = self.last
        return (f"t {s.time:5.2f} s  phase {s.phase:.2f}  reward {s.reward:.3f}  "
                f"normalised return {s.normalized_return:.3f}" + ("  FELL" if s.fell else ""))


# --------------------------------------------------------------------------------------------- GUI window
@dataclass
class GuiRun:
    episodes: int  # finished
    speed: float  # simulated seconds per wall-clock second since the last pause (1.0: real time)
    frames_per_second: float  # frames the window drew


def run_gui(player: Player, window, seconds: float | None, episodes: int | None, note=None) -> GuiRun:
    """The interactive loop: the simulation paced to the control clock (real time), the window (charctl/play/window.py,
    or anything with its `offer`/`keys`/`frames`) handed a frame whenever it is ready for one. `note(text)` is told
    once when the machine cannot simulate in real time."""
    dt = player.imitation.dt
    player.reset()
    window.offer(lambda: player.frame(_status(player, False)))  # before the clock starts: it opens on the scene
    paused, played = False, 0
    clock = RealTimeClock(dt)
    while True:
        keys = window.keys()
        if "quit" in keys:
            break
        if "pause" in keys:
            paused = not paused
            clock.restart()
        if "ghost" in keys:
            player.toggle_ghost()
        if "reset" in keys:
            player.reset()
        if not paused or "step" in keys:
            if player.step().done:
                played += 1
                if episodes is not None and played >= episodes:
                    break
                player.reset()
        # skipped while the window still draws the last one: never waited for
        window.offer(lambda: player.frame(_status(player, paused)))
        if seconds is not None and clock.elapsed() >= seconds:
            break
        clock.wait()
        if note is not None and not paused and clock.too_slow():
            note(f"the simulation runs at {clock.speed():.2f}x real time: this machine cannot simulate a "
                 f"{dt * 1000:.0f} ms control step in time")
    return GuiRun(played, clock.speed(), window.frames / max(clock.elapsed(), 1e-9))


def _status(player: Player, paused: bool) -> str:
    from charctl.play.window import KEYS_HELP

    return f"{player.status_text()}{'  [paused]' if paused else ''}   |   {KEYS_HELP}"


class RealTimeClock:
    """Sleeps to the next tick of a `dt` clock. Behind it, it catches up by not sleeping, up to `max_lag` seconds
    (a hiccup costs no simulated time); further behind, it carries on from now. Measures how fast simulated time
    runs against the wall clock."""

    def __init__(self, dt: float, judge_after: float = 5.0, max_lag: float = 0.25):
        self.dt, self.judge_after, self.max_lag = dt, judge_after, max_lag
        self.started = time.monotonic()
        self.restart()
        self.reported = False

    def restart(self) -> None:
        self.next_tick = time.monotonic() + self.dt
        self.since, self.ticks = time.monotonic(), 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next_tick:
            time.sleep(self.next_tick - now)
        elif now - self.next_tick > self.max_lag:
            self.next_tick = now
        self.next_tick += self.dt
        self.ticks += 1

    def speed(self) -> float:
        """Simulated seconds per wall-clock second since the last restart (1.0: real time)."""
        return self.ticks * self.dt / max(time.monotonic() - self.since, 1e-9)

    def too_slow(self, threshold: float = 0.9) -> bool:
        """True once, when after `judge_after` seconds the clock runs below `threshold` of real time."""
        if self.reported or time.monotonic() - self.since < self.judge_after or self.speed() >= threshold:
            return False
        self.reported = True
        return True


# --------------------------------------------------------------------------------------------- video
RESET_CAPTION_SECONDS = 0.5


def record(player: Player, path, seconds: float, episodes: int, width: int, height: int,
           camera_distance: float, progress=None, labels: bool = True) -> int:
    """Render episodes headless (TinyRenderer) into a .gif/.mp4; returns the number of frames.

    With `labels`, each frame carries a legend (policy / reference ghost), the episode and its time, the normalised
    return so far, and a caption for ~0.5 s after each reset. `progress(frames, planned)`: frames written so far
    and the frames the video will have (fewer than first planned when an episode ends early)."""
    from charctl.sim.render import Camera, render_client, write_frames

    camera = Camera(width=width, height=height, distance=camera_distance)
    frames, fps = [], 1.0 / player.imitation.dt
    steps_per_episode = int(round(seconds * fps))
    planned = episodes * (steps_per_episode + 1)
    caption_frames = int(round(RESET_CAPTION_SECONDS * fps))
    ended = None
    scene = Scene.direct(player.imitation.character, ghost=player.has_ghost)

    def add_frame(episode: int, caption: str | None) -> None:
        picture = player.frame()
        scene.show(picture)
        frame = render_client(scene.client, np.asarray(picture.target), camera)
        frames.append(label_frame(frame, player, episode, caption) if labels else frame)
        if progress is not None:
            progress(len(frames), planned)

    try:
        for episode in range(1, episodes + 1):
            player.reset()
            caption = None if episode == 1 else f"reset: {ended}, episode {episode} starts"
            for step in range(steps_per_episode + 1):
                add_frame(episode, caption if step < caption_frames else None)
                if step == steps_per_episode:
                    ended = f"{seconds:g} s shown"
                    break
                info = player.step()
                if info.done:  # its last frame shows the end state; the video is that much shorter than planned
                    ended = "fell" if info.fell else "time limit"
                    planned -= steps_per_episode - (step + 1)
                    add_frame(episode, caption if step + 1 < caption_frames else None)
                    break
    finally:
        scene.close()
    write_frames(path, frames, fps)
    return len(frames)


def label_frame(frame: np.ndarray, player: Player, episode: int, caption: str | None) -> np.ndarray:
    """The frame with a legend (top left), episode, time and normalised return so far (top right), and an
    optional caption (bottom centre), drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(10, image.height // 28))
    pad, box = 4, max(8, image.height // 36)
    line = font.size + 3
    ghost = tuple(int(255 * c) for c in GHOST_RGBA[:3])
    legend = [("policy (simulated)", (110, 110, 115))]
    if player.ghost_visible:
        legend.append(("reference clip (ghost)", ghost))
    for i, (text, color) in enumerate(legend):
        y = pad + i * line
        draw.rectangle([pad, y + 2, pad + box, y + 2 + box], fill=color, outline=(0, 0, 0))
        draw.text((pad + box + 4, y), text, fill=(0, 0, 0), font=font)
    last = player.last
    right = [f"episode {episode}  t {last.time:4.1f} s", f"normalised return {last.normalized_return:.3f}"]
    if last.fell:
        right.append("FELL")
    for i, text in enumerate(right):
        width = draw.textlength(text, font=font)
        draw.text((image.width - pad - width, pad + i * line), text, fill=(0, 0, 0) if text != "FELL" else
                  (200, 0, 0), font=font)
    if caption:
        width = draw.textlength(caption, font=font)
        x, y = (image.width - width) / 2, image.height - pad - line
        draw.rectangle([x - 4, y - 2, x + width + 4, y + line], fill=(255, 220, 80))
        draw.text((x, y), caption, fill=(0, 0, 0), font=font)
    return np.asarray(image)


# --------------------------------------------------------------------------------------------- gymnasium tasks
def play_gym(env, policy, seed: int, deterministic: bool, seconds: float, episodes: int, frame_path=None,
             progress=None) -> tuple[int, list[float]]:
    """Run a Gym policy for `episodes` (each at most `seconds` of the env's frame rate); with `frame_path`, the
    env renders rgb_array frames into a video, else it draws its own window (render_mode="human").
    Returns (frames or steps, episode returns)."""
    from charctl.awr.rollout import evaluation_seed
    from charctl.sim.render import write_frames

    fps = float(env.metadata.get("render_fps") or 30)
    rng = np.random.default_rng(seed)
    frames, returns, steps = [], [], 0
    for j in range(episodes):
        obs, _ = env.reset(seed=evaluation_seed(seed, j, held_out=True))
        total = 0.0
        for _ in range(int(round(seconds * fps))):
            if frame_path is not None:
                frames.append(np.asarray(env.render(), dtype=np.uint8))
            action = policy.act(obs, deterministic=deterministic, rng=rng)
            obs, reward, terminated, truncated, _ = env.step(int(action) if policy.action.discrete else action)
            total += float(reward)
            steps += 1
            if progress is not None:
                progress(steps)
            if terminated or truncated:
                break
        returns.append(total)
    if frame_path is not None:
        write_frames(frame_path, frames, fps)
        return len(frames), returns
    return steps, returns
