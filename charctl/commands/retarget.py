"""`charctl retarget SRC --character C --map MAP --name N`: a third-party clip as motions/<C>_<N>.bvh."""

import argparse
import re
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "retarget",
        help="retarget a BVH (or import a DeepMimic .txt) clip onto a character",
        description="Write motions/<character>_<name>.bvh from a BVH whose skeleton differs from the "
        "character's (joint names, rest pose, units, channel order, frame rate, up axis), using a map YAML "
        "(see docs/retargeting.md and configs/retarget/). The output is resampled to the character's frame "
        "rate, stands on the ground and respects hinge limits. A DeepMimic .txt clip of the character is "
        "imported as it is (no map).",
        epilog="example: charctl retarget 07_01.bvh --character humanoid --map configs/retarget/cmu_humanoid.yaml "
        "--name walk",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="SRC", help="source clip: .bvh (needs --map) or DeepMimic .txt")
    parser.add_argument("--character", required=True, help="target character (a name in characters/)")
    parser.add_argument("--map", type=Path, default=None, help="map YAML for a BVH source (configs/retarget/)")
    parser.add_argument("--name", required=True, help="clip name: writes <character>_<name>.bvh")
    parser.add_argument("--loop", choices=["wrap", "none", "cycle"], default=None,
                        help="none: the clip holds its last frame; wrap: it repeats as it is (a warning if its "
                        "ends do not meet); cycle (BVH): cut the best-matching cycle of at least 0.5 s, blend "
                        "its last 0.2 s onto its first frame, and write it as wrap (default: none for BVH, the "
                        "file's flag for .txt)")
    parser.add_argument("--fps", type=float, default=None,
                        help="output frame rate (default: the character YAML's fps, else 60)")
    parser.add_argument("--frames", metavar="A:B", default=None,
                        help="source frames A to B-1 only (either end may be left out, e.g. 1: or :600); "
                        "without it a calibration first frame (CMU's T-pose) is detected and dropped")
    parser.add_argument("--clamp-ball-joints", action="store_true",
                        help="also clamp ball joints to their limits (rotation-vector components)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write (default: motions/)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing clip")
    parser.set_defaults(func=run)


def check_clip(clip) -> None:
    import numpy as np

    from charctl.util.errors import CharctlError

    for what in ("root_pos", "root_rot", "joint_rot"):
        values = getattr(clip, what)
        if not np.all(np.isfinite(values)):
            raise CharctlError(f"{clip.name}: the retargeted clip has {int(np.sum(~np.isfinite(values)))} "
                               f"non-finite {what} values; nothing written (check the map's scales)")
    if clip.num_frames < 1:
        raise CharctlError(f"{clip.name}: the retargeted clip has {clip.num_frames} frame(s); nothing written")


def run(args) -> int:
    from charctl.character.model import load_character
    from charctl.motion import retarget
    from charctl.util.errors import CharctlError
    from charctl.util.paths import MOTIONS_DIR

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", args.name):
        raise CharctlError(f"--name '{args.name}': use letters, digits, '_' and '-' only")
    if not args.source.is_file():
        raise CharctlError(f"{args.source}: source file not found")
    character = load_character(args.character)
    out_dir = args.out_dir or MOTIONS_DIR
    out_path = out_dir / f"{character.name}_{args.name}.bvh"  # and its sidecar .yaml (Clip.save)
    for existing in (out_path, out_path.with_suffix(".yaml")):
        if existing.exists() and not args.force:
            raise CharctlError(f"{existing}: already exists (pass --force to overwrite)")

    fps = character.fps if args.fps is None else args.fps
    if not 0 < fps <= 1000:  # also refuses nan
        raise CharctlError(f"--fps must be a positive number of at most 1000, got {fps:g}")
    frames = parse_frames(args.frames) if args.frames is not None else None
    if frames is not None and args.source.suffix.lower() != ".bvh":
        raise CharctlError("--frames applies to a BVH source")
    if args.loop == "cycle" and args.source.suffix.lower() != ".bvh":
        raise CharctlError("--loop cycle applies to a BVH source (a DeepMimic clip is one cycle already)")
    if args.source.suffix.lower() == ".txt":
        clip = retarget.import_deepmimic(args.source, character, args.name, loop=args.loop, fps=fps)
    elif args.source.suffix.lower() == ".bvh":
        if args.map is None:
            raise CharctlError(f"{args.source}: a BVH source needs --map MAP.yaml (see configs/retarget/)")
        clip = retarget.retarget_bvh(args.source, character, args.map, args.name, fps=fps,
                                     loop=args.loop or "none", clamp_ball_joints=args.clamp_ball_joints,
                                     frames=frames, warn=lambda line: print(line, file=sys.stderr))
    else:
        raise CharctlError(f"{args.source}: unknown source type '{args.source.suffix}' (expected .bvh or .txt)")

    check_clip(clip)  # never write a clip charctl's own reader would reject
    out_path = clip.save(directory=out_dir, source=str(args.source))
    print(f"wrote {out_path}: {clip.num_frames} frames at {1.0 / clip.frame_time:g} fps, "
          f"{clip.duration:.3f} s, loop {'wrap' if clip.loop else 'none'}")
    return 0


def parse_frames(text: str) -> tuple[int | None, int | None]:
    """'A:B', 'A:' or ':B' with whole numbers >= 0 (checked against the clip's length by the retargeter)."""
    from charctl.util.errors import CharctlError

    match = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not match or not (match[1] or match[2]):
        raise CharctlError(f"--frames '{text}': expected A:B (first frame A, up to but not including B; "
                           f"whole numbers from 0, e.g. 1:600 or 1:)")
    return (int(match[1]) if match[1] else None, int(match[2]) if match[2] else None)
