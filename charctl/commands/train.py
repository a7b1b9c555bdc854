"""`charctl train CHARACTER MOTION` (imitation) and `charctl train gym ENV_ID`: train an AWR policy."""

import argparse

from charctl.awr.config import ENV_PREFIX, split_env_settings
from charctl.awr.graceful_stop import SIGTERM_EXIT_STATUS, STOPPED_BY_SIGTERM

# The first positional names the character; `gym` means "a gymnasium env id follows".
GYM = "gym"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a policy with AWR on an imitation task or a gymnasium task",
        description="Train a policy with Advantage-Weighted Regression. AWR settings: the defaults (AWRConfig "
        "in charctl/awr/config.py), then configs/awr/imitation/CHARACTER.yaml (its clips: section per motion) or "
        "configs/awr/gym/ENV_ID.yaml, then --config FILE, then --set key=value; '--set env.KEY=VALUE' changes an "
        "imitation env setting (configs/env/). The run directory gets NAME.pt (the best policy by evaluation), "
        "NAME-last.pt (written every iteration; --resume continues from it, and --set with --resume changes a "
        "setting from there on, recorded in settings_changes.txt: an AWR setting, or an env setting that keeps the "
        "observation and action sizes, which restarts the best policy's record), progress.csv, config.yaml, tb/ "
        "(TensorBoard) and, with keep_every (250k samples for imitation tasks), marks/NAME-SAMPLES.pt: the policy "
        "past each multiple of it, to evaluate later with charctl eval. Ctrl-C stops cleanly; the last finished "
        "iteration is kept. SIGTERM (kill, docker stop, a scheduler) finishes the iteration in flight first and "
        "exits with 143; a second SIGTERM stops at once.",
        epilog="example: charctl train humanoid spinkick\n"
               "         charctl train dog trot --samples 2000000 --workers 2 --out runs/dog_trot\n"
               "         charctl train dog trot --out runs/dog_trot --resume\n"
               "         charctl train dog trot --out runs/dog_trot --resume --set actor_lr=1e-6\n"
               "         charctl train dog trot --out runs/dog_trot --resume --set env.pd_target_velocity=true\n"
               "         charctl train dog canter --init runs/dog_trot/dog_trot.pt --out runs/dog_canter\n"
               "         charctl train gym Hopper-v5 --samples 1000000 --seed 0 --out runs/hopper-s0\n"
               "         charctl train gym Hopper-v5 --dataset hopper.npz --out runs/hopper-offline\n"
               "         charctl train dog canter --ray auto --workers 64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("character", metavar="CHARACTER", help="a character (humanoid, dog) or 'gym'")
    parser.add_argument("target", metavar="MOTION_OR_ENV", help="a motion clip of the character, or with 'gym' "
                        "a gymnasium env id, e.g. Hopper-v5")
    parser.add_argument("--samples", type=int, help="environment samples to train on (default: config, 1M)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, help="rollout worker processes (default: the config's; 2 for "
                        "imitation, 1 for Gym tasks as the reference; 0: in-process)")
    parser.add_argument("--out", help="run directory (default runs/NAME-sSEED; NAME = CHARACTER_MOTION or ENV_ID)")
    parser.add_argument("--config", help="YAML file with AWR settings to apply over the defaults")
    parser.add_argument("--dataset", help="train from a static .npz dataset without stepping the env "
                        "(docs/datasets.md)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from NAME-last.pt")
    parser.add_argument("--init", metavar="CHECKPOINT",
                        help="begin a new run from a checkpoint's actor, critic and observation normaliser (same "
                        "observation and action sizes and layers, e.g. a policy of another clip of the character); "
                        "samples, optimisers and seed start afresh")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                        help="override one setting (repeatable), e.g. --set temperature=0.5 --set env.time_limit=10")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="rollout workers as Ray actors: on a Ray cluster at ADDRESS (e.g. 10.0.0.1:6379 or "
                        "auto), or alone: a local Ray instance that ends with the run "
                        "(needs pip install 'charctl[ray]'; docs/ray.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def env_only_overrides(items: list[str] | None, who: str) -> dict:
    """Nested imitation env settings from `--set env.KEY=VALUE` items, for a command (`who`) that takes no
    AWR settings: any other key is refused, naming it."""
    from charctl.awr.config import parse_overrides
    from charctl.util.errors import CharctlError

    awr_keys, env = split_env_settings(parse_overrides(items))
    if awr_keys:
        raise CharctlError(f"--set {next(iter(awr_keys))}: {who} takes env settings only ({ENV_PREFIX}KEY=VALUE)")
    return env


def resolve(args, env_overrides: dict) -> tuple[str, dict, str]:
    """(env id, env kwargs, run name) for the positional arguments; unknown names list what exists."""
    from charctl.util.errors import CharctlError

    if args.character == GYM:
        if env_overrides:
            raise CharctlError("--set env.*: env settings apply to imitation tasks only")
        from charctl.awr.rollout import check_env_id

        check_env_id(args.target)
        return args.target, {}, args.target.replace("/", "_")
    from charctl.character.model import load_character
    from charctl.envs import IMITATION_ENV_ID
    from charctl.envs.config import config_to_dict, load_env_config
    from charctl.motion.clip import load_clip

    character = load_character(args.character)
    load_clip(character, args.target)
    settings = load_env_config(character.name, args.target, env_overrides)  # a bad env key fails before any work
    # every env setting goes into the checkpoint: a policy plays in the env it was trained in, whatever
    # configs/env/ says later
    kwargs = {"character": character.name, "motion": args.target, "config": config_to_dict(settings)}
    return IMITATION_ENV_ID, kwargs, f"{character.name}_{args.target}"


def on_saved_env(kwargs: dict, env_overrides: dict):
    """For --resume of an imitation run: the env kwargs asked for are the run's saved env settings (whatever
    configs/env/ says now) with this command's --set env.* on top, so a bare --resume keeps them and a --set env.*
    changes one from there on (the trainer refuses it if the observation or actions would change size)."""
    from charctl.envs.config import config_to_dict, env_config_on

    def resumed(saved: dict) -> dict:
        if not isinstance(saved.get("config"), dict):  # not an imitation run: compared as given
            return kwargs
        return {**kwargs, "config": config_to_dict(env_config_on(saved["config"], env_overrides,
                                                                 "the run's saved env settings"))}
    return resumed


def run(args) -> int:
    from pathlib import Path

    from charctl.awr.config import AWRConfig, load_config, parse_overrides, read_yaml
    from charctl.awr.trainer import train
    from charctl.util.typed_config import checked_fields

    if args.ray is not None:
        from charctl.awr.ray_rollout import import_ray

        import_ray()  # without Ray: one line saying how to install it, before any work
    awr_overrides, env_overrides = split_env_settings(parse_overrides(args.overrides))
    for key, value, flag in (("samples", args.samples, "--samples"), ("seed", args.seed, "--seed"),
                             ("num_workers", args.workers, "--workers"), ("init_from", args.init, "--init")):
        if value is not None:
            awr_overrides[key] = checked_fields(AWRConfig, {key: value}, flag)[key]  # in range, named by its flag
    # a resumed run keeps its saved settings; these (the --config file, then --set and the flags) change them
    # from here on, and a change of the seed or the networks is refused
    changes = {**(read_yaml(Path(args.config)) if args.config else {}), **awr_overrides} if args.resume else None
    env_id, env_kwargs, name = resolve(args, env_overrides)
    gym_task = args.character == GYM
    config = load_config(env_id if gym_task else None, args.config, awr_overrides,
                         character=None if gym_task else env_kwargs["character"],
                         motion=None if gym_task else env_kwargs["motion"])
    out = args.out or f"runs/{name}-s{config.seed}"
    result = train(env_id, env_kwargs, config, out, resume=args.resume, dataset=args.dataset,
                   progress=not args.no_progress, name=name, ray_address=args.ray, changes=changes,
                   resumed_env=on_saved_env(env_kwargs, env_overrides) if args.resume and not gym_task else None)
    final = result.final_test_text()
    if result.interrupted:
        how = STOPPED_BY_SIGTERM if result.stopped_by_sigterm else "interrupted"
        print(f"{name}: {how}; {result.last_checkpoint} holds iteration {result.iteration} "
              f"({result.samples} samples); continue with --resume --out {out}")
        return SIGTERM_EXIT_STATUS if result.stopped_by_sigterm else 130
    print(f"{name}: {result.samples} samples, {result.iteration} iterations"
          + (f", {final}" if final is not None else "")
          + f"; best policy {result.best_checkpoint}, last {result.last_checkpoint}")
    marks = Path(out) / "marks"
    kept = len(list(marks.glob(f"{name}-*.pt"))) if marks.is_dir() else 0
    if kept:
        print(f"{name}: {kept} kept policies in {marks} (keep_every); to compare them on held-out starts: "
              f"charctl eval {marks}/*.pt --episodes 32")
    return 0
