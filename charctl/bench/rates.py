"""Rates measured by `charctl bench env`: control steps per second of the imitation env (time inside step and
reset only), of the raw physics, and of pybullet's own DeepMimic port driven the same way."""

from __future__ import annotations

import time

from charctl.bench.deepmimic_port import PortRunner


def rate(step, seconds: float) -> float:
    """Calls of step() per second of wall time."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def busy_rate(next_action, step, seconds: float) -> float:
    """Control steps per second of time spent inside step(action) (resets included). The driver,
    next_action(), stands in for a policy outside the timing: it asks for the reference's next pose, so
    episodes have the lengths of open-loop tracking."""
    count, busy, start = 0, 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = next_action()
        before = time.perf_counter()
        step(action)
        busy += time.perf_counter() - before
        count += 1
    return count / busy


def env_rate(env, seconds: float) -> float:
    def step(action):
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    return busy_rate(lambda: env.targets_to_action(env.reference_pose(env.time + env.dt).joint_rot), step, seconds)


def port_rate(motion: str, seconds: float) -> float:
    port = PortRunner(motion)
    try:
        def step(action):
            if port.step(action)[2]:
                port.reset()

        return busy_rate(port.reference_action, step, seconds)
    finally:
        port.close()


def physics_rate(env, seconds: float) -> float:
    """Control steps per second of the env's simulation alone: its controller towards the clip's start pose and the
    state read, nothing else (a fallen character is stood up again so contacts stay comparable)."""
    sim = env.sim
    env.reset(seed=0, options={"start_time": 0.0})
    sim.set_pd_targets(env.reference_pose().joint_rot)
    start_pose = env.reference_pose()

    def physics_step():
        sim.step()
        if sim.state().root_pos[2] < 0.2:
            sim.set_pose(start_pose)

    return rate(physics_step, seconds)


def vector_rate(env_kwargs: dict, workers: int, seconds: float) -> float:
    """Samples per second of `workers` imitation env processes (gymnasium.make keyword arguments) stepped with
    zero actions."""
    import numpy as np

    from charctl.bench.vector import make_vector_env
    from charctl.envs import IMITATION_ENV_ID

    envs = make_vector_env(IMITATION_ENV_ID, env_kwargs, workers, seed=0)
    try:
        action = np.zeros(envs.action_space.shape)
        return rate(lambda: envs.step(action), seconds) * workers
    finally:
        envs.close()
