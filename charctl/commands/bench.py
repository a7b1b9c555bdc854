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


def _rate(step, seconds: float) -> float:
    import time

    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def _busy_rate(next_action, step, seconds: float) -> float:
    """Control steps per second of time spent inside step(action) (resets included). The driver,
    next_action(), stands in for a policy outside the timing: it asks for the reference's next pose, so
    episodes have the lengths of open-loop tracking."""
    import time

    count, busy, start = 0, 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = next_action()
        before = time.perf_counter()
        step(action)
        busy += time.perf_counter() - before
        count += 1
    return count / busy


def _env_rate(env, seconds: float) -> float:
    def step(action):
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    return _busy_rate(lambda: env.targets_to_action(env.reference_pose(env.time + env.dt).joint_rot), step, seconds)


def _port_rate(motion: str, seconds: float) -> float:
    from charctl.deepmimic_port import PortRunner

    port = PortRunner(motion)
    try:
        def step(action):
            if port.step(action)[2]:
                port.reset()

        return _busy_rate(port.reference_action, step, seconds)
    finally:
        port.close()


def run(args) -> int:
    import gymnasium as gym
    import numpy as np

    import charctl.envs  # noqa: F401
    from charctl.envs.vector import make_vector_env

    if args.peer:
        from charctl.deepmimic_port import available
        from charctl.errors import CharctlError

        if args.character != "humanoid" or not available(args.motion):
            raise CharctlError(f"--peer: pybullet's DeepMimic port has no {args.character} {args.motion} "
                               f"(it has humanoid3d clips only)")
    env = gym.make("charctl/Imitate-v0", character=args.character, motion=args.motion).unwrapped
    env.reset(seed=0)
    env_rate = _env_rate(env, args.seconds)
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
    if args.peer:
        port_rate = _port_rate(args.motion, args.seconds)
        print(f"  pybullet DeepMimic port steps/s: {port_rate:8.1f}")
        print(f"  ratio env / port:                {env_rate / port_rate:8.2f}")
    if args.workers:
        envs = make_vector_env("charctl/Imitate-v0", {"character": args.character, "motion": args.motion},
                               args.workers, seed=0)
        action = np.zeros(envs.action_space.shape)
        rate = _rate(lambda: envs.step(action), args.seconds) * args.workers
        envs.close()
        print(f"  samples/s with {args.workers} workers:    {rate:8.1f}")
    return 0
