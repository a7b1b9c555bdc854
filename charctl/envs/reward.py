"""DeepMimic's imitation reward, as pure functions of two character states (simulated and reference).

r = sum_i w_i exp(-k_i e_i) over pose, velocity, end-effector, root and centre-of-mass terms; each term in [0, 1].
Both states come through the same code path (a SimState), so a simulated character set exactly to the
reference scores 1 on every term.
"""

from __future__ import annotations

import numpy as np

from charctl.character import Character
from charctl.envs.config import RewardConfig
from charctl.rotations import heading_inverse, quat_diff_angle, quat_rotate
from charctl.sim import SimState

TERMS = ("pose", "velocity", "end_effector", "root", "com")


def joint_weights(character: Character) -> np.ndarray:
    """DeepMimic's per-joint DiffWeight, root included, normalised to sum to 1."""
    w = np.array([j.reward_weight for j in character.joints])
    return w / w.sum()


def _local_end_effectors(state: SimState, end_effectors: np.ndarray) -> np.ndarray:
    """End-effector positions relative to the root in the character's own heading frame, height kept absolute."""
    rel = state.link_pos[end_effectors] - state.root_pos
    rel = quat_rotate(heading_inverse(state.root_rot), rel)
    rel[:, 2] = state.link_pos[end_effectors, 2]
    return rel


def center_of_mass_velocity(character: Character, state: SimState) -> np.ndarray:
    masses = character.masses
    return masses @ state.com_vel / masses.sum()


def reward_terms(character: Character, sim: SimState, ref: SimState, config: RewardConfig) -> dict[str, float]:
    weights = joint_weights(character)
    joints_factor = character.num_joints / 15.0  # DeepMimic's scales are for its 15-joint humanoid
    angles = quat_diff_angle(sim.joint_rot, ref.joint_rot)
    angles[0] = quat_diff_angle(sim.root_rot, ref.root_rot)
    pose_err = float(weights @ angles**2)
    spin = sim.joint_ang_vel - ref.joint_ang_vel
    spin[0] = sim.ang_vel[0] - ref.ang_vel[0]
    vel_err = float(weights @ np.einsum("jk,jk->j", spin, spin))
    ee = np.asarray(character.end_effectors)
    ee_err = float(np.sum((_local_end_effectors(sim, ee) - _local_end_effectors(ref, ee)) ** 2))
    root_err = float(np.sum((sim.root_pos - ref.root_pos) ** 2)
                     + 0.1 * quat_diff_angle(sim.root_rot, ref.root_rot) ** 2
                     + 0.01 * np.sum((sim.root_lin_vel - ref.root_lin_vel) ** 2)
                     + 0.001 * np.sum((sim.ang_vel[0] - ref.ang_vel[0]) ** 2))
    com_err = 0.1 * float(np.sum((center_of_mass_velocity(character, sim) - center_of_mass_velocity(character, ref)) ** 2))
    return {
        "pose": float(np.exp(-config.pose_scale * joints_factor * pose_err)),
        "velocity": float(np.exp(-config.velocity_scale * joints_factor * vel_err)),
        "end_effector": float(np.exp(-config.end_effector_scale * ee_err)),
        "root": float(np.exp(-config.root_scale * root_err)),
        "com": float(np.exp(-config.com_scale * com_err)),
    }


def total_reward(terms: dict[str, float], config: RewardConfig) -> float:
    weights = {"pose": config.pose_weight, "velocity": config.velocity_weight,
               "end_effector": config.end_effector_weight, "root": config.root_weight, "com": config.com_weight}
    return sum(weights[k] * terms[k] for k in TERMS) / sum(weights.values())
