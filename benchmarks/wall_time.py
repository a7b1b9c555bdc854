"""Wall time per sample on a Gym task: charctl AWR vs Stable-Baselines3 PPO (defaults), run one after the other.

    .venv/bin/python benchmarks/wall_time.py --env Hopper-v5 --samples 100000

Prints samples/s and the projected minutes per 1M samples for each, and AWR's split between rollout and update
(from its progress.csv). Nothing else should be running for the numbers to compare.
"""

import argparse
import csv
import tempfile
import time


def time_ppo(env_id: str, samples: int, seed: int) -> float:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", env_id, seed=seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=samples)
    return time.perf_counter() - start


def time_awr(env_id: str, samples: int, seed: int, workers: int) -> tuple[float, dict]:
    from charctl.awr.config import load_config
    from charctl.awr.trainer import train

    config = load_config(env_id, overrides={"samples": samples, "seed": seed, "num_workers": workers,
                                            "eval_every": 0, "eval_episodes": 0})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train(env_id, {}, config, out, progress=False)
        elapsed = time.perf_counter() - start
        with open(f"{out}/progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    split = {key: sum(float(r[key]) for r in rows) for key in ("rollout_seconds", "update_seconds",
                                                                "checkpoint_seconds")}
    return elapsed * samples / result.samples, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    awr_seconds, split = time_awr(args.env, args.samples, args.seed, args.workers)
    ppo_seconds = time_ppo(args.env, args.samples, args.seed)
    per_million = 1e6 / args.samples / 60
    print(f"{args.env}, {args.samples} samples each")
    print(f"charctl AWR ({args.workers} workers): {args.samples / awr_seconds:.0f} samples/s, "
          f"{awr_seconds * per_million:.1f} min per 1M; rollout {split['rollout_seconds']:.1f} s, "
          f"update {split['update_seconds']:.1f} s, checkpoints {split['checkpoint_seconds']:.1f} s")
    print(f"SB3 PPO (defaults, 1 process): {args.samples / ppo_seconds:.0f} samples/s, "
          f"{ppo_seconds * per_million:.1f} min per 1M")
    print(f"ratio (PPO time / AWR time): {ppo_seconds / awr_seconds:.2f}")


if __name__ == "__main__":
    main()
