"""Physics settings that could make an imitation env step cheaper, each against today's settings in one process.

    python benchmarks/physics_variants.py DogTrot hold2 hold4 cone_off solver5 no_self_collision
    python benchmarks/physics_variants.py DogTrot torque_pd1 torque_pd2 torque_pd24
    python benchmarks/physics_variants.py HumanoidSpinkick sim.controller=motors,sim.physics_hz=120
    python benchmarks/physics_variants.py DogTrot pd_target_velocity=true clip_speed=0.5 \
        clip_speed=0.5,pd_target_velocity=true

Speed: the variants' envs and the baseline's step in turns (15 control steps each, 40 rounds), so a load that
changes slowly weighs on all of them alike; the ratio to the baseline is what to read. Tracking: PD targets from
the clip, no policy, 20 seeded starts (`open_loop` in tests/test_env_imitation.py): median time up, mean
reward while up and pace while up (the character's COM speed over the reference's, mean per step). A variant is
only worth having if tracking stays within 10% of the baseline's.

Variants: holdK - stable-PD command once per K physics steps (PyBullet's numSubSteps=K inside one
stepSimulation, the same physics rate); torque_pdN - stable PD computed in numpy from PyBullet's mass matrix and
bias forces taken N times per control step, applied as torques before every substep (benchmarks/stable_pd_torques.py);
cone_off - pyramid friction instead of the friction cone; solverN - N
solver iterations instead of 10; no_self_collision - no contacts between the character's own bodies (an upper
bound for filtering out pairs that never touch); KEY=VALUE[,KEY=VALUE...] - env settings as in configs/env/ (nested
keys with dots, values YAML), e.g. sim.controller=motors,sim.physics_hz=120.
"""

import sys
import time

import gymnasium as gym
import numpy as np

import charctl.envs  # noqa: F401
from charctl.commands.train import ENV_PREFIX, env_only_overrides
from charctl.util.quiet import import_pybullet
from stable_pd_torques import use_torque_pd

pybullet = import_pybullet()  # without its build banner


def _hold(sim, k: int) -> None:
    pybullet.setPhysicsEngineParameter(fixedTimeStep=k / sim.config.physics_hz, numSubSteps=k,
                                       physicsClientId=sim.client)

    def step():
        command = sim._pd_command
        for _ in range(sim.substeps // k):
            if command is not None:
                pybullet.setJointMotorControlMultiDofArray(**command)
            pybullet.stepSimulation(physicsClientId=sim.client)

    sim.step = step


def env_settings(variant: str) -> dict:
    """Nested env settings from 'a.b=1,c=x' (as `--set env.a.b=1 --set env.c=x`); {} for the named variants."""
    if "=" not in variant:
        return {}
    return env_only_overrides([f"{ENV_PREFIX}{item}" for item in variant.split(",")], "a variant")


def make(task: str, variant: str):
    settings = env_settings(variant)
    env = gym.make(f"charctl/{task}-v0", config=settings).unwrapped
    sim, client = env.sim, env.sim.client
    if variant.startswith("hold"):
        _hold(sim, int(variant[4:]))
    elif variant.startswith("torque_pd"):
        use_torque_pd(sim, int(variant[9:]))
    elif variant == "cone_off":
        pybullet.setPhysicsEngineParameter(enableConeFriction=0, physicsClientId=client)
    elif variant.startswith("solver"):
        pybullet.setPhysicsEngineParameter(numSolverIterations=int(variant[6:]), physicsClientId=client)
    elif variant == "no_self_collision":
        links = pybullet.getNumJoints(sim.body, physicsClientId=client)
        for a in range(-1, links):
            for b in range(a + 1, links):
                pybullet.setCollisionFilterPair(sim.body, sim.body, a, b, 0, physicsClientId=client)
    elif variant != "base" and not settings:
        raise SystemExit(f"unknown variant {variant}")
    if variant != "base" and not settings:  # the world a reset returns to carries the change
        pybullet.removeState(sim._clean_state, physicsClientId=client)
        sim._clean_state = pybullet.saveState(physicsClientId=client)
    return env


def reference_step(env):
    return env.step_with_targets(env.reference_pose(env.time + env.dt).joint_rot)


def speeds(task: str, variants: list[str]) -> dict[str, float]:
    envs = {v: make(task, v) for v in variants}
    busy, steps = dict.fromkeys(envs, 0.0), dict.fromkeys(envs, 0)
    for env in envs.values():
        env.reset(seed=0)
    for _ in range(40):
        for variant, env in envs.items():
            for _ in range(15):
                start = time.perf_counter()
                *_, terminated, truncated, _ = reference_step(env)
                if terminated or truncated:
                    env.reset()
                busy[variant] += time.perf_counter() - start
                steps[variant] += 1
    for env in envs.values():
        env.close()
    return {v: steps[v] / busy[v] for v in envs}


def tracking(task: str, variant: str, starts: int = 20) -> tuple[float, float, float]:
    """Median time up, mean reward and mean pace (COM speed over the reference's) while up."""
    env = make(task, variant)
    times, rewards, paces = [], [], []
    for seed in range(starts):
        env.reset(seed=seed)
        while True:
            _, reward, terminated, truncated, info = reference_step(env)
            if terminated or truncated:
                break
            rewards.append(reward)
            paces.append(info["speed"] / max(info["reference_speed"], 1e-6))
        times.append(env.time - env.start_time)
    env.close()
    return float(np.median(times)), float(np.mean(rewards)), float(np.mean(paces))


if __name__ == "__main__":
    task, variants = sys.argv[1], ["base"] + sys.argv[2:]
    rates = speeds(task, variants)
    print(f"| {task} variant | control steps/s | ratio | median s up | mean reward while up | pace while up |")
    print("|---|---|---|---|---|---|")
    for variant in variants:
        up, reward, pace = tracking(task, variant)
        print(f"| {variant} | {rates[variant]:.1f} | {rates[variant] / rates['base']:.2f} | {up:.3f} | {reward:.3f} "
              f"| {pace:.2f} |")
