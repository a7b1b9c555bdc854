"""`charctl plot RUN_DIR... --out curves.png`: learning curves vs samples and vs wall time."""

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot", help="plot learning curves of one or more runs (median and spread over seeds)",
        description="Plot the deterministic test return (normalised for imitation tasks) against samples and "
        "against wall time. Runs of the same task (e.g. several seeds) are drawn as one group: each run thin, "
        "their median thick, the band from min to max. Imitation tasks also get the no-policy baseline (dashed: PD "
        "targets straight from the clip, 8 held-out episodes in the run's env settings, measured once and cached in "
        "the run directory as reference_pd.json) and the AWR paper's result (dotted), on an axis from 0. A run "
        "trained by `charctl bench learn` (no test evaluations) is drawn from its marks' held-out returns "
        "(marks/*.json).",
        epilog="example: charctl plot runs/dog_trot-s0 runs/dog_trot-s1 --out trot.png\n"
               "         charctl plot runs/Hopper-v5-s* --out hopper.png --title 'Hopper-v5, 3 seeds'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by charctl train")
    parser.add_argument("--out", required=True, help="picture to write (.png, .svg or .pdf)")
    parser.add_argument("--title", help="figure title")
    parser.set_defaults(func=run)


def run(args) -> int:
    from charctl.play.curves import plot_runs

    runs = plot_runs(args.runs, args.out, args.title)
    tasks = sorted({r.task for r in runs})
    print(f"wrote {args.out}: {len(runs)} run(s) of {', '.join(tasks)}")
    return 0
