"""`charctl play CHECKPOINT --gui` (a PyBullet window) or `--record out.mp4` (headless video)."""

import argparse
import sys
from pathlib import Path

from charctl.commands import seed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play", help="replay a trained policy in the simulation: a GUI window or a recorded video",
        description="Replay a trained imitation policy in the physics simulation with the reference clip as a "
        "translucent ghost beside it. --gui opens a PyBullet window (keys: space pause, n single step, r reset, "
        "g toggle ghost, q quit): the simulation runs in real time if the machine can simulate that fast, the "
        "window draws as many frames as the machine has time for, and the last line says how fast both went. "
        "--record renders a .mp4 or .gif headless, no display needed. The checkpoint names its character, clip and "
        "settings. Gymnasium policies play in their env's own renderer.",
        epilog="example: charctl play runs/dog_canter-s0/dog_canter.pt --gui\n"
               "         charctl play policies/dog_trot.pt --record trot.mp4 --seconds 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file written by charctl train")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--gui", action="store_true", help="open a PyBullet GUI window (needs a display)")
    mode.add_argument("--record", type=Path, metavar="FILE", help="write a video (.mp4 or .gif) headless")
    parser.add_argument("--seconds", type=float, default=None, help="GUI: stop after this long (default: until q); "
                        "record: length of each episode (default 10)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes to play (default: GUI until q, "
                        "record 1)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the start states (default 0)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean")
    parser.add_argument("--no-ghost", action="store_true", help="do not draw the reference clip")
    parser.add_argument("--no-labels", action="store_true", help="record: no legend, episode, time and return "
                        "drawn on the frames")
    parser.add_argument("--screenshot", type=Path, help="GUI: save the window's picture (.png) when it closes")
    parser.add_argument("--width", type=int, default=480, help="video width (default 480)")
    parser.add_argument("--height", type=int, default=360, help="video height (default 360)")
    parser.set_defaults(func=run)


def check_display() -> None:
    import os

    from charctl.util.errors import CharctlError

    if not os.environ.get("DISPLAY"):
        raise CharctlError("--gui needs a display (DISPLAY is not set); use --record out.mp4 to render headless, "
                           "or run under xvfb-run")


def run(args) -> int:
    from charctl.awr.rollout import one_blas_thread
    from charctl.play.policy_file import open_policy
    from charctl.util.errors import CharctlError

    if args.record is not None and args.record.suffix.lower() not in (".mp4", ".gif"):
        raise CharctlError(f"--record {args.record}: videos are .mp4 or .gif")
    if args.screenshot is not None and not args.gui:
        raise CharctlError("--screenshot goes with --gui (--record writes the frames already)")
    if args.episodes is not None and args.episodes < 1:
        raise CharctlError(f"--episodes must be at least 1, not {args.episodes}")
    for flag, value, low in (("--width", args.width, 16), ("--height", args.height, 16)):
        if not low <= value <= 4096:  # a 0-pixel video is an empty file; a huge one exhausts memory
            raise CharctlError(f"{flag} {value}: out of range; allowed: {low} to 4096 pixels")
    if args.seconds is not None and not 0 < args.seconds <= 3600:  # NaN fails this too
        raise CharctlError(f"--seconds {args.seconds}: out of range; allowed: more than 0, at most 3600")
    if args.gui:
        check_display()
    task = open_policy(args.checkpoint)
    with one_blas_thread():
        return play_gym_task(task, args) if not task.is_imitation else play_imitation_task(task, args)


def play_imitation_task(task, args) -> int:
    from tqdm import tqdm

    from charctl.play.playback import Player, record

    env = task.make_env()
    try:
        imitation = env.unwrapped
        distance = 2.2 if imitation.character.name == "dog" else 3.0
        player = Player(env, task.policy, imitation.config.horizon, args.seed, deterministic=not args.stochastic,
                        ghost=not args.no_ghost)
        if args.gui:
            play_in_window(task.name, player, args, distance)
        else:
            seconds = 10.0 if args.seconds is None else args.seconds
            episodes = args.episodes or 1
            total = episodes * (int(round(seconds / imitation.dt)) + 1)
            with tqdm(total=total, unit="frame", desc=f"record {args.record.name}") as bar:
                count = record(player, args.record, seconds, episodes, args.width, args.height, distance,
                               progress=lambda n, planned: _advance(bar, n, planned), labels=not args.no_labels)
            print(f"wrote {args.record} ({count} frames); last episode: {player.status_text()}")
    finally:
        env.close()
    return 0


def play_in_window(name: str, player, args, distance: float) -> None:
    from charctl.play.playback import run_gui
    from charctl.play.window import Window

    window = Window(player.imitation.character, ghost=player.has_ghost, camera_distance=distance)
    try:
        run = run_gui(player, window, args.seconds, args.episodes,
                      note=lambda text: print(f"charctl: {text}", file=sys.stderr, flush=True))
    finally:
        window.close(args.screenshot)
    print(f"{name}: {run.episodes} episode(s) finished; last: {player.status_text()}; simulated at {run.speed:.2f}x "
          f"real time, the window drew {run.frames_per_second:.1f} frames/s")


def _advance(bar, frames: int, planned: int) -> None:
    """The bar's total follows the frames the video will have (an episode that ends early has fewer)."""
    if bar.total != planned:
        bar.total = planned
    bar.update(frames - bar.n)


def play_gym_task(task, args) -> int:
    """A gymnasium policy: its env's own window (render_mode="human") or its rgb_array frames as a video."""
    import os

    from tqdm import tqdm

    from charctl.play.playback import play_gym
    from charctl.util.errors import CharctlError

    if args.record is not None and not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders offscreen without a display
    try:
        env = task.make_env(render_mode="rgb_array" if args.record is not None else "human")
    except Exception as err:  # a renderer that cannot start (no OpenGL, no pygame)
        raise CharctlError(f"{task.path}: cannot render {task.env_id}: {str(err).splitlines()[0]}") from None
    seconds = 10.0 if args.seconds is None else args.seconds
    episodes = args.episodes or 1
    try:
        with tqdm(unit="frame", desc=task.name, disable=args.record is None) as bar:
            count, returns = play_gym(env, task.policy, args.seed, not args.stochastic, seconds, episodes,
                                      args.record, progress=lambda n: bar.update(n - bar.n))
    finally:
        env.close()
    what = f"wrote {args.record} ({count} frames)" if args.record is not None else f"played {count} steps"
    print(f"{task.name}: {what}; episode returns " + ", ".join(f"{r:.1f}" for r in returns))
    return 0
