"""`charctl bench env CHARACTER MOTION`: environment speed beside the raw physics rate, measured in one run.
`charctl bench learn CHARACTER MOTION`: return per sample of training variants side by side (charctl/bench/learn.py).
"""

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure environment speed (env) or return per sample of training variants (learn)",
        description="env: control steps per second of the imitation env in one process (time spent in env.step and "
        "env.reset; the driver that asks for the reference's next pose, standing in for a policy, is not counted), "
        "the raw PyBullet physics rate for the same character at the same substeps and controller (its command and "
        "the state read, nothing else), their ratio, optionally pybullet's own DeepMimic port driven the same way "
        "(humanoid clips), and samples/s with worker processes; --set env.KEY=VALUE changes an env setting. "
        "learn: trains a variant (--name, its settings with --set) with each seed to fixed sample marks, "
        "evaluates the policy at every mark on held-out starts as `charctl eval` does, and writes OUT/learn.csv and "
        "OUT/learn.png with every variant in OUT beside the no-policy baseline (learn.csv also has each mark's "
        "training speed, the median samples/s of the iterations since the mark before). Rerun the same command "
        "to continue after an interruption: finished marks are kept.",
        epilog="example: charctl bench env humanoid spinkick --seconds 5 --workers 2 --peer\n"
               "         charctl bench env humanoid spinkick --workers 2 --set env.sim.controller=motors "
               "--set env.sim.physics_hz=120\n"
               "         charctl bench learn dog trot --name default --samples 500000 --seeds 2 --out bench/trot\n"
               "         charctl bench learn dog trot --name pose-term --set env.pose_termination_distance=0.5 "
               "--samples 500000 --seeds 2 --out bench/trot\n"
               "         charctl bench learn dog trot --name pace-curriculum --set env.clip_speed=0.5 "
               "--from 200000 env.clip_speed=1 --samples 500000 --every 100000 --out bench/trot\n"
               "         charctl bench learn dog trot --name late-pace --fork default 300000 --from 300000 "
               "env.clip_speed=1.2 --samples 500000 --every 100000 --out bench/trot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["env", "learn"], help="what to measure")
    parser.add_argument("character", help="character name (see 'charctl motions')")
    parser.add_argument("motion", help="one of its clips")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=None,
                        help="env: also measure samples/s with N worker processes; learn: rollout workers "
                        "(default: the task's config)")
    parser.add_argument("--peer", action="store_true",
                        help="also measure pybullet's DeepMimic port (pybullet_envs.deep_mimic) on the same clip")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                        help="learn: a setting of the variant, as for charctl train; env: an env setting, "
                        "env.KEY=VALUE (repeatable)")
    learn = parser.add_argument_group("learn")
    learn.add_argument("--name", help="the variant's name (a folder in --out)")
    learn.add_argument("--samples", type=int, default=500_000, help="training samples per seed (default 500000)")
    learn.add_argument("--every", type=int, default=None,
                       help="samples between evaluation marks (default: --samples / 5)")
    learn.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 (default 2)")
    learn.add_argument("--seed", type=int, action="append", dest="only_seeds", metavar="S",
                       help="train only seed S (repeatable; in place of --seeds): to continue one seed of a variant, "
                       "or to run a variant's seeds side by side as two processes")
    learn.add_argument("--episodes", type=int, default=16, help="held-out evaluation episodes per mark (default 16)")
    learn.add_argument("--out", help="folder holding the variants (default bench/CHARACTER_MOTION)")
    learn.add_argument("--from", nargs=2, action="append", metavar=("MARK", "KEY=VALUE"), dest="switches",
                       help="a curriculum: from the evaluation mark MARK on, train with KEY=VALUE as well (as "
                       "charctl train --resume --set does; repeatable)")
    learn.add_argument("--fork", nargs=2, metavar=("VARIANT", "MARK"),
                       help="begin each seed from VARIANT's policy at its mark MARK (its --set and its --from before "
                       "MARK are this variant's too), so a change from MARK on (--from MARK) costs only the samples "
                       "after it; the replay buffer refills. learn.png draws its curve from MARK on")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.what == "learn":
        return run_learn(args)
    import gymnasium as gym

    import charctl.envs  # noqa: F401
    from charctl.bench.rates import env_rate, physics_rate, port_rate, vector_rate

    if args.peer:
        from charctl.bench.deepmimic_port import available
        from charctl.util.errors import CharctlError

        if args.character != "humanoid" or not available(args.motion):
            raise CharctlError(f"--peer: pybullet's DeepMimic port has no {args.character} {args.motion} "
                               f"(it has humanoid3d clips only)")
    from charctl.commands.train import env_only_overrides
    from charctl.envs import IMITATION_ENV_ID

    kwargs = {"character": args.character, "motion": args.motion,
              "config": env_only_overrides(args.overrides, "bench env")}
    env = gym.make(IMITATION_ENV_ID, **kwargs).unwrapped
    try:
        env.reset(seed=0)
        env_steps = env_rate(env, args.seconds)
        raw_steps = physics_rate(env, args.seconds)
    finally:
        env.close()
    sim = env.config.sim
    controller = "stable PD re-sent each substep" if sim.controller == "stable_pd" else \
        f"implicit motors sent once per control step (gains {sim.motor_position_gain:g}, {sim.motor_velocity_gain:g})"
    print(f"{args.character} {args.motion}: substeps {env.sim.substeps} ({sim.physics_hz:g} Hz physics), "
          f"PD mode {controller}")
    print(f"  env control steps/s (1 process): {env_steps:8.1f}")
    print(f"  raw physics control steps/s:     {raw_steps:8.1f}")
    print(f"  ratio env / raw:                 {env_steps / raw_steps:8.2f}")
    if args.peer:
        port_steps = port_rate(args.motion, args.seconds)
        print(f"  pybullet DeepMimic port steps/s: {port_steps:8.1f}")
        print(f"  ratio env / port:                {env_steps / port_steps:8.2f}")
    if args.workers:
        samples = vector_rate(kwargs, args.workers, args.seconds)
        print(f"  samples/s with {args.workers} workers:    {samples:8.1f}")
    return 0


def _switches(pairs: list[list[str]] | None) -> dict[int, dict]:
    """--from MARK KEY=VALUE pairs, grouped by mark."""
    from charctl.awr.config import parse_overrides

    switches: dict[int, list[str]] = {}
    for mark, setting in pairs or []:
        switches.setdefault(_sample_count(mark, f"--from {mark} {setting}"), []).append(setting)
    return {mark: parse_overrides(settings) for mark, settings in switches.items()}


def _fork(pair: list[str] | None) -> tuple[str, int] | None:
    if pair is None:
        return None
    variant, mark = pair
    return variant, _sample_count(mark, f"--fork {variant} {mark}")


def _seeds(args) -> list[int]:
    """--seed S ... if given, else 0..--seeds-1."""
    return sorted(set(args.only_seeds)) if args.only_seeds else list(range(args.seeds))


def _sample_count(mark: str, given: str) -> int:
    """A MARK argument: a positive number of samples."""
    from charctl.util.errors import CharctlError

    if not mark.isdigit() or int(mark) < 1:
        raise CharctlError(f"{given}: MARK is a sample count, such as 200000")
    return int(mark)


def run_learn(args) -> int:
    from pathlib import Path

    from charctl.awr.config import parse_overrides
    from charctl.awr.graceful_stop import SIGTERM_EXIT_STATUS, STOPPED_BY_SIGTERM, stop_on_sigterm
    from charctl.bench import learn as bench_learn
    from charctl.character.model import load_character
    from charctl.motion.clip import load_clip
    from charctl.util.errors import CharctlError

    if not args.name:
        raise CharctlError("bench learn: name the variant with --name (e.g. --name default)")
    if "/" in args.name or args.name.startswith("."):
        raise CharctlError(f"--name {args.name}: a variant name is a plain folder name")
    for flag, value, least in (("--samples", args.samples, 1), ("--seeds", args.seeds, 1),
                               ("--episodes", args.episodes, 1), ("--every", args.every, 1)):
        if value is not None and value < least:
            raise CharctlError(f"{flag} must be at least {least}, not {value}")
    if any(seed < 0 for seed in args.only_seeds or ()):
        raise CharctlError(f"--seed {min(args.only_seeds)}: seeds are 0 or more")
    character = load_character(args.character)
    load_clip(character, args.motion)
    out = Path(args.out or f"bench/{character.name}_{args.motion}")
    spec = bench_learn.LearnSpec(character=character.name, motion=args.motion, variant=args.name,
                                 overrides=parse_overrides(args.overrides), seeds=_seeds(args),
                                 samples=args.samples, every=args.every or max(args.samples // 5, 1),
                                 episodes=args.episodes, workers=args.workers, switches=_switches(args.switches),
                                 fork=_fork(args.fork))
    if spec.fork is not None:
        bench_learn.check_fork(out, spec)  # before the baseline is measured into OUT
    base = bench_learn.baseline(out, character.name, args.motion, args.episodes)
    try:
        with stop_on_sigterm:  # over all its runs: a SIGTERM between two marks' runs stops before the next one
            bench_learn.run_variant(out, spec)
        interrupted = by_sigterm = False
    except KeyboardInterrupt as stop:
        interrupted, by_sigterm = True, getattr(stop, "by_sigterm", False)
    rows = bench_learn.collect_rows(out)
    table = bench_learn.write_table(out, rows)
    figure = bench_learn.plot(out, rows, base, f"{character.name} {args.motion}: return per sample")
    print(f"{table} and {figure}: {len({r['variant'] for r in rows})} variants, {len(rows)} marks")
    if interrupted:
        how = STOPPED_BY_SIGTERM if by_sigterm else "interrupted"
        print(f"{how}; rerun the same command to continue ({out / args.name})")
        return SIGTERM_EXIT_STATUS if by_sigterm else 130
    return 0
