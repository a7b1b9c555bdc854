"""`charctl average MARK.pt ... --out FILE.pt`: one policy, the mean of a run's kept policies' weights."""

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "average", help="average the weights of a run's kept policies into one policy (weight averaging)",
        description="Write one policy whose actor weights are the mean of the given policies' (stochastic weight "
        "averaging). They must be one run's, kept after its observation normaliser froze (imitation runs: past "
        "normalizer_samples, 1M); a run's marks/ (keep_every) are made for it. The rest of the file (normaliser, "
        "critic, env, settings, samples) is the latest policy's; the file holds no replay buffer, and lists the "
        "policies it averages. Compare it with the policies it came from on held-out starts (charctl eval).",
        epilog="example: charctl average runs/dog_trot-s0/marks/dog_trot-4*.pt --out dog_trot-avg.pt\n"
               "         charctl eval policies/dog_trot.pt dog_trot-avg.pt --episodes 32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help=".pt files written by charctl train")
    parser.add_argument("--out", type=Path, required=True, help="the .pt file to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from charctl.awr.averaging import average_checkpoints
    from charctl.awr.checkpoint import save_checkpoint
    from charctl.util.errors import CharctlError

    if args.out.suffix != ".pt":
        raise CharctlError(f"--out {args.out}: the output is a .pt file")
    if args.out.exists() and not args.force:
        raise CharctlError(f"{args.out}: already exists (pass --force to overwrite)")
    if any(Path(p).resolve() == args.out.resolve() for p in args.checkpoints):
        raise CharctlError(f"--out {args.out}: one of the policies to average; write the mean elsewhere")
    state = average_checkpoints(args.checkpoints)
    save_checkpoint(args.out, state)
    marks = sorted(entry["samples"] for entry in state["averaged_from"])
    print(f"wrote {args.out}: the mean of {len(marks)} policies' actor weights ({marks[0]:,} to {marks[-1]:,} "
          f"samples); normaliser, critic and settings from the latest")
    return 0
