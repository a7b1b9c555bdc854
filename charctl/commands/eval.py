"""`charctl eval CHECKPOINT`: mean return, the paper's normalised return, reward terms and fall rate."""

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a trained policy (normalised return, reward terms, fall rate)",
        description="Run a trained policy for whole episodes from seeded start states and report the return. "
        "Imitation tasks also report the AWR paper's normalised return (sum of rewards / 600 for 20 s at 30 Hz; a "
        "fall scores 0 for the remaining steps), each reward term's mean and the fall rate.",
        epilog="example: charctl eval runs/dog_trot-s0/dog_trot.pt --episodes 32\n"
               "         charctl eval runs/Hopper-v5-s0/Hopper-v5.pt --episodes 10 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file written by charctl train")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start states (default 0)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean / argmax")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from charctl.errors import CharctlError
    from charctl.evaluation import evaluate
    from charctl.policy_file import open_policy

    if args.episodes < 1:
        raise CharctlError(f"--episodes must be at least 1, not {args.episodes}")
    task = open_policy(args.checkpoint)
    env = task.make_env()
    try:
        with tqdm(total=args.episodes, unit="episode", disable=args.json, desc=task.name) as bar:
            result = evaluate(env, task.policy, args.episodes, args.seed, deterministic=not args.stochastic,
                              progress=lambda n: bar.update(n - bar.n))
    finally:
        env.close()
    summary = {"checkpoint": str(task.path), "env_id": task.env_id, **task.env_kwargs, "samples": task.samples,
               "deterministic": not args.stochastic, **result.summary()}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{task.name} ({task.samples} training samples), {summary['episodes']} episodes: "
          f"return {summary['mean_return']:.2f} +- {summary['std_return']:.2f}, mean length {summary['mean_length']:.0f}")
    if "normalized_return" in summary:
        print(f"normalised return {summary['normalized_return']:.3f} +- {summary['normalized_return_std']:.3f}, "
              f"fall rate {summary['fall_rate']:.2f}")
        print("reward terms (mean per step): " + ", ".join(f"{k} {v:.3f}" for k, v in summary["reward_terms"].items()))
    return 0
