"""Evaluate a policy: returns, the AWR paper's normalised return, reward terms, pace, heading error, the pose
error by joint and fall rate.

Normalised return (imitation tasks) = sum of rewards / horizon, the horizon being a full episode's control
steps (20 s at 30 Hz = 600): a fall ends the episode, so the remaining steps score 0.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from charctl.awr.policy import NumpyPolicy
from charctl.awr.rollout import evaluation_seed, make_env, one_blas_thread
from charctl.awr.trainer import episode_horizon
from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_write_text


@dataclass
class EvalResult:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    fell: list[bool] = field(default_factory=list)
    term_sums: dict[str, float] = field(default_factory=dict)  # reward terms summed over all steps
    speed_sums: dict[str, float] = field(default_factory=dict)  # COM speeds (character, reference) summed
    heading_error_sum: float | None = None  # |the character's heading - the reference's| summed, radians
    # what ended the episodes that did not last: a body on the ground (each once per episode), "strayed" (pose
    # termination), or the env's failure flag (a non-finite action, a blown-up simulation)
    fall_causes: dict[str, int] = field(default_factory=dict)
    fall_phases: list[float] = field(default_factory=list)  # the clip's phase (0-1) when each of them ended
    start_phases: list[float] = field(default_factory=list)  # the clip's phase each episode started at, in order
    # per joint (root first): the pose term's angle errors summed over all steps, and the names and DeepMimic
    # weights that turn them into each joint's share of the pose error
    joint_angle_sum: np.ndarray | None = None
    joint_angle_sq_sum: np.ndarray | None = None
    joint_names: list[str] = field(default_factory=list)
    joint_weights: np.ndarray | None = None
    steps: int = 0
    horizon: int | None = None

    def add(self, other: EvalResult) -> None:
        """Another run's episodes after these (the sums add up, the lists follow on)."""
        self.returns += other.returns
        self.lengths += other.lengths
        self.fell += other.fell
        for mine, theirs in ((self.term_sums, other.term_sums), (self.speed_sums, other.speed_sums),
                             (self.fall_causes, other.fall_causes)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        if other.heading_error_sum is not None:
            self.heading_error_sum = (self.heading_error_sum or 0.0) + other.heading_error_sum
        self.fall_phases += other.fall_phases
        self.start_phases += other.start_phases
        if other.joint_angle_sum is not None:
            if self.joint_angle_sum is None:
                self.joint_names, self.joint_weights = list(other.joint_names), other.joint_weights
                self.joint_angle_sum = np.zeros_like(other.joint_angle_sum)
                self.joint_angle_sq_sum = np.zeros_like(other.joint_angle_sq_sum)
            self.joint_angle_sum += other.joint_angle_sum
            self.joint_angle_sq_sum += other.joint_angle_sq_sum
        self.steps += other.steps

    def summary(self) -> dict:
        returns = np.asarray(self.returns, dtype=np.float64)
        out = {"episodes": len(returns), "mean_return": float(returns.mean()), "std_return": float(returns.std()),
               "mean_length": float(np.mean(self.lengths))}
        if self.horizon:
            normalized = returns / self.horizon
            out.update(normalized_return=float(normalized.mean()), normalized_return_std=float(normalized.std()),
                       fall_rate=float(np.mean(self.fell)),
                       reward_terms={k: v / max(self.steps, 1) for k, v in sorted(self.term_sums.items())})
            if self.speed_sums:
                out["pace"] = {k: v / max(self.steps, 1) for k, v in sorted(self.speed_sums.items())}
            if self.heading_error_sum is not None:
                out["heading_error_degrees"] = math.degrees(self.heading_error_sum / max(self.steps, 1))
            out["fall_causes"] = dict(sorted(self.fall_causes.items(), key=lambda item: (-item[1], item[0])))
            if self.joint_angle_sum is not None:
                out["pose_error_by_joint"] = self._pose_error_by_joint()
            if self.fall_phases:  # where in the clip the falls come: counts per tenth of its cycle
                out["falls_per_tenth_of_clip"] = np.bincount(_tenths(self.fall_phases), minlength=10).tolist()
            if len(self.start_phases) == len(self.lengths):  # how long episodes last by where they start
                starts = _tenths(self.start_phases)
                lengths = np.asarray(self.lengths, dtype=np.float64)
                out["mean_length_by_start_tenth"] = [float(lengths[starts == k].mean()) if (starts == k).any()
                                                     else None for k in range(10)]
        return out

    def _pose_error_by_joint(self) -> list[dict]:
        """Each joint's mean angle error and its share of the pose error (weight x angle^2), largest share first:
        which joints keep the pose term down."""
        weighted = self.joint_weights * self.joint_angle_sq_sum
        shares = weighted / weighted.sum() if weighted.sum() > 0 else np.zeros_like(weighted)
        mean_degrees = np.degrees(self.joint_angle_sum / max(self.steps, 1))
        rows = [{"joint": name, "mean_degrees": float(d), "share": float(sh)}
                for name, d, sh in zip(self.joint_names, mean_degrees, shares)]
        return sorted(rows, key=lambda row: -row["share"])


def _tenths(phases: list[float]) -> np.ndarray:
    """The tenth of the clip's cycle (0-9) each phase in [0, 1] lies in."""
    return np.minimum((np.asarray(phases) * 10).astype(int), 9)


def evaluate(env, policy: NumpyPolicy, episodes: int, seed: int = 0, deterministic: bool = True,
             progress=None, action_std: float | None = None, exploration_rate: float = 1.0,
             workers: int = 0) -> EvalResult:
    """Run whole episodes from seeded resets; episode j starts from the same state whatever else runs, and not
    from any of the trainer's test episodes' start states (it chose its best checkpoint on those).

    Not deterministic: each step samples (with `action_std`, default the policy's) with probability
    `exploration_rate`, else takes the mean, as a training step does; episode j draws from its own generator.
    `workers` > 1: the episodes are shared among that many processes forked from this one; the result is the
    same as in this process, bit for bit."""

    def stepper(env, j: int):
        rng = np.random.default_rng([seed, j])  # the same draws whichever process runs the episode

        def step(obs):
            if deterministic:
                action = policy.act(obs)
            else:
                action = policy.explore(obs, rng, noise_std=action_std, rate=exploration_rate)[0]
            return env.step(int(action) if policy.action.discrete else action)
        return step

    return _run_episodes(env, stepper, episodes, seed, progress, workers)


def evaluate_reference_pd(env, episodes: int, seed: int = 0, progress=None, workers: int = 0) -> EvalResult:
    """The no-policy baseline of an imitation task: PD targets taken straight from the reference clip (its
    next control step's joint rotations), from the same seeded start states as `evaluate`."""

    def stepper(imitation, j: int):
        def step(obs):
            return imitation.step_with_targets(imitation.reference_pose(imitation.time + imitation.dt).joint_rot)
        return step

    return _run_episodes(env.unwrapped, stepper, episodes, seed, progress, workers)


def cached_reference_pd(cache: Path, env_id: str, env_kwargs: dict, episodes: int) -> dict:
    """`evaluate_reference_pd`'s summary over `episodes` held-out starts of that env, kept in `cache` with the
    settings it was measured with (under "key") and measured again when they differ or the file is unreadable."""
    key = json.loads(json.dumps({"env_id": env_id, "env_kwargs": env_kwargs, "episodes": episodes}))
    if cache.exists():
        try:
            saved = json.loads(cache.read_text())
        except ValueError:
            saved = None  # unreadable: measure again
        if isinstance(saved, dict) and saved.get("key") == key:
            return saved
    env = make_env(env_id, env_kwargs)
    try:
        saved = {"key": key, **evaluate_reference_pd(env, episodes).summary()}
    finally:
        env.close()
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(saved, indent=1) + "\n")
    return saved

def _run_episodes(env, stepper, episodes: int, seed: int, progress, workers: int = 0) -> EvalResult:
    """Episodes 0..episodes-1, each from its seeded reset with the step function `stepper(env, j)` makes, summed
    in episode order (so the sums are the same whether this process or forked workers ran them). A reset sets the
    whole simulation state, so an episode does not depend on the episodes run before it in the same env. The
    policy runs on one BLAS thread, here and in forked workers (one_blas_thread says why)."""
    with one_blas_thread():
        if workers > 1 and episodes > 1:
            records = _in_forked_workers(env, stepper, episodes, seed, workers)
        else:
            records = (_one_episode(env, stepper(env, j), seed, j) for j in range(episodes))
        result = EvalResult(horizon=episode_horizon(env))
        try:
            for j, record in enumerate(records):
                result.add(record)
                if progress is not None:
                    progress(j + 1)
        finally:
            records.close()  # forked workers: stopped now, not after the episodes still queued (Ctrl-C, an error)
    return result


def _one_episode(env, step, seed: int, j: int) -> EvalResult:
    result = EvalResult()
    obs, start_info = env.reset(seed=evaluation_seed(seed, j, held_out=True))
    if "phase" in start_info:
        result.start_phases.append(float(start_info["phase"]))
    total, length, fell = 0.0, 0, False
    while True:
        obs, reward, terminated, truncated, info = step(obs)
        total += float(reward)
        length += 1
        for key, value in info.items():
            if key.startswith("reward_"):
                result.term_sums[key[len("reward_"):]] = result.term_sums.get(key[len("reward_"):], 0.0) + value
        for key in ("speed", "reference_speed"):
            if key in info:
                result.speed_sums[key] = result.speed_sums.get(key, 0.0) + info[key]
        if "heading_error" in info:
            result.heading_error_sum = (result.heading_error_sum or 0.0) + abs(info["heading_error"])
        if "joint_angle_error" in info:
            _add_joint_angles(result, env, info["joint_angle_error"])
        if terminated or truncated:
            fell = bool(terminated)
            if fell:
                for cause in _fall_causes(info):
                    result.fall_causes[cause] = result.fall_causes.get(cause, 0) + 1
                if "phase" in info:
                    result.fall_phases.append(float(info["phase"]))
            break
    result.returns.append(total)
    result.lengths.append(length)
    result.fell.append(fell)
    result.steps = length
    return result


_FORKED = None  # (env, stepper, seed) for the forked evaluation workers, which inherit it rather than unpickle it


def _in_forked_workers(env, stepper, episodes: int, seed: int, workers: int):
    """One episode's EvalResult at a time, in episode order, from `workers` processes forked from this one (each
    with its own copy of `env`). A worker that dies ends the evaluation with an error instead of a hang."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _FORKED
    _FORKED = (env, stepper, seed)
    pool = ProcessPoolExecutor(min(workers, episodes), mp_context=mp.get_context("fork"),
                               initializer=_forked_worker_start, initargs=(os.getpid(),))
    finished = False
    try:
        yield from pool.map(_forked_episode, range(episodes))
        finished = True
    except BrokenProcessPool:
        raise CharctlError("an evaluation worker process died (killed, or out of memory); run again, or with "
                           "--workers 0 to evaluate in this process") from None
    finally:
        _FORKED = None
        if not finished:  # stopped early: kill the workers rather than wait for their episodes (Python 3.14 has
            for process in getattr(pool, "_processes", {}).values():  # terminate_workers() for this)
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _forked_worker_start(parent_pid: int) -> None:
    import signal

    from charctl.awr.rollout import die_with_parent

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool


def _forked_episode(j: int) -> EvalResult:
    env, stepper, seed = _FORKED
    return _one_episode(env, stepper(env, j), seed, j)


def _add_joint_angles(result: EvalResult, env, angles: np.ndarray) -> None:
    if result.joint_angle_sum is None:
        from charctl.envs.reward import joint_weights

        character = env.unwrapped.character
        result.joint_names = [joint.name for joint in character.joints]
        result.joint_weights = joint_weights(character)
        result.joint_angle_sum, result.joint_angle_sq_sum = np.zeros(len(angles)), np.zeros(len(angles))
    result.joint_angle_sum += angles
    result.joint_angle_sq_sum += angles * angles


def _fall_causes(info: dict) -> list[str]:
    """What ended an episode early, from its last step's info (nothing for a task that does not say)."""
    causes = list(info.get("fell_on", ()))
    causes += [flag for flag in ("strayed", "invalid_action", "sim_failure") if info.get(flag)]
    return causes


def paired_comparison(policy: EvalResult, baseline: EvalResult) -> dict:
    """A policy against the baseline run from the same start states, episode by episode: the mean gain in
    normalised return with its 95% t-interval, how many starts it wins, and a sign test's p-value (the chance
    of at least that many wins were the two equally good). Pairing removes the start states' own spread."""
    from scipy import stats

    if len(policy.returns) != len(baseline.returns) or not policy.horizon or policy.horizon != baseline.horizon:
        raise ValueError("a paired comparison needs two imitation evaluations of the same episodes")
    policy_mean, baseline_mean = np.mean(policy.returns) / policy.horizon, np.mean(baseline.returns) / policy.horizon
    gain = (np.asarray(policy.returns) - np.asarray(baseline.returns)) / policy.horizon
    mean_gain, n = float(gain.mean()), len(gain)
    wins, losses = int(np.sum(gain > 0)), int(np.sum(gain < 0))
    half_width = float(stats.t.ppf(0.975, n - 1) * gain.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    p_value = float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue) if wins + losses else 1.0
    return {"mean_gain": mean_gain, "gain_ci95": [mean_gain - half_width, mean_gain + half_width],
            "ratio": float(policy_mean / baseline_mean) if baseline_mean > 0 else None,
            "wins": wins, "losses": losses, "ties": n - wins - losses, "sign_test_p": p_value}
