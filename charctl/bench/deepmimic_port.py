"""pybullet's own DeepMimic port (`pybullet_envs.deep_mimic`, shipped in the pybullet wheel), for side-by-side speed.

`import pybullet_envs` runs a package __init__ that needs the old `gym`; the port's own modules do not, so the
package is registered as an empty namespace and its modules are imported directly. The port is stepped as its
gym wrapper steps it (reward, action, 8 physics updates at 240 Hz, state, episode end), with the reference
pose 1/30 s ahead as the action, as `charctl bench env` drives charctl's env.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
from pathlib import Path

import numpy as np

CONTROL_HZ = 30.0
PHYSICS_HZ = 240.0
BALL_JOINTS = (True, True, True, False, True, True, False, True, False, True, True, False)  # action order


def _import_port():
    """The port's env module, without running pybullet_envs/__init__.py (it imports gym)."""
    if "pybullet_envs" not in sys.modules:
        import pybullet_data

        package = types.ModuleType("pybullet_envs")
        package.__path__ = [str(Path(pybullet_data.__file__).resolve().parent.parent / "pybullet_envs")]
        sys.modules["pybullet_envs"] = package
    return importlib.import_module("pybullet_envs.deep_mimic.env.pybullet_deep_mimic_env")


@contextlib.contextmanager
def _quiet_stdout():
    """Standard output (file descriptor 1, which C code writes to as well) to /dev/null for a while."""
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def available(motion: str) -> bool:
    import pybullet_data

    return (Path(pybullet_data.getDataPath()) / "args" / f"run_humanoid3d_{motion}_args.txt").exists()


class PortRunner:
    """The port's humanoid on one clip, with a driver that asks for the reference pose one control step ahead."""

    def __init__(self, motion: str, seed: int = 0):
        import random

        import pybullet_data
        from pybullet_utils.arg_parser import ArgParser

        module = _import_port()
        args = ArgParser()
        if not args.load_file(f"{pybullet_data.getDataPath()}/args/run_humanoid3d_{motion}_args.txt"):
            raise FileNotFoundError(f"pybullet's DeepMimic port has no args file for humanoid3d_{motion}")
        random.seed(seed)  # the port draws its start times from `random`
        with _quiet_stdout():  # it prints its settings, and Bullet warns about its URDF from C
            self.env = module.PyBulletDeepMimicEnv(args, enable_draw=False, time_step=1.0 / PHYSICS_HZ,
                                                   init_strategy=module.InitializationStrategy.RANDOM)
        self.substeps = int(round(PHYSICS_HZ / CONTROL_HZ))
        self.client = self.env._pybullet_client

    def reset(self) -> None:
        self.env.reset()

    def reference_action(self) -> list[float]:
        """The port's action (axis-angle per ball joint, angle per hinge) for its reference pose 1/30 s ahead."""
        humanoid = self.env._humanoid
        now = humanoid._simTime
        humanoid.setSimTime(now + 1.0 / CONTROL_HZ)
        pose = humanoid.computePose(humanoid._frameFraction)
        humanoid.setSimTime(now)
        action, index = [], 7  # the pose starts with the root's position and rotation
        for ball in BALL_JOINTS:
            if ball:
                axis, angle = self.client.getAxisAngleFromQuaternion(pose[index:index + 4])
                action += [angle, *axis]
                index += 4
            else:
                action.append(pose[index])
                index += 1
        return action

    def step(self, action: list[float]) -> tuple[np.ndarray, float, bool]:
        """One control step as the port's gym wrapper takes it."""
        env = self.env
        reward = env.calc_reward(-1)
        env.set_action(-1, action)
        for _ in range(self.substeps):
            env.update(1.0 / PHYSICS_HZ)
        state = np.array(env.record_state(-1))
        return state, reward, env.is_episode_end()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
