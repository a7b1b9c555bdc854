"""`charctl export CHECKPOINT --out FILE.bvh`: the simulated character's motion as a BVH (or a clip's, --reference)."""

import argparse
from pathlib import Path

from charctl.commands import seed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write what a trained policy makes the character do (or a reference clip) as a BVH",
        description="Run a trained policy deterministically from a held-out start state (the first episode "
        "'charctl play' shows) and write the simulated character's motion as a BVH on the character's own "
        "skeleton (joint offsets from its model, metres, y-up, root position channels, one Euler order for "
        "every joint) that Blender and other BVH tools import. --reference CHARACTER MOTION writes the clip "
        "itself instead. The file is written whole or not at all. docs/motions.md describes the format.",
        epilog="example: charctl export policies/humanoid_spinkick.pt --out spinkick_sim.bvh --seconds 5\n"
               "         charctl export --reference dog trot --out trot.bvh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help="a .pt file written by charctl train")
    parser.add_argument("--reference", nargs=2, metavar=("CHARACTER", "MOTION"),
                        help="export this clip (a name in motions/) instead of a policy's motion")
    parser.add_argument("--out", type=Path, required=True, help="the .bvh file to write")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length (default: 10 s for a policy, one pass of the clip for --reference; a "
                        "looping clip continues past its end)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the held-out start state (default 0)")
    parser.add_argument("--euler", choices=["ZXY", "XYZ", "ZYX"], default="ZXY",
                        help="rotation channel order (default ZXY)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from charctl.motion.bvh import write_bvh
    from charctl.motion.export import export_bvh, frame_count, reference_clip
    from charctl.util.errors import CharctlError

    if (args.checkpoint is None) == (args.reference is None):
        raise CharctlError("give a CHECKPOINT or --reference CHARACTER MOTION (one of them)")
    if args.out.suffix.lower() != ".bvh":
        raise CharctlError(f"--out {args.out}: the output is a .bvh file")
    if args.out.exists() and not args.force:
        raise CharctlError(f"{args.out}: already exists (pass --force to overwrite)")
    if args.seconds is not None:
        frame_count(args.seconds, 1.0)  # checks the range before anything is loaded or simulated
    fell = False
    if args.reference is not None:
        from charctl.motion.clip import load_clip

        character, motion = args.reference
        clip = reference_clip(load_clip(character, motion), args.seconds)
        what = f"{clip.character.name} {motion} (reference)"
    else:
        from charctl.play.export import simulated_clip
        from charctl.play.policy_file import open_policy

        task = open_policy(args.checkpoint)
        if not task.is_imitation:
            raise CharctlError(f"{task.path}: a {task.env_id} policy has no character skeleton to export")
        clip, fell = simulated_clip(task, 10.0 if args.seconds is None else args.seconds, args.seed)
        what = f"{task.name} (simulated, seed {args.seed})"
    write_bvh(args.out, export_bvh(clip, args.euler))
    print(f"wrote {args.out}: {what}, {clip.num_frames} frames at {1.0 / clip.frame_time:g} fps, "
          f"{clip.duration:.3f} s" + (" (the character fell; the file ends there)" if fell else ""))
    return 0
