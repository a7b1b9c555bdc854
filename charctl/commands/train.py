"""`charctl train gym ENV_ID`: train an AWR policy on a gymnasium task (checkpoint and logs in --out)."""

import argparse

# The first positional names the character; `gym` means "a gymnasium env id follows". The imitation side
# (`charctl train humanoid spinkick`) maps to env "charctl/Imitate-v0" with {"character": ..., "motion": ...}.
GYM = "gym"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a policy with AWR (gymnasium tasks: 'charctl train gym ENV_ID')",
        description="Train a policy with Advantage-Weighted Regression. Settings: configs/awr/default.yaml, then "
        "configs/awr/gym/ENV_ID.yaml when shipped, then --config FILE, then --set key=value. The out directory gets "
        "checkpoint.pt (every iteration, atomic), progress.csv, config.yaml and tb/ (TensorBoard).",
        epilog="example: charctl train gym Hopper-v5 --samples 1000000 --seed 0 --out runs/hopper-s0\n"
               "         charctl train gym Hopper-v5 --out runs/hopper-s0 --resume\n"
               "         charctl train gym Hopper-v5 --dataset hopper.npz --out runs/hopper-offline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("character", metavar="CHARACTER", help="'gym' for a gymnasium task")
    parser.add_argument("target", metavar="MOTION_OR_ENV", help="with 'gym': a gymnasium env id, e.g. Hopper-v5")
    parser.add_argument("--samples", type=int, help="environment samples to train on (default: config, 1M)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, help="rollout worker processes (default 2; 0: in-process)")
    parser.add_argument("--out", help="output directory (default runs/<ENV_ID>-s<SEED>)")
    parser.add_argument("--config", help="YAML file with AWR settings to apply over the defaults")
    parser.add_argument("--dataset", help="train from a static .npz dataset without stepping the env "
                        "(docs/datasets.md)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                        help="override one setting (repeatable), e.g. --set temperature=0.5")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def resolve(args) -> tuple[str, dict]:
    """(env id, env kwargs) for the positional arguments."""
    from charctl.errors import CharctlError

    if args.character == GYM:
        return args.target, {}
    raise CharctlError(f"train: '{args.character}' is not supported yet; use 'charctl train gym ENV_ID'")


def run(args) -> int:
    from charctl.awr.config import load_config, parse_overrides
    from charctl.awr.trainer import train

    env_id, env_kwargs = resolve(args)
    overrides = parse_overrides(args.overrides)
    for key, value in (("samples", args.samples), ("seed", args.seed), ("num_workers", args.workers)):
        if value is not None:
            overrides[key] = value
    config = load_config(env_id if args.character == GYM else None, args.config, overrides)
    out = args.out or f"runs/{env_id.replace('/', '_')}-s{config.seed}"
    result = train(env_id, env_kwargs, config, out, resume=args.resume, dataset=args.dataset,
                   progress=not args.no_progress)
    final = result.final_test_return
    print(f"{env_id}: {result.samples} samples, {result.iteration} iterations"
          + (f", test return {final:.1f}" if final is not None else "") + f"; checkpoint {out}/checkpoint.pt")
    return 0
