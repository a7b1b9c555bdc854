"""Samples per second of real `charctl train` runs of a few setting variants, side by side.

    python benchmarks/train_variants.py humanoid spinkick --rounds 3 --iterations 6 \\
        --variant sequential:overlap_collection=false --variant overlap:overlap_collection=true
    python benchmarks/train_variants.py dog trot --rounds 2 --iterations 4 \\
        --variant one:torch_threads=1 --variant two:torch_threads=2

Each round trains a fresh run of each variant in turn (evaluation off, `--workers 2`), so a load that changes
slowly weighs on all alike; every iteration after the first is one measurement (the first has no update before
it). A measurement is the samples over the wall time between two iterations' ends (checkpoint writes included).
Prints each variant's median samples/s, its median rollout wait and update time, and each ratio to the first.
"""

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from charctl.awr.config import load_config


def one_run(character: str, motion: str, settings: list[str], iterations: int, out: Path) -> list[dict]:
    samples_per_iter = load_config(character=character, motion=motion).samples_per_iter
    sets = [arg for setting in settings for arg in ("--set", setting)]
    subprocess.run([sys.executable, "-m", "charctl", "train", character, motion, "--samples",
                    str(samples_per_iter * iterations), "--workers", "2", "--out", str(out), "--no-progress",
                    "--set", "eval_every=0", "--set", "eval_episodes=0", *sets], check=True, stdout=subprocess.DEVNULL)
    with open(out / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for before, row in zip(rows, rows[1:]):
        row["rate"] = (float(row["samples"]) - float(before["samples"])) / \
            (float(row["wall_time"]) - float(before["wall_time"]))
    return rows[1:]


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, settings = text.partition(":")
    if not name or not settings:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...]")
    return name, settings.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("character")
    parser.add_argument("motion")
    parser.add_argument("--variant", type=parse_variant, action="append", required=True,
                        help="NAME:KEY=VALUE[,KEY=VALUE...] (AWR settings, as --set takes them); two or more")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=6)
    args = parser.parse_args()
    variants = dict(args.variant)
    rows: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, settings in variants.items():
                rows[name] += one_run(args.character, args.motion, settings, args.iterations,
                                      Path(tmp) / f"{name}-{round_}")
                print(f"round {round_ + 1}: {name} done", file=sys.stderr, flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in rows[name])

    first = next(iter(variants))
    for name in variants:
        print(f"{name:>12}: {median(name, 'rate'):7.1f} samples/s  rollout wait "
              f"{median(name, 'rollout_seconds'):5.2f} s  update {median(name, 'update_seconds'):5.2f} s  "
              f"({len(rows[name])} iterations)  ratio to {first}: {median(name, 'rate') / median(first, 'rate'):.2f}")


if __name__ == "__main__":
    main()
