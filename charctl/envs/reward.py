"""DeepMimic's imitation reward, as pure functions of two character states (simulated and reference).

r = sum_i w_i exp(-k_i e_i) over pose, velocity, end-effector, root and centre-of-mass terms; each term in [0, 1].
Both states are reduced to `RewardFeatures` by the same function (the reference's a batch of control steps
at a time, charctl/envs/reference.py), so a simulated character set exactly to the reference scores 1 on
every term.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from charctl.character.model import Character
from charctl.envs.config import RewardConfig
from charctl.sim.simulation import SimState
from charctl.util.rotations import heading_matrix, quat_diff_angle, quat_mul, quat_to_matrix

TERMS = ("pose", "velocity", "end_effector", "root", "com")


@dataclass
class RewardFeatures:
    """What the reward compares of one character state (or of a batch: leading dimensions)."""

    rot: np.ndarray  # (..., J, 4) local joint rotations; row 0 the root's world rotation
    spin: np.ndarray  # (..., J, 3) local joint angular velocities; row 0 the root body's world angular velocity
    root_pos: np.ndarray  # (..., 3)
    root_lin_vel: np.ndarray  # (..., 3)
    end_effectors: np.ndarray  # (..., E, 3) relative to the root in its own heading frame, heights absolute
    com_vel: np.ndarray  # (..., 3) the whole character's centre-of-mass velocity
    body_pos: np.ndarray  # (..., J, 3) joint frame origins, world (pose termination; not in the reward)

    def row(self, index: int) -> RewardFeatures:
        """One state of a batch."""
        return RewardFeatures(self.rot[index], self.spin[index], self.root_pos[index], self.root_lin_vel[index],
                              self.end_effectors[index], self.com_vel[index], self.body_pos[index])

    def moved(self, turn: np.ndarray, shift: np.ndarray) -> RewardFeatures:
        """The same motion turned by quaternion `turn` about the world z axis, then shifted horizontally.

        Joint quantities are local and end effectors heading-relative, so only the root's and the COM's change.
        """
        m = quat_to_matrix(turn).T  # row vectors: v @ m = turn applied to v
        rot, spin = self.rot.copy(), self.spin.copy()
        rot[..., 0, :] = quat_mul(turn, rot[..., 0, :])
        spin[..., 0, :] = spin[..., 0, :] @ m
        return RewardFeatures(rot=rot, spin=spin, root_pos=self.root_pos @ m + shift,
                              root_lin_vel=self.root_lin_vel @ m, end_effectors=self.end_effectors,
                              com_vel=self.com_vel @ m, body_pos=self.body_pos @ m + shift)


@functools.lru_cache(maxsize=None)
def joint_weights(character: Character) -> np.ndarray:
    """DeepMimic's per-joint DiffWeight, root included, normalised to sum to 1."""
    w = np.array([j.reward_weight for j in character.joints])
    return w / w.sum()


@functools.lru_cache(maxsize=None)
def _mass_fractions(character: Character) -> np.ndarray:
    return character.masses / character.masses.sum()


@functools.lru_cache(maxsize=None)
def _end_effectors(character: Character) -> np.ndarray:
    return np.asarray(character.end_effectors, dtype=np.int64)


def reward_features(character: Character, state: SimState, to_heading: np.ndarray | None = None) -> RewardFeatures:
    """The reward's view of a state; `to_heading` is heading_matrix(state.root_rot) when the caller has it."""
    return features_from_arrays(character, state.root_pos, state.root_rot, state.root_lin_vel, state.joint_rot,
                                state.joint_ang_vel, state.ang_vel[..., 0, :], state.link_pos, state.com_vel,
                                to_heading)


def features_from_arrays(character: Character, root_pos: np.ndarray, root_rot: np.ndarray, root_lin_vel: np.ndarray,
                         joint_rot: np.ndarray, joint_ang_vel: np.ndarray, root_ang_vel: np.ndarray,
                         link_pos: np.ndarray, com_vel: np.ndarray, to_heading: np.ndarray | None = None
                         ) -> RewardFeatures:
    """reward_features from the arrays it reads (SimState fields), batched over leading dimensions."""
    if to_heading is None:
        to_heading = heading_matrix(root_rot)
    rot, spin = joint_rot.copy(), joint_ang_vel.copy()
    rot[..., 0, :] = root_rot
    spin[..., 0, :] = root_ang_vel
    ee = link_pos[..., _end_effectors(character), :]
    local = (ee - root_pos[..., None, :]) @ np.swapaxes(to_heading, -1, -2)
    local[..., 2] = ee[..., 2]
    return RewardFeatures(rot=rot, spin=spin, root_pos=root_pos, root_lin_vel=root_lin_vel, end_effectors=local,
                          com_vel=_mass_fractions(character) @ com_vel, body_pos=link_pos)


def joint_angle_errors(sim: RewardFeatures, ref: RewardFeatures) -> np.ndarray:
    """Per joint, the angle (radians) of the rotation between the simulated and the reference joint, row 0 the
    root's world rotation: what the pose term weighs."""
    return quat_diff_angle(sim.rot, ref.rot)


def feature_terms(character: Character, sim: RewardFeatures, ref: RewardFeatures,
                  config: RewardConfig, angles: np.ndarray | None = None) -> dict[str, float]:
    """The reward terms; `angles` is joint_angle_errors(sim, ref) when the caller has it."""
    weights = joint_weights(character)
    if angles is None:
        angles = joint_angle_errors(sim, ref)
    dspin = sim.spin - ref.spin
    spin_sq = (dspin * dspin).sum(axis=1)
    d_ee = (sim.end_effectors - ref.end_effectors).ravel()
    d_root, d_lin, d_com = sim.root_pos - ref.root_pos, sim.root_lin_vel - ref.root_lin_vel, sim.com_vel - ref.com_vel
    # scalars from here on: Python floats cost less than numpy's 0-d arrays
    root_angle, root_spin_sq = float(angles[0]), float(spin_sq[0])
    joints_factor = character.num_joints / 15.0  # DeepMimic's scales are for its 15-joint humanoid
    pose_err = float(weights @ (angles * angles))
    vel_err = float(weights @ spin_sq)
    ee_err = float(d_ee @ d_ee)
    root_err = float(d_root @ d_root) + 0.1 * root_angle**2 + 0.01 * float(d_lin @ d_lin) + 0.001 * root_spin_sq
    com_err = 0.1 * float(d_com @ d_com)
    return {
        "pose": math.exp(-config.pose_scale * joints_factor * pose_err),
        "velocity": math.exp(-config.velocity_scale * joints_factor * vel_err),
        "end_effector": math.exp(-config.end_effector_scale * ee_err),
        "root": math.exp(-config.root_scale * root_err),
        "com": math.exp(-config.com_scale * com_err),
    }


def reward_terms(character: Character, sim: SimState, ref: SimState, config: RewardConfig) -> dict[str, float]:
    return feature_terms(character, reward_features(character, sim), reward_features(character, ref), config)


def total_reward(terms: dict[str, float], config: RewardConfig) -> float:
    weights = {"pose": config.pose_weight, "velocity": config.velocity_weight,
               "end_effector": config.end_effector_weight, "root": config.root_weight, "com": config.com_weight}
    return sum(weights[k] * terms[k] for k in TERMS) / sum(weights.values())
