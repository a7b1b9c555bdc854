"""`charctl bench env CHARACTER MOTION`: environment speed beside the raw physics rate, measured in one run."""

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure environment speed (control steps/s) against raw PyBullet physics",
        description="Control steps per second of the imitation env in one process (time spent in env.step and "
        "env.reset; the driver that asks for the reference's next pose, standing in for a policy, is not counted), "
        "the raw PyBullet physics rate for the same character at the same substeps and PD mode (stable PD re-sent "
        "each substep and the state read, nothing else), their ratio, optionally pybullet's own DeepMimic port "
        "driven the same way (humanoid clips), and samples/s with worker processes.",
        epilog="example: charctl bench env humanoid spinkick --seconds 5 --workers 2 --peer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["env"], help="what to measure")
    parser.add_argument("character")
    parser.add_argument("motion")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="also measure samples/s with N worker processes")
    parser.add_argument("--peer", action="store_true",
                        help="also measure pybullet's DeepMimic port (pybullet_envs.deep_mimic) on the same clip")
    parser.set_defaults(func=run)


def run(args) -> int:
    import gymnasium as gym

    import charctl.envs  # noqa: F401
    from charctl.bench.rates import env_rate, physics_rate, port_rate, vector_rate

    if args.peer:
        from charctl.bench.deepmimic_port import available
        from charctl.util.errors import CharctlError

        if args.character != "humanoid" or not available(args.motion):
            raise CharctlError(f"--peer: pybullet's DeepMimic port has no {args.character} {args.motion} "
                               f"(it has humanoid3d clips only)")
    env = gym.make("charctl/Imitate-v0", character=args.character, motion=args.motion).unwrapped
    try:
        env.reset(seed=0)
        env_steps = env_rate(env, args.seconds)
        raw_steps = physics_rate(env, args.seconds)
    finally:
        env.close()
    print(f"{args.character} {args.motion}: substeps {env.sim.substeps} ({env.config.sim.physics_hz:g} Hz physics), "
          f"PD mode stable PD re-sent each substep")
    print(f"  env control steps/s (1 process): {env_steps:8.1f}")
    print(f"  raw physics control steps/s:     {raw_steps:8.1f}")
    print(f"  ratio env / raw:                 {env_steps / raw_steps:8.2f}")
    if args.peer:
        port_steps = port_rate(args.motion, args.seconds)
        print(f"  pybullet DeepMimic port steps/s: {port_steps:8.1f}")
        print(f"  ratio env / port:                {env_steps / port_steps:8.2f}")
    if args.workers:
        samples = vector_rate(args.character, args.motion, args.workers, args.seconds)
        print(f"  samples/s with {args.workers} workers:    {samples:8.1f}")
    return 0
