"""Imitation env options for learning faster: pose termination, reference-ahead observations, no phase, clip
speed, a training episode cap, a window of start phases."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import charctl.envs  # noqa: F401  (registers the tasks)
from charctl.envs.reward import feature_terms, reward_features
from charctl.play.policy_file import open_policy
from charctl.util import rotations as rot
from charctl.util.rotations import heading_matrix


def make(task: str, **config):
    return gym.make(f"charctl/{task}-v0", config=config).unwrapped


def reference_pd_episode(env, seed: int) -> list[dict]:
    env.reset(seed=seed)
    infos = []
    while True:
        *_, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))  # residual: reference PD
        infos.append(info)
        if terminated or truncated:
            return infos


@pytest.mark.parametrize("task", ["DogTrot", "HumanoidSpinkick"])
def test_options_keep_the_env_conformant(task):
    env = make(task, pose_termination_distance=0.5, reference_ahead=[1, 2, 3], observe_phase=False,
               observe_world_root=True, train_time_limit=0.5, train_start_phases=[0.9, 0.1])
    try:
        check_env(env, skip_render_check=True)
        joints, effectors = env.character.num_joints, len(env.character.end_effectors)
        assert env.observation_space.shape == (1 + 15 * joints + 3 * (9 + 6 * (joints - 1) + 3 * effectors),)
        for info in reference_pd_episode(env, seed=1):
            assert 0.0 <= sum(info[f"reward_{k}"] for k in ("pose", "root")) <= 2.0
    finally:
        env.close()


def test_pose_termination_ends_an_episode_that_strays_but_never_on_its_first_step():
    plain, strict = make("DogTrot"), make("DogTrot", pose_termination_distance=0.0)
    loose = make("DogTrot", pose_termination_distance=100.0)
    try:
        for seed in range(3):
            strict_infos = reference_pd_episode(strict, seed)
            assert len(strict_infos) == 2 and strict_infos[-1]["strayed"] and not strict_infos[-1]["fell"]
            # a distance no body reaches changes nothing: the same steps and rewards as without the option
            plain_infos, loose_infos = reference_pd_episode(plain, seed), reference_pd_episode(loose, seed)
            assert [i["reward_pose"] for i in plain_infos] == [i["reward_pose"] for i in loose_infos]
            assert not any(i["strayed"] for i in loose_infos)
    finally:
        for env in (plain, strict, loose):
            env.close()


def test_a_training_time_limit_truncates_episodes_there_and_changes_nothing_before():
    plain, capped = make("HumanoidSpinkick"), make("HumanoidSpinkick", train_time_limit=0.2)  # 6 control steps
    short = make("HumanoidSpinkick", time_limit=0.1, train_time_limit=5.0)  # the shorter of the two rules
    try:
        truncations = 0
        for seed in range(4):
            plain_infos, capped_infos = reference_pd_episode(plain, seed), reference_pd_episode(capped, seed)
            assert len(capped_infos) == min(6, len(plain_infos))
            assert [i["reward_pose"] for i in capped_infos] == [i["reward_pose"] for i in plain_infos[:6]]
            truncations += not capped_infos[-1]["fell"]
            assert len(reference_pd_episode(short, seed)) == min(3, len(plain_infos))
        assert truncations >= 3  # reference PD stays up longer than 0.2 s from most starts
        assert capped.config.horizon == plain.config.horizon == 600  # the normalised return's T is the time limit's
    finally:
        for env in (plain, capped, short):
            env.close()


def test_an_evaluation_puts_episodes_that_stray_down_to_pose_termination():
    from charctl.play.evaluation import evaluate_reference_pd

    env = make("DogTrot", pose_termination_distance=0.0)
    try:
        summary = evaluate_reference_pd(env, episodes=3).summary()
    finally:
        env.close()
    assert summary["fall_rate"] == 1.0 and summary["fall_causes"] == {"strayed": 3}


def test_pose_termination_ends_the_reference_pd_baseline_sooner_the_tighter_it_is():
    lengths = {}
    for distance in (None, 0.5, 0.2):
        env = make("DogTrot", pose_termination_distance=distance)
        try:
            lengths[distance] = np.mean([len(reference_pd_episode(env, seed)) for seed in range(4)])
        finally:
            env.close()
    assert lengths[None] > lengths[0.5] > lengths[0.2]


def test_evaluation_turns_pose_termination_clip_speed_and_the_episode_cap_off(tmp_path):
    task = open_policy("policies/dog_trot.pt")
    task.env_kwargs["config"] = {**task.env_kwargs["config"], "pose_termination_distance": 0.3, "clip_speed": 0.5,
                                 "train_time_limit": 0.5, "train_start_phases": [0.7, 0.8]}
    for evaluation, expected in ((True, (None, 1.0, None, None)), (False, (0.3, 0.5, 0.5, [0.7, 0.8]))):
        env = task.make_env(evaluation=evaluation).unwrapped
        try:
            assert (env.config.pose_termination_distance, env.config.clip_speed, env.config.train_time_limit,
                    env.config.train_start_phases) == expected
        finally:
            env.close()


def test_clip_speed_plays_the_reference_slower_and_the_reference_still_scores_one():
    normal, half = make("DogTrot"), make("DogTrot", clip_speed=0.5)
    try:
        check_env(half, skip_render_check=True)
        assert half.clip.duration == pytest.approx(2 * normal.clip.duration)
        for start in (0.2, 0.45):
            normal.reset(seed=0, options={"start_time": start})
            half.reset(seed=0, options={"start_time": 2 * start})  # the same frame of the clip
            assert half._phase() == pytest.approx(normal._phase())
            fast, slow = normal.reference_pose(), half.reference_pose()
            np.testing.assert_allclose(slow.joint_rot, fast.joint_rot, atol=1e-12)
            np.testing.assert_allclose(slow.joint_ang_vel, 0.5 * fast.joint_ang_vel, atol=1e-9)
            np.testing.assert_allclose(slow.root_lin_vel, 0.5 * fast.root_lin_vel, atol=1e-9)
            np.testing.assert_allclose(half.track.features(half.time).com_vel,
                                       0.5 * normal.track.features(normal.time).com_vel, atol=1e-9)
            # a character exactly on the slowed reference, velocities included, scores 1 on every term
            half.sim.set_pose(slow)
            state = half.sim.state()
            features = reward_features(half.character, state, heading_matrix(state.root_rot))
            terms = feature_terms(half.character, features, half.track.features(half.time), half.config.reward)
            for name, value in terms.items():
                assert value == pytest.approx(1.0, abs=1e-6), (start, name)
    finally:
        normal.close()
        half.close()


def test_observe_phase_false_drops_exactly_the_phase():
    with_phase, without = make("HumanoidSpinkick"), make("HumanoidSpinkick", observe_phase=False)
    try:
        a, _ = with_phase.reset(seed=3)
        b, _ = without.reset(seed=3)
        assert a[0] == pytest.approx(with_phase._phase())
        np.testing.assert_array_equal(a[1:], b)
    finally:
        with_phase.close()
        without.close()


@pytest.mark.parametrize("task", ["DogTrot", "HumanoidSpinkick"])
def test_observe_world_root_shows_the_heading_in_exactly_the_root_s_rotation_and_velocities(task):
    heading_only, world = make(task, observe_world_root=False), make(task, observe_world_root=True)
    try:
        for seed in (0, 5):
            a, _ = heading_only.reset(seed=seed)
            b, _ = world.reset(seed=seed)
            for _ in range(3):  # off the reference's start pose, the root turned by the simulation
                a, *_ = heading_only.step(np.full(heading_only.action_space.shape, 0.3))
                b, *_ = world.step(np.full(world.action_space.shape, 0.3))
            state = world.sim.state()
            axes = rot.quat_to_matrix(state.root_rot)
            in_world = np.concatenate([axes[:, 0], axes[:, 1], state.com_vel[0], state.ang_vel[0]])
            root = slice(5, 17)  # after the phase, the root height and the root's own relative COM
            np.testing.assert_allclose(b[root], in_world, atol=1e-5)
            to_heading = heading_matrix(state.root_rot)  # the same vectors, seen from the heading frame
            np.testing.assert_allclose(a[root], (in_world.reshape(4, 3) @ to_heading.T).ravel(), atol=1e-5)
            # the root faces off the world's x axis here, so the two observations differ
            assert abs(rot.heading(state.root_rot)) > 0.05 and not np.allclose(a[root], b[root], atol=1e-3)
            rest = np.ones(a.shape, bool)
            rest[root] = False
            np.testing.assert_array_equal(a[rest], b[rest])
    finally:
        heading_only.close()
        world.close()


def test_the_root_s_world_rotation_is_observed_where_deepmimic_observes_it():
    """DeepMimic's phase_rot controllers (RecordWorldRootRot) go with the clips whose reference heading is not synced
    to the character's; the turning loop syncs it and observes the heading frame only."""
    observed = {task: make(task).config.observe_world_root
                for task in ("DogTrot", "DogCanter", "DogTurn", "HumanoidSpinkick", "HumanoidCartwheel")}
    assert observed == {"DogTrot": True, "DogCanter": True, "DogTurn": False, "HumanoidSpinkick": True,
                        "HumanoidCartwheel": True}
    # a policy trained before the setting existed keeps the heading-frame observation it learnt on
    earlier = open_policy(Path(__file__).resolve().parents[1] / "policies/earlier/dog_canter-640k/dog_canter.pt")
    assert earlier.env_kwargs["config"]["observe_world_root"] is False


@pytest.mark.parametrize("task", ["DogTrot", "HumanoidSpinkick"])
def test_reference_ahead_observes_the_clip_k_steps_ahead_from_the_simulated_root(task):
    ahead = [1, 3]
    env = make(task, reference_ahead=ahead)
    try:
        base = 2 + 15 * env.character.num_joints
        for start in (0.1, 0.77):
            obs, _ = env.reset(seed=0, options={"start_time": start})
            state = env.sim.state()
            to_heading = rot.heading_matrix(state.root_rot)
            for index, k in enumerate(ahead):
                block = obs[base + index * env._ahead_size:base + (index + 1) * env._ahead_size]
                pose = env.reference_pose(start + k * env.dt)  # the clip sampled on its own, not the env's track
                np.testing.assert_allclose(block[:3], to_heading @ (pose.root_pos - state.root_pos), atol=1e-5)
                root_axes = to_heading @ rot.quat_to_matrix(pose.root_rot)
                np.testing.assert_allclose(block[3:9], np.concatenate([root_axes[:, 0], root_axes[:, 1]]), atol=1e-5)
                joint_axes = rot.quat_to_matrix(pose.joint_rot[1:])
                expected = np.concatenate([joint_axes[:, :, 0], joint_axes[:, :, 1]], axis=1).ravel()
                np.testing.assert_allclose(block[9:9 + expected.size], expected, atol=1e-5)
    finally:
        env.close()


def test_the_clips_joint_velocities_as_pd_targets_take_the_lag_off_the_front_legs():
    """benchmarks/paw_tracking.py (docs/results.md, "Where the pose error comes from"): with target velocity 0 a
    light joint lags its moving target by about Kd / Kp = 0.1 s; with the clip's velocities as targets the forearms
    track about twice as closely (8 starts: 10.9-17.8 degrees off against 6.2-8.2)."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        import paw_tracking
    finally:
        sys.path.pop(0)
    errors = {}
    for velocity in (False, True):
        env = gym.make("charctl/DogTrot-v0", config={"pd_target_velocity": velocity}).unwrapped
        try:
            zero = np.zeros(env.action_space.shape)
            result = paw_tracking.run(env, lambda obs: zero, episodes=2)
        finally:
            env.close()
        assert result["steps"] > 10 and all(0.0 <= share <= 1.0 for share in result["touching"].values())
        errors[velocity] = result["angles"][:2]  # the forearms
    assert (errors[True] < 0.75 * errors[False]).all()


@pytest.mark.parametrize("window", [[0.7, 0.85], [0.9, 0.1], [0.3, 0.3]])
def test_training_starts_fall_in_the_start_phase_window(window):
    env = make("HumanoidSpinkick", train_start_phases=window)
    try:
        phases = [env.reset(seed=seed)[1]["phase"] for seed in range(40)]
    finally:
        env.close()
    low, high = window
    inside = [(low - 1e-9 <= p <= high + 1e-9) if low <= high else (p >= low - 1e-9 or p <= high + 1e-9)
              for p in phases]
    assert all(inside), phases
    if low != high:  # spread over the window, not one point
        assert len({round(p, 6) for p in phases}) == 40
    if low > high:  # both sides of the wrap
        assert any(p >= low for p in phases) and any(p <= high for p in phases)


def test_a_window_share_starts_that_share_of_episodes_in_the_window_and_the_rest_anywhere():
    env = make("HumanoidSpinkick", train_start_phases=[0.25, 0.5], train_start_window_share=0.5)
    try:
        phases = np.array([env.reset(seed=seed)[1]["phase"] for seed in range(200)])
    finally:
        env.close()
    inside = (phases >= 0.25) & (phases <= 0.5)
    # half in the window, plus the quarter of the other half that lands there by chance: 0.625 expected
    assert 0.5 < inside.mean() < 0.75
    assert ((phases < 0.25) | (phases > 0.5)).sum() > 50 and phases.min() < 0.1 and phases.max() > 0.9


def test_the_whole_cycle_as_a_window_starts_where_no_window_does():
    plain, whole = make("DogTrot"), make("DogTrot", train_start_phases=[0.0, 1.0])
    try:
        for seed in range(5):
            assert whole.reset(seed=seed)[1]["time"] == pytest.approx(plain.reset(seed=seed)[1]["time"], abs=1e-12)
    finally:
        plain.close()
        whole.close()


@pytest.mark.parametrize("window, message", [([0.5], "at least 2"), ([0.1, 0.2, 0.3], "at most 2"),
                                             ([1.5, 0.2], "out of range")])
def test_a_bad_start_phase_window_is_refused_with_the_setting_named(window, message):
    from charctl.envs.config import load_env_config
    from charctl.util.errors import CharctlError

    with pytest.raises(CharctlError, match=f"train_start_phases.*{message}"):
        load_env_config("dog", "trot", {"train_start_phases": window})
