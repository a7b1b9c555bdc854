"""`charctl bench env CHARACTER MOTION`: environment speed beside the raw physics rate, measured in one run."""

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure environment speed (control steps/s) against raw PyBullet physics",
        description="Control steps per second of the imitation env in one process, the raw PyBullet physics rate "
        "for the same character at the same substeps and PD mode (stable PD re-sent each substep, nothing else), "
        "their ratio, and optionally samples/s with worker processes.",
        epilog="example: charctl bench env humanoid spinkick --seconds 5 --workers 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["env"], help="what to measure")
    parser.add_argument("character")
    parser.add_argument("motion")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="also measure samples/s with N worker processes")
    parser.set_defaults(func=run)


def _rate(step, seconds: float) -> float:
    import time

    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def run(args) -> int:
    import gymnasium as gym
    import numpy as np

    import charctl.envs  # noqa: F401
    from charctl.envs.vector import make_vector_env

    env = gym.make("charctl/Imitate-v0", character=args.character, motion=args.motion).unwrapped
    env.reset(seed=0)
    # Track the clip with the policy's PD targets taken from the reference: episodes of realistic length.
    def env_step():
        *_, terminated, truncated, _ = env.step(env.targets_to_action(env.reference_pose(env.time + env.dt).joint_rot))
        if terminated or truncated:
            env.reset()

    env_rate = _rate(env_step, args.seconds)
    sim = env.sim
    env.reset(seed=0, options={"start_time": 0.0})
    sim.set_pd_targets(env.reference_pose().joint_rot)
    start_pose = env.reference_pose()

    def physics_step():
        sim.step()
        if sim.state().root_pos[2] < 0.2:  # fallen over: stand up again so contacts stay comparable
            sim.set_pose(start_pose)

    raw_rate = _rate(physics_step, args.seconds)
    env.close()
    print(f"{args.character} {args.motion}: substeps {sim.substeps} ({env.config.sim.physics_hz:g} Hz physics), "
          f"PD mode stable PD re-sent each substep")
    print(f"  env control steps/s (1 process): {env_rate:8.1f}")
    print(f"  raw physics control steps/s:     {raw_rate:8.1f}")
    print(f"  ratio env / raw:                 {env_rate / raw_rate:8.2f}")
    if args.workers:
        envs = make_vector_env("charctl/Imitate-v0", {"character": args.character, "motion": args.motion},
                               args.workers, seed=0)
        action = np.zeros(envs.action_space.shape)
        rate = _rate(lambda: envs.step(action), args.seconds) * args.workers
        envs.close()
        print(f"  samples/s with {args.workers} workers:    {rate:8.1f}")
    return 0
