"""The simulator: state readout round-trips a pose, and stable PD tracks the reference clip open loop."""

import numpy as np
import pytest

from charctl.character.kinematics import body_velocities, forward_kinematics
from charctl.character.model import load_character
from charctl.motion.clip import load_clip
from charctl.sim.simulation import SimConfig, Simulation
from charctl.util import rotations as rot


@pytest.mark.parametrize("character,motion", [("humanoid", "spinkick"), ("dog", "trot")])
def test_state_reads_back_the_pose_it_was_set_to(character, motion):
    char = load_character(character)
    pose = load_clip(character, motion).sample(0.3)
    sim = Simulation(char)
    try:
        sim.set_pose(pose)
        state = sim.state()
    finally:
        sim.close()
    pos, body_rot = forward_kinematics(char, pose.root_pos, pose.root_rot, pose.joint_rot)
    lin, ang = body_velocities(char, pose, pos, body_rot)
    np.testing.assert_allclose(state.root_pos, pose.root_pos, atol=1e-9)
    np.testing.assert_allclose(state.link_pos, pos, atol=1e-6)
    assert rot.quat_diff_angle(state.joint_rot[1:], pose.joint_rot[1:]).max() < 1e-6
    np.testing.assert_allclose(state.joint_ang_vel, pose.joint_ang_vel, atol=1e-6)
    np.testing.assert_allclose(state.ang_vel, ang, atol=1e-4)  # PyBullet: ~2e-5 rad/s off down the dog tail
    np.testing.assert_allclose(state.root_lin_vel, pose.root_lin_vel, atol=1e-6)


def open_loop_time_up(character: str, motion: str, episodes: int = 20, seed: int = 0) -> np.ndarray:
    """Seconds before a forbidden ground contact, PD targets straight from the clip, random start phases."""
    char, clip = load_character(character), load_clip(character, motion)
    sim = Simulation(char, SimConfig())
    allowed = set(char.ground_contact_bodies)
    rng = np.random.default_rng(seed)
    times = []
    try:
        for _ in range(episodes):
            start = rng.uniform(0, clip.duration)
            sim.set_pose(clip.sample(start))
            steps = 0
            while steps < 150:
                sim.set_pd_targets(clip.sample(start + (steps + 1) / 30.0, velocities=False).joint_rot)
                sim.step()
                steps += 1
                if sim.ground_contacts() - allowed:
                    break
            times.append(steps / 30.0)
    finally:
        sim.close()
    return np.array(times)


def test_humanoid_tracks_spinkick_open_loop_longer_than_the_pybullet_port():
    """pybullet's DeepMimic port, measured the same way here: median 0.65 s. Ours at 240 Hz: 0.82 s."""
    times = open_loop_time_up("humanoid", "spinkick")
    assert np.median(times) >= 0.65
    assert times.max() < 5.0  # open loop never balances for long: balance must be learned


@pytest.mark.parametrize("character", ["humanoid", "dog"])
def test_stable_pd_settles_every_joint_on_a_target_in_the_air(character):
    """Weightless and off the ground, each joint sent 0.1 rad about z from its rest pose settles there.
    Regression: PyBullet's stable PD diverged on the dog's neck and tail capsules (along x), spinning the tail at
    the 100 rad/s cap; they now collide as boxes (charctl/character/recipe.collision_shape)."""
    char = load_character(character)
    sim = Simulation(char, SimConfig(gravity=0.0))
    try:
        pose = load_clip(character, "trot" if character == "dog" else "spinkick").sample(0.0)
        pose.root_pos = pose.root_pos + [0.0, 0.0, 3.0]
        pose.root_lin_vel, pose.root_ang_vel = np.zeros(3), np.zeros(3)
        pose.joint_ang_vel = np.zeros_like(pose.joint_ang_vel)
        pose.joint_rot = np.tile([0.0, 0.0, 0.0, 1.0], (char.num_joints, 1))
        sim.set_pose(pose)
        # 0.1 rad about z (the hinges' axis), towards the inside of a hinge's limits
        angle = [0.1 if j.kind != "revolute" or j.limits[0][0] <= 0.1 <= j.limits[0][1] else -0.1 for j in char.joints]
        target = rot.quat_from_rotvec(np.array([[0.0, 0.0, a] for a in angle]))
        for _ in range(30):
            sim.set_pd_targets(target)
            sim.step()
        state = sim.state()
    finally:
        sim.close()
    moved = list(sim.layout.actuated)
    assert np.abs(state.joint_ang_vel[moved]).max() < 0.05
    # tail 0.021 (boxes), 0.35-1.0 (diverging capsules)
    assert rot.quat_diff_angle(state.joint_rot[moved], target[moved]).max() < 0.03
