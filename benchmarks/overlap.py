"""Samples per second of real `charctl train` runs with and without overlap_collection, side by side.

    python benchmarks/overlap.py humanoid spinkick --rounds 3 --iterations 6

Each round trains a fresh run of each variant in turn (evaluation off, `--workers 2`), so a load that changes
slowly weighs on both alike; every iteration after the first is one measurement (the first has no update to
overlap). A measurement is the samples over the wall time between two iterations' ends (checkpoint writes
included: the workers run through those too when overlapped). Prints each variant's median samples/s, its median
rollout wait and update time, and the ratio.
"""

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {"sequential": "false", "overlap": "true"}


def one_run(character: str, motion: str, overlap: str, iterations: int, out: Path) -> list[dict]:
    samples = 2048 * iterations
    subprocess.run([sys.executable, "-m", "charctl", "train", character, motion, "--samples", str(samples),
                    "--workers", "2", "--out", str(out), "--no-progress", "--set", "eval_every=0",
                    "--set", "eval_episodes=0", "--set", f"overlap_collection={overlap}"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(out / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for before, row in zip(rows, rows[1:]):
        row["rate"] = (float(row["samples"]) - float(before["samples"])) / \
            (float(row["wall_time"]) - float(before["wall_time"]))
    return rows[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("character")
    parser.add_argument("motion")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=6)
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, value in VARIANTS.items():
                rows[name] += one_run(args.character, args.motion, value, args.iterations,
                                      Path(tmp) / f"{name}-{round_}")

    def median(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in rows[name])

    for name in VARIANTS:
        print(f"{name:>10}: {median(name, 'rate'):7.1f} samples/s  rollout wait "
              f"{median(name, 'rollout_seconds'):5.2f} s  update {median(name, 'update_seconds'):5.2f} s  "
              f"({len(rows[name])} iterations)")
    print(f"ratio overlap / sequential: "
          f"{median('overlap', 'rate') / median('sequential', 'rate'):.2f}")


if __name__ == "__main__":
    main()
