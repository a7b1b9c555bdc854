"""Evaluation summaries: the paired policy-against-baseline comparison of `charctl eval --baseline` and the
fall counts, on numbers worked by hand."""

import math

import numpy as np
import pytest

from charctl.play.evaluation import EvalResult, paired_comparison


def result(returns, horizon=10):
    return EvalResult(returns=list(returns), lengths=[1] * len(returns), fell=[True] * len(returns), horizon=horizon)


def test_paired_comparison_by_hand():
    # gains per start (/10): 0.2, 0.3, 0.0, 0.3 -> mean 0.2, sample std 0.1414, t(0.975, 3) = 3.18245
    comparison = paired_comparison(result([3, 5, 2, 4]), result([1, 2, 2, 1]))
    assert comparison["mean_gain"] == pytest.approx(0.2)
    half_width = 3.182446305 * 0.1414213562 / 2
    assert comparison["gain_ci95"] == pytest.approx([0.2 - half_width, 0.2 + half_width])
    assert comparison["ratio"] == pytest.approx(3.5 / 1.5)
    assert (comparison["wins"], comparison["losses"], comparison["ties"]) == (3, 0, 1)
    assert comparison["sign_test_p"] == pytest.approx(0.125)  # 3 wins of 3 decided starts: 0.5 ** 3


def test_a_policy_worse_from_every_start_has_a_negative_interval():
    comparison = paired_comparison(result([1, 1, 2, 1]), result([2, 3, 3, 2]))
    assert comparison["gain_ci95"][1] < 0 and comparison["wins"] == 0 and comparison["sign_test_p"] == 1.0


def test_unpaired_results_are_refused():
    with pytest.raises(ValueError, match="same episodes"):
        paired_comparison(result([1, 2]), result([1, 2, 3]))
    with pytest.raises(ValueError, match="same episodes"):
        paired_comparison(result([1, 2], horizon=None), result([1, 2], horizon=None))


def test_falls_are_counted_by_cause_and_by_tenth_of_the_clip():
    falls = result([1, 2, 3, 4])
    falls.fall_causes = {"head": 1, "left_hand": 3, "strayed": 1}
    falls.fall_phases = [0.05, 0.95, 0.999, 0.5]
    summary = falls.summary()
    assert list(summary["fall_causes"].items()) == [("left_hand", 3), ("head", 1), ("strayed", 1)]  # most first
    assert summary["falls_per_tenth_of_clip"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert "falls_per_tenth_of_clip" not in result([1, 2]).summary()  # no phase known: no row


def test_episode_lengths_are_averaged_by_the_tenth_of_the_clip_they_start_in():
    episodes = EvalResult(returns=[1, 2, 3, 4], lengths=[10, 30, 600, 20], fell=[True, True, False, True],
                          start_phases=[0.05, 0.08, 0.55, 0.999], horizon=600)
    assert episodes.summary()["mean_length_by_start_tenth"] == [20.0] + [None] * 4 + [600.0] + [None] * 3 + [20.0]
    assert "mean_length_by_start_tenth" not in result([1, 2]).summary()  # no start phases known: no row


def test_the_heading_error_is_the_mean_absolute_angle_per_step_in_degrees():
    from charctl.play.evaluation import _run_episodes

    class TwoSteps:  # each episode: one step 0.2 rad left of the reference, one 0.4 rad right, then the time limit
        unwrapped = None

        def reset(self, seed):
            self.left = 2
            return 0.0, {}

        def step(self, obs):
            self.left -= 1
            return 0.0, 0.5, False, self.left == 0, {"heading_error": 0.2 if self.left else -0.4}

    env = TwoSteps()
    env.unwrapped = env
    env.config = type("Config", (), {"horizon": 2})()
    summary = _run_episodes(env, lambda env, j: env.step, episodes=3, seed=0, progress=None).summary()
    assert summary["heading_error_degrees"] == pytest.approx(math.degrees(0.3))
    assert "heading_error_degrees" not in result([1, 2]).summary()  # a task that does not say has no row


def test_the_pose_error_by_joint_is_each_joints_weighted_share_and_mean_angle():
    """Two joints, weights 0.75 and 0.25 (DeepMimic's, normalised), angle errors per step (0.1, 0.2) and
    (0.3, 0.2): weighted squares 0.75 x 0.10 = 0.075 and 0.25 x 0.08 = 0.02, so shares 0.075 / 0.095 and
    0.02 / 0.095, the larger first; mean angles 0.2 and 0.2 rad."""
    from charctl.play.evaluation import _run_episodes

    class Character:
        joints = [type("Joint", (), {"name": "root", "reward_weight": 3.0})(),
                  type("Joint", (), {"name": "knee", "reward_weight": 1.0})()]

    class TwoSteps:
        character = Character()

        def reset(self, seed):
            self.left = 2
            return 0.0, {}

        def step(self, obs):
            self.left -= 1
            angles = np.array([0.1, 0.2]) if self.left else np.array([0.3, 0.2])
            return 0.0, 0.5, False, self.left == 0, {"joint_angle_error": angles}

    env = TwoSteps()
    env.unwrapped = env
    env.config = type("Config", (), {"horizon": 2})()
    ran = _run_episodes(env, lambda env, j: env.step, episodes=1, seed=0, progress=None)
    rows = ran.summary()["pose_error_by_joint"]
    assert [row["joint"] for row in rows] == ["root", "knee"]
    assert [row["share"] for row in rows] == pytest.approx([0.075 / 0.095, 0.02 / 0.095])
    assert [row["mean_degrees"] for row in rows] == pytest.approx([math.degrees(0.2)] * 2)
    assert "pose_error_by_joint" not in result([1, 2]).summary()  # a task that does not say has no row


@pytest.fixture(scope="module")
def canter():
    """The shipped canter policy and its env: its episodes fall within about a second, so they are cheap."""
    from charctl.play.policy_file import open_policy

    task = open_policy("policies/dog_canter.pt")
    env = task.make_env(evaluation=True)
    yield task, env
    env.close()


@pytest.mark.parametrize("how", ["deterministic", "stochastic", "reference"])
def test_episodes_shared_among_forked_workers_give_the_same_numbers_bit_for_bit(canter, how):
    from charctl.play.evaluation import evaluate, evaluate_reference_pd

    task, env = canter

    def run(workers):
        if how == "reference":
            return evaluate_reference_pd(env, episodes=5, seed=2, workers=workers).summary()
        return evaluate(env, task.policy, episodes=5, seed=2, deterministic=how == "deterministic",
                        exploration_rate=0.5, workers=workers).summary()

    alone = run(0)
    assert run(2) == alone and run(3) == alone  # every float equal, every list in episode order
    assert alone["episodes"] == 5 and len(set(alone["mean_length_by_start_tenth"]) - {None}) > 1


def test_a_dying_evaluation_worker_is_a_one_line_error_not_a_hang(canter):
    import os

    from charctl.play.evaluation import evaluate
    from charctl.util.errors import CharctlError

    task, env = canter
    parent = os.getpid()

    class DiesInAWorker:
        action = task.policy.action

        def act(self, obs):
            if os.getpid() != parent:
                os._exit(3)
            return task.policy.act(obs)

    with pytest.raises(CharctlError, match="an evaluation worker process died"):
        evaluate(env, DiesInAWorker(), episodes=4, workers=2)


def test_an_evaluation_stopped_early_ends_its_workers_at_once(canter):
    """Ctrl-C (or any error) in the middle: the workers are killed, not left to run the episodes still queued."""
    import multiprocessing
    import time

    from charctl.play.evaluation import evaluate

    task, env = canter

    def interrupt(done):
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        evaluate(env, task.policy, episodes=1000, workers=2, progress=interrupt)
    assert time.monotonic() - start < 30 and multiprocessing.active_children() == []
