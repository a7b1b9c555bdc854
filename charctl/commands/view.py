"""`charctl view CHARACTER MOTION --out clip.gif`: render a clip kinematically, headless."""

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="render a motion clip on its character to a GIF or PNG (headless)",
        description="Render the kinematic clip (no physics) with PyBullet's TinyRenderer: no display needed.",
        epilog="example: charctl view humanoid spinkick --out spinkick.gif\n"
               "         charctl view dog trot --out trot.png --at 0.2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("character", help="character name (see 'charctl motions')")
    parser.add_argument("motion", help="clip name, or a path to a .bvh on this character's skeleton")
    parser.add_argument("--out", type=Path, required=True, help="output .gif (animation) or .png (one frame)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second of the GIF (default 30)")
    parser.add_argument("--seconds", type=float, default=None, help="length (default: one pass of the clip)")
    parser.add_argument("--at", type=float, default=0.0, help="start time in the clip, seconds")
    parser.add_argument("--width", type=int, default=320, help="picture width in pixels (default 320)")
    parser.add_argument("--height", type=int, default=240, help="picture height in pixels (default 240)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from charctl.character.model import load_character
    from charctl.motion.clip import load_clip, load_clip_file
    from charctl.sim.render import Camera, KinematicScene, write_frames
    from charctl.util.errors import CharctlError

    if args.out.suffix.lower() not in (".gif", ".png", ".mp4"):
        raise CharctlError(f"--out {args.out}: pictures are .gif, .png or .mp4")
    for flag, value in (("--width", args.width), ("--height", args.height)):
        if not 16 <= value <= 4096:
            raise CharctlError(f"{flag} {value}: out of range; allowed: 16 to 4096 pixels")
    if not 0 < args.fps <= 240:
        raise CharctlError(f"--fps {args.fps:g}: out of range; allowed: more than 0, at most 240")
    if args.seconds is not None and not 0 < args.seconds <= 600:
        raise CharctlError(f"--seconds {args.seconds:g}: out of range; allowed: more than 0, at most 600")
    if not 0 <= args.at < 1e6:
        raise CharctlError(f"--at {args.at:g}: out of range; allowed: 0 or more")
    character = load_character(args.character)
    if args.motion.endswith(".bvh"):
        clip = load_clip_file(character, Path(args.motion))
    else:
        clip = load_clip(character, args.motion)
    seconds = clip.duration if args.seconds is None else args.seconds
    count = 1 if args.out.suffix.lower() == ".png" else max(1, int(round(seconds * args.fps)) + 1)
    times = args.at + np.arange(count) / args.fps
    camera = Camera(width=args.width, height=args.height, distance=3.0 if character.name != "dog" else 2.2)
    with KinematicScene(character, camera) as scene:
        frames = [scene.render(clip.sample(t, velocities=False)) for t in tqdm(times, desc="render", unit="frame",
                                                                               disable=count < 10)]
    write_frames(args.out, frames, args.fps)
    print(f"wrote {args.out} ({len(frames)} frame{'s' if len(frames) > 1 else ''}, {args.width}x{args.height})")
    return 0
