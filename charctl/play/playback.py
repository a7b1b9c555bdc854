"""Replaying a trained imitation policy in the physics simulation: in a PyBullet GUI window or to a video.

The reference clip is drawn as a translucent, non-colliding ghost beside the simulated character; the ghost
is re-posed after every control step (before anything is drawn), so physics never moves it visibly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from charctl.character.model import Character
from charctl.character.pose import Pose
from charctl.sim.bullet_pose import apply_pose
from charctl.util.quiet import import_pybullet

pybullet = import_pybullet()  # without its build banner

GHOST_RGBA = (0.35, 0.65, 1.0, 0.35)
# Beside the character as the default camera (yaw 30 degrees) sees it: along the picture's horizontal axis, to the
# right and so ahead of the character, which falls back from it rather than into it when it lags the clip.
GHOST_OFFSET = (1.0, 0.6, 0.0)


class Ghost:
    """A second copy of the character that shows the reference pose; it collides with nothing."""

    def __init__(self, sim, character: Character, offset=GHOST_OFFSET):
        self.client, self.character = sim.display_client, character
        self.offset = np.asarray(offset, dtype=np.float64)
        p = dict(physicsClientId=self.client)
        if sim.display_client == sim.client:
            self.body = sim.load_extra_body(str(character.urdf_path), flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        else:  # a window mirroring the physics world: the ghost lives in the window only
            self.body = pybullet.loadURDF(str(character.urdf_path), flags=pybullet.URDF_USE_INERTIA_FROM_FILE, **p)
        for link in range(-1, character.num_joints - 1):
            pybullet.setCollisionFilterGroupMask(self.body, link, 0, 0, **p)
            pybullet.changeVisualShape(self.body, link, rgbaColor=GHOST_RGBA, **p)
        self.visible = True

    def show(self, pose: Pose) -> None:
        if not self.visible:
            return
        moved = Pose(root_pos=pose.root_pos + self.offset, root_rot=pose.root_rot, joint_rot=pose.joint_rot)
        apply_pose(self.client, self.body, self.character, moved)

    def toggle(self) -> None:
        self.visible = not self.visible
        if not self.visible:  # park it far below the ground
            pybullet.resetBasePositionAndOrientation(self.body, [0, 0, -100], [0, 0, 0, 1],
                                                     physicsClientId=self.client)


@dataclass
class StepInfo:
    phase: float
    reward: float
    normalized_return: float
    time: float
    done: bool
    fell: bool


class Player:
    """Runs the policy in an imitation env, one control step at a time, keeping the ghost in step."""

    def __init__(self, env, policy, horizon: int, seed: int, deterministic: bool, ghost: bool = True,
                 ghost_offset=GHOST_OFFSET):
        self.env, self.policy, self.horizon = env, policy, horizon
        self.imitation = env.unwrapped
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.episode = 0
        self.ghost = Ghost(self.imitation.sim, self.imitation.character, ghost_offset) if ghost else None
        self.obs = None
        self.total = 0.0
        self.last = StepInfo(0.0, 0.0, 0.0, 0.0, False, False)

    @property
    def root_position(self) -> np.ndarray:
        state = self.imitation.sim.state()
        return state.root_pos

    def view_target(self) -> np.ndarray:
        """Where the camera looks: between the character and its ghost (the character alone without one)."""
        root = self.root_position
        if self.ghost is not None and self.ghost.visible:
            return root + self.ghost.offset / 2
        return root

    def reset(self) -> None:
        from charctl.awr.rollout import evaluation_seed

        self.obs, info = self.env.reset(seed=evaluation_seed(self.seed, self.episode, held_out=True))
        self.episode += 1
        self.total = 0.0
        self.last = StepInfo(info["phase"], 0.0, 0.0, 0.0, False, False)
        self._show_ghost()

    def step(self) -> StepInfo:
        action = self.policy.act(self.obs, deterministic=self.deterministic, rng=self.rng)
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        self.total += reward
        self.last = StepInfo(phase=info.get("phase", 0.0), reward=float(reward),
                             normalized_return=self.total / self.horizon,
                             time=info["time"] - self.imitation.start_time, done=terminated or truncated,
                             fell=bool(terminated))
        self._show_ghost()
        return self.last

    def _show_ghost(self) -> None:
        if self.ghost is not None:
            self.ghost.show(self.imitation.reference_pose())

    def status_text(self) -> str:
        s = self.last
        return (f"t {s.time:5.2f} s  phase {s.phase:.2f}  reward {s.reward:.3f}  "
                f"normalised return {s.normalized_return:.3f}" + ("  FELL" if s.fell else ""))


# --------------------------------------------------------------------------------------------- GUI window
KEYS = {"pause": ord(" "), "step": ord("n"), "reset": ord("r"), "ghost": ord("g"), "quit": ord("q")}
KEYS_HELP = "space pause  n step  r reset  g ghost  q quit"


def _pressed(events: dict, key: int) -> bool:
    return bool(events.get(key, 0) & pybullet.KEY_WAS_TRIGGERED)


def run_gui(player: Player, seconds: float | None, episodes: int | None, screenshot=None,
            camera_distance: float = 3.0, text_hz: float = 2.0, note=None) -> int:
    """The interactive loop, paced to the control clock (real time). Returns the number of episodes played.

    The window draws nothing until the first pose and the camera are set (Simulation.open_display starts it with
    rendering off). Each call into a GUI client waits for its render thread; text is the slowest (0.2-0.3 s a line
    under software OpenGL on a loaded machine), so status and keys share one line, which changes `text_hz` times a
    second. `note(text)` is told once when the machine cannot keep up."""
    sim = player.imitation.sim
    client = sim.display_client
    p = dict(physicsClientId=client)
    dt = player.imitation.dt
    player.reset()
    sim.show()
    _follow(player, camera_distance, p)
    pybullet.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1, **p)  # the scene is set up: show it
    text_id = -1
    paused, played, shown, drawn_at = False, 0, None, -np.inf
    clock = RealTimeClock(dt)
    while True:
        events = pybullet.getKeyboardEvents(**p)
        if _pressed(events, KEYS["quit"]):
            break
        if _pressed(events, KEYS["pause"]):
            paused = not paused
            clock.restart()
        if _pressed(events, KEYS["ghost"]) and player.ghost is not None:
            player.ghost.toggle()
            player._show_ghost()
        if _pressed(events, KEYS["reset"]):
            player.reset()
        if not paused or _pressed(events, KEYS["step"]):
            info = player.step()
            if info.done:
                played += 1
                if episodes is not None and played >= episodes:
                    break
                player.reset()
        sim.show()
        _follow(player, camera_distance, p)
        status = player.status_text() + ("  [paused]" if paused else "")
        if time.monotonic() - drawn_at >= 1.0 / text_hz or (paused and status != shown):
            root = player.root_position  # the text starts here (left-aligned): up and to the left of the character
            text_id = pybullet.addUserDebugText(f"{status}   |   {KEYS_HELP}", [root[0], root[1] - 0.8, root[2] + 0.9],
                                                textColorRGB=[0.0, 0.0, 0.0], textSize=1.0,
                                                replaceItemUniqueId=text_id, **p)
            shown, drawn_at = status, time.monotonic()
        if seconds is not None and clock.elapsed() >= seconds:
            break
        clock.wait()
        if note is not None and not paused and clock.too_slow():
            note(f"the window runs at {clock.speed():.2f}x real time: this machine cannot draw and simulate "
                 f"a {dt * 1000:.0f} ms step in time (software OpenGL?)")
    if screenshot is not None:
        save_window(client, screenshot, player.view_target(), camera_distance)
    return played


class RealTimeClock:
    """Sleeps to the next tick of a `dt` clock; behind it, it carries on from now (no catching up in a burst) and
    measures how fast simulated time runs against the wall clock."""

    def __init__(self, dt: float, judge_after: float = 2.0):
        self.dt, self.judge_after = dt, judge_after
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
            self.next_tick += self.dt
        else:
            self.next_tick = now + self.dt
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


def _follow(player: Player, distance: float, p: dict) -> None:
    target = player.view_target()
    pybullet.resetDebugVisualizerCamera(distance, 30.0, -15.0, [target[0], target[1], 0.7 * target[2]], **p)


def save_window(client: int, path, target: np.ndarray, distance: float, width: int = 640, height: int = 480) -> None:
    """A picture rendered by the GUI's own OpenGL renderer (not TinyRenderer): proof the window draws."""
    from charctl.sim.render import Camera, render_client, write_frames

    frame = render_client(client, np.asarray(target), Camera(width, height, distance),
                          renderer=pybullet.ER_BULLET_HARDWARE_OPENGL)
    write_frames(path, [frame], 30.0)


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

    def add_frame(episode: int, caption: str | None) -> None:
        frame = render_client(player.imitation.sim.client, player.view_target(), camera)
        frames.append(label_frame(frame, player, episode, caption) if labels else frame)
        if progress is not None:
            progress(len(frames), planned)

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
    if player.ghost is not None and player.ghost.visible:
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
