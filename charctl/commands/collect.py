"""`charctl collect CHECKPOINT`: write a static dataset of whole episodes from a trained policy plus noise."""

import argparse

from charctl.commands import seed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "collect", help="write a static dataset (.npz) of episodes from a trained policy, for offline AWR",
        description="Run a trained policy with Gaussian action noise (std in normalised action units, the box mapped "
        "to [-1, 1]; for discrete actions the probability of a uniformly random action) and save whole episodes "
        "as a .npz dataset (format: docs/datasets.md) that 'charctl train ... --dataset FILE' learns from.",
        epilog="example: charctl collect runs/Hopper-v5-s0/Hopper-v5.pt --samples 100000 --noise 0.2 --out hopper.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file written by charctl train")
    parser.add_argument("--samples", type=int, required=True, help="transitions to collect (whole episodes, so a "
                        "few more)")
    parser.add_argument("--noise", type=float, default=None, help="action noise std (default: the policy's own)")
    parser.add_argument("--out", required=True, help="dataset file to write (.npz)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of resets and noise (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 0: in-process)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from charctl.awr.dataset import save_dataset
    from charctl.awr.rollout import Rollouts
    from charctl.play.policy_file import open_policy
    from charctl.util.errors import CharctlError

    if args.samples < 1:
        raise CharctlError(f"--samples must be at least 1, not {args.samples}")
    if args.workers < 0:
        raise CharctlError(f"--workers must be >= 0, not {args.workers}")
    if args.noise is not None and not args.noise >= 0:
        raise CharctlError(f"--noise must be >= 0, not {args.noise}")
    if not args.out.endswith(".npz"):
        raise CharctlError(f"--out {args.out}: datasets are .npz files")
    task = open_policy(args.checkpoint)
    task.make_env(evaluation=False).close()  # the env still matches the policy
    episodes, count, chunk = [], 0, 10_000
    with Rollouts(task.env_id, task.env_kwargs, args.workers, args.seed) as rollouts, \
            tqdm(total=args.samples, unit="samples", desc=task.name) as bar:
        while count < args.samples:
            batch = rollouts.collect(task.policy, min(chunk, args.samples - count), len(episodes), args.noise)
            episodes += batch
            count += sum(len(e) for e in batch)
            bar.update(min(count, args.samples) - bar.n)
    save_dataset(args.out, episodes, task.env_id, task.env_kwargs)
    returns = np.array([e.total_reward for e in episodes])
    print(f"{args.out}: {count} transitions in {len(episodes)} episodes, mean return {returns.mean():.1f} "
          f"+- {returns.std():.1f}")
    return 0
