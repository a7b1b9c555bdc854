"""The reference track: exactly the per-time reference (clip.sample + reference_state), in chunks, moved by the
episode's offset; and the env's own reward is 1 on every step when the character is on the reference."""

import gymnasium as gym
import numpy as np
import pytest

import charctl.envs  # noqa: F401  (registers the tasks)
from charctl.character.model import load_character
from charctl.envs.reference import ReferenceTrack, offset_pose, reference_state
from charctl.envs.reward import reward_features
from charctl.motion.clip import load_clip
from charctl.util import rotations as rot


def _expected(character, clip, t, turn, shift):
    pose = offset_pose(clip.sample(t), turn, shift)
    return pose, reward_features(character, reference_state(character, pose))


def _assert_same(pose, features, expected_pose, expected_features):
    for name in ("root_pos", "root_rot", "joint_rot", "root_lin_vel", "root_ang_vel", "joint_ang_vel"):
        np.testing.assert_allclose(getattr(pose, name), getattr(expected_pose, name), atol=1e-12, err_msg=name)
    for name in ("rot", "spin", "root_pos", "root_lin_vel", "end_effectors", "com_vel"):
        np.testing.assert_allclose(getattr(features, name), getattr(expected_features, name), atol=1e-9,
                                   err_msg=name)


@pytest.mark.parametrize("character,motion", [("humanoid", "spinkick"), ("dog", "turn")])
def test_track_matches_the_per_time_reference_through_chunks_and_offsets(character, motion):
    char, clip = load_character(character), load_clip(character, motion)
    dt, start = 1.0 / 30.0, 0.613
    track = ReferenceTrack(char, clip, dt, chunk=8)
    for _ in range(2):  # the second episode opens with a chunk sized by the first
        track.restart(start)
        turn, shift = rot.IDENTITY, np.zeros(3)
        t = start
        for k in range(40):  # 5 chunks; the offset changes mid-chunk
            if k == 13:
                turn, shift = rot.z_rotation(0.7), np.array([0.4, -1.2, 0.0])
                track.move(turn, shift)
            _assert_same(track.pose(t), track.features(t), *_expected(char, clip, t, turn, shift))
            t += dt  # as the env counts time
    off_grid = t - 0.3 * dt
    _assert_same(track.pose(off_grid), track.features(off_grid), *_expected(char, clip, off_grid, turn, shift))
    early = start + 3 * dt  # back before the current chunk
    _assert_same(track.pose(early), track.features(early), *_expected(char, clip, early, turn, shift))


@pytest.mark.parametrize("task", ["HumanoidSpinkick", "DogCanter", "DogTurn"])
def test_env_reward_is_one_on_every_step_on_the_reference(task):
    """Physics replaced by setting the character to the reference pose: every term of every step's reward,
    computed by the env itself across cycle re-syncs (heading too for the turn), is 1."""
    env = gym.make(f"charctl/{task}-v0").unwrapped
    try:
        env.reset(seed=0, options={"start_time": 0.29})
        env.sim.set_pose(env.reference_pose())  # no lift out of the ground
        env.sim.step = lambda: env.sim.set_pose(env.reference_pose(env.time + env.dt))
        for _ in range(70):  # > 2 s: several cycles
            *_, info = env.step(np.zeros(env.action_space.shape))
            for name in ("pose", "velocity", "end_effector", "root", "com"):
                assert info[f"reward_{name}"] == pytest.approx(1.0, abs=1e-6), (env.time, name)
    finally:
        env.close()
