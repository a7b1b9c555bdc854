"""`charctl eval CHECKPOINT`: mean return, the paper's normalised return, reward terms and fall rate."""

import argparse
import json

from charctl.commands import seed


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a trained policy (normalised return, reward terms, fall rate)",
        description="Run a trained policy for whole episodes from seeded start states and report the return. "
        "Imitation tasks also report the AWR paper's normalised return (sum of rewards / 600 for 20 s at 30 Hz; a "
        "fall scores 0 for the remaining steps), each reward term's mean and the fall rate.",
        epilog="example: charctl eval runs/dog_trot-s0/dog_trot.pt --episodes 32\n"
               "         charctl eval runs/Hopper-v5-s0/Hopper-v5.pt --episodes 10 --json\n"
               "         charctl eval --reference dog trot --episodes 32    # the no-policy baseline\n"
               "         charctl eval --reference humanoid spinkick --set env.sim.controller=stable_pd "
               "--set env.sim.physics_hz=240\n"
               "         charctl eval policies/dog_trot.pt --episodes 32 --baseline   # both, start by start\n"
               "         charctl eval runs/dog_trot-s0/marks/*.pt --episodes 32 --workers 2   # a run's kept "
               "policies, 2 processes\n"
               "         charctl eval policies/dog_turn.pt --episodes 32 --actor   # the actor, not the mean of its "
               "weights\n"
               "         charctl eval runs/slow_trot/dog_trot.pt --as-trained   # at the clip speed it trained at\n"
               "         charctl eval policies/dog_trot.pt --stochastic --exploration-rate 0.5   # under half the "
               "training noise\n"
               "         charctl eval policies/humanoid_spinkick.pt --as-trained --set \"env.train_start_phases=[0.25, "
               "0.5]\"   # from the take-off only",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoints", metavar="CHECKPOINT", nargs="*",
                        help="a .pt file written by charctl train; several (e.g. a run's marks/*.pt) are each run from "
                             "the same start states, a line each, and compared start by start with the first")
    parser.add_argument("--reference", nargs=2, metavar=("CHARACTER", "MOTION"),
                        help="instead of a checkpoint: the baseline with PD targets taken from the reference clip")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                        help="an env setting, env.KEY=VALUE (repeatable): for --reference, or over an imitation "
                             "checkpoint's own (one that keeps its observation and action sizes); training-only "
                             "settings need --as-trained")
    parser.add_argument("--baseline", action="store_true",
                        help="also run the reference-PD baseline from the same start states and compare the two "
                             "episode by episode (imitation checkpoints)")
    parser.add_argument("--as-trained", action="store_true",
                        help="imitation: keep the training-only env settings (clip_speed, "
                        "pose_termination_distance, train_time_limit, train_start_phases, train_grounded_clip) that "
                        "evaluation turns off, to see the policy in the task it trained on; with --reference, the "
                        "--set env settings as given")
    parser.add_argument("--actor", action="store_true",
                        help="play the actor the run fits instead of the mean of its weights the run keeps "
                             "(checkpoints of runs with average_from, which otherwise play the mean; the others play "
                             "their actor either way)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the start states (default 0)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean / argmax")
    parser.add_argument("--action-std", type=float, metavar="STD",
                        help="with --stochastic: sample with this std in normalised action units instead of the "
                             "policy's own (Discrete actions: the chance of a uniformly random action)")
    parser.add_argument("--exploration-rate", type=float, metavar="RATE",
                        help="with --stochastic: each step samples with this probability and takes the mean "
                             "otherwise, as training with exploration_rate does (default 1: every step samples)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="share the episodes among N processes forked from this one (default 0: in this "
                             "process); the same numbers, bit for bit, in about 1/N of the time on N free cores")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args) -> int:
    _check_arguments(args)
    if len(args.checkpoints) > 1:
        return _run_several(args)
    task = _policy_task(args, args.checkpoints[0]) if args.checkpoints else None
    if task is not None:
        _check_actor_choice(args, [task])
    env, name, header, task = _open(args, task)
    summary, _ = _evaluated(args, env, name, header, task)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, name, "reference PD, no policy" if task is None else _source(summary, task))
    return 0


def _evaluated(args, env, name, header, task):
    """(the summary: the header, the result's and with --baseline the comparison; the policy's EvalResult)."""
    try:
        result, baseline = _evaluate(args, env, task, name)
    finally:
        env.close()
    summary = {**header, **result.summary()}
    if baseline is not None:
        from charctl.play.evaluation import paired_comparison

        summary.update(baseline=baseline.summary(), comparison=paired_comparison(result, baseline))
    return summary, result


def _run_several(args) -> int:
    """Each checkpoint from the same start states (the same --seed), in the order given; each after the first is
    compared with the first start by start when both imitate the same clip over the same time limit. Every file is
    read (and --set checked against it) before any episode runs, so a bad one is refused before the others'
    evaluations."""
    from charctl.play.evaluation import paired_comparison

    tasks = [_policy_task(args, path) for path in args.checkpoints]
    _check_actor_choice(args, tasks)
    summaries, first = [], None
    for index, task in enumerate(tasks):
        env, name, header, task = _open(args, task)
        summary, result = _evaluated(args, env, f"{name} ({index + 1}/{len(tasks)})", header, task)
        if first is None:
            first = (task, result)
        elif _same_clip(first[0], task) and result.horizon == first[1].horizon:  # the same starts and scale
            summary["against_first"] = paired_comparison(result, first[1])
        summaries.append(summary)
        if not args.json:
            _print_line(summary, task)
    if args.json:
        print(json.dumps(summaries))
    else:
        key = "normalized_return" if all("normalized_return" in r for r in summaries) else "mean_return"
        best = max(range(len(summaries)), key=lambda i: summaries[i][key])
        print(f"highest {key.replace('_', ' ').replace('normalized', 'normalised')}: {args.checkpoints[best]} "
              f"({summaries[best][key]:.3f})")
    return 0


def _same_clip(first, other) -> bool:
    """Imitation policies of the same character and clip: their seeded episodes start from the same states."""
    keys = ("character", "motion")
    return first.is_imitation and other.is_imitation and \
        [first.env_kwargs.get(k) for k in keys] == [other.env_kwargs.get(k) for k in keys]


def _print_line(summary: dict, task) -> None:
    """One checkpoint of several: its score, and how it compares with the first start by start."""
    if "normalized_return" in summary:
        score = (f"normalised return {summary['normalized_return']:.3f} +- {summary['normalized_return_std']:.3f}, "
                 f"fall rate {summary['fall_rate']:.2f}")
    else:
        score = f"return {summary['mean_return']:.2f} +- {summary['std_return']:.2f}"
    source = f"{task.samples} samples" + (", the actor" if summary["actor"] and task.keeps_average else "")
    line = f"{task.path} ({source}): {score}, mean length {summary['mean_length']:.0f}"
    if "comparison" in summary:
        line += f"; reference PD {summary['baseline']['normalized_return']:.3f}"
    if "against_first" in summary:
        comp = summary["against_first"]
        low, high = comp["gain_ci95"]
        line += (f"; against the first, start by start: {comp['mean_gain']:+.4f} (95% CI {low:+.4f} to "
                 f"{high:+.4f}), better from {comp['wins']} of {summary['episodes']}, worse from {comp['losses']}")
    print(line, flush=True)


def _source(summary: dict, task) -> str:
    text = f"{task.samples} training samples"
    if summary["actor"] and task.keeps_average:
        text += ", the actor, not the mean of its weights"
    if summary["deterministic"]:
        return text
    noise = "sampled" if summary["action_std"] is None else f"sampled with std {summary['action_std']:g}"
    rate = summary["exploration_rate"]
    return f"{text}, actions {noise} on {'every step' if rate == 1 else f'a share {rate:g} of the steps'}"


def _exploration_rate(args) -> float:
    """The share of steps that sample with --stochastic: every step unless --exploration-rate says otherwise."""
    return 1.0 if args.exploration_rate is None else args.exploration_rate


def _check_arguments(args) -> None:
    from charctl.util.errors import CharctlError

    if args.episodes < 1:
        raise CharctlError(f"--episodes must be at least 1, not {args.episodes}")
    if args.workers < 0:
        raise CharctlError(f"--workers must be 0 or more, not {args.workers}")
    if bool(args.checkpoints) == (args.reference is not None):
        raise CharctlError("give a CHECKPOINT or --reference CHARACTER MOTION (one of them)")
    if args.baseline and args.reference is not None:
        raise CharctlError("--baseline compares a CHECKPOINT with the reference; --reference alone is the baseline")
    if (args.action_std is not None or args.exploration_rate is not None) and not args.stochastic:
        raise CharctlError("--action-std and --exploration-rate set how --stochastic samples; add --stochastic")
    if args.action_std is not None and not args.action_std >= 0:
        raise CharctlError(f"--action-std must be 0 or more, not {args.action_std}")
    if args.exploration_rate is not None and not 0 < args.exploration_rate <= 1:
        raise CharctlError(f"--exploration-rate must be in (0, 1], not {args.exploration_rate}")
    if args.actor and args.reference is not None:
        raise CharctlError("--actor picks a checkpoint's weights; --reference has no policy")
    if args.stochastic and args.reference is not None:
        raise CharctlError("--stochastic samples a policy's actions; --reference has no policy")


def _check_actor_choice(args, tasks) -> None:
    """--actor needs a checkpoint that keeps a mean of the actor's weights: without one it changes nothing."""
    from charctl.util.errors import CharctlError

    if args.actor and not any(task.keeps_average for task in tasks):
        names = ", ".join(str(task.path) for task in tasks)
        raise CharctlError(f"{names}: --actor: keeps no mean of the actor's weights (its run had no average_from); "
                           "it plays its actor already")


def _open(args, task):
    """(env, name, the JSON header, the policy task or None for --reference), for a task from _policy_task."""
    from charctl.envs.config import config_to_dict

    if args.reference is not None:
        from charctl.awr.rollout import make_env
        from charctl.character.model import load_character
        from charctl.commands.train import env_only_overrides
        from charctl.envs import IMITATION_ENV_ID
        from charctl.envs.config import for_evaluation
        from charctl.motion.clip import load_clip

        env_settings = env_only_overrides(args.overrides, "--reference")
        character, motion = load_character(args.reference[0]), args.reference[1]
        load_clip(character, motion)
        kwargs = {"character": character.name, "motion": motion}
        if env_settings:  # as a policy is evaluated
            kwargs["config"] = env_settings if args.as_trained else for_evaluation(env_settings)
        env = make_env(IMITATION_ENV_ID, kwargs)
        header = {"reference_pd": True, **kwargs, "as_trained": args.as_trained,
                  "config": config_to_dict(env.unwrapped.config)}  # every setting the episodes ran with
        return env, f"{character.name}_{motion}", header, None
    header = {"checkpoint": str(task.path), "env_id": task.env_id, **task.env_kwargs, "samples": task.samples,
              "deterministic": not args.stochastic, "as_trained": args.as_trained, "actor": args.actor}
    if args.stochastic:
        own_std = None if task.policy.action.discrete else task.policy.action_std
        header.update(action_std=own_std if args.action_std is None else args.action_std,
                      exploration_rate=_exploration_rate(args))
    env = task.make_env(evaluation=not args.as_trained)
    if task.is_imitation:  # the settings the episodes run with, training-only ones off unless --as-trained
        header["config"] = config_to_dict(env.unwrapped.config)
    return env, task.name, header, task


def _policy_task(args, checkpoint: str):
    """The checkpoint's policy and task, checked against the arguments (--baseline, --set) before any episode."""
    from charctl.play.policy_file import open_policy
    from charctl.util.errors import CharctlError

    task = open_policy(checkpoint, averaged=not args.actor)
    if args.baseline and not task.is_imitation:
        raise CharctlError(f"{task.path}: --baseline needs an imitation policy; {task.env_id} has no reference clip")
    if args.overrides:
        _apply_env_settings(task, args.overrides)
    return task


def _apply_env_settings(task, overrides: list[str]) -> None:
    """`--set env.KEY=VALUE` over an imitation checkpoint's own env settings (checked; the env then checks that the
    observation and action sizes are the policy's)."""
    from charctl.commands.train import env_only_overrides
    from charctl.envs.config import config_to_dict, env_config_on
    from charctl.util.errors import CharctlError

    if not task.is_imitation:
        raise CharctlError(f"{task.path}: --set env.* applies to imitation policies; {task.env_id} has no env "
                           "settings")
    settings = env_only_overrides(overrides, "eval")
    config = env_config_on(task.env_kwargs.get("config", {}), settings, f"{task.path}: --set")
    task.env_kwargs["config"] = config_to_dict(config)


def _evaluate(args, env, task, name):
    """(the policy's result, or the reference's with --reference; the baseline's with --baseline, else None)."""
    from tqdm import tqdm

    from charctl.play.evaluation import evaluate, evaluate_reference_pd

    baseline = None
    with tqdm(total=args.episodes * (2 if args.baseline else 1), unit="episode", disable=args.json,
              desc=name) as bar:
        progress = lambda n: bar.update(1)  # noqa: E731
        if task is None:
            result = evaluate_reference_pd(env, args.episodes, args.seed, progress=progress, workers=args.workers)
        else:
            result = evaluate(env, task.policy, args.episodes, args.seed, deterministic=not args.stochastic,
                              progress=progress, action_std=args.action_std, exploration_rate=_exploration_rate(args),
                              workers=args.workers)
        if args.baseline:
            baseline = evaluate_reference_pd(env, args.episodes, args.seed, progress=progress, workers=args.workers)
    return result, baseline


def _print_summary(summary: dict, name: str, source: str) -> None:
    print(f"{name} ({source}), {summary['episodes']} episodes: return {summary['mean_return']:.2f} +- "
          f"{summary['std_return']:.2f}, mean length {summary['mean_length']:.0f}")
    if "normalized_return" in summary:
        print(f"normalised return {summary['normalized_return']:.3f} +- {summary['normalized_return_std']:.3f}, "
              f"fall rate {summary['fall_rate']:.2f}")
        print("reward terms (mean per step): " + ", ".join(f"{k} {v:.3f}" for k, v in summary["reward_terms"].items()))
        if "pace" in summary:
            pace = summary["pace"]
            ratio = pace["speed"] / pace["reference_speed"] if pace["reference_speed"] > 0 else float("nan")
            print(f"pace (centre of mass, horizontal, mean per step): {pace['speed']:.2f} m/s, the reference "
                  f"{pace['reference_speed']:.2f} m/s ({ratio:.2f}x)")
        if "heading_error_degrees" in summary:
            print(f"heading (the root's against the reference's, mean per step): "
                  f"{summary['heading_error_degrees']:.1f} degrees off")
        if summary.get("pose_error_by_joint"):
            worst = ", ".join(f"{row['joint']} {row['mean_degrees']:.0f} deg ({row['share']:.0%})"
                              for row in summary["pose_error_by_joint"][:5])
            print(f"pose error by joint (mean angle off the reference, share of the weighted error): {worst}")
        if summary.get("fall_causes"):
            falls = round(summary["fall_rate"] * summary["episodes"])
            causes = ", ".join(f"{cause} {count}" for cause, count in summary["fall_causes"].items())
            print(f"what ended the {falls} falls (an episode can count several bodies): {causes}")
        if summary.get("falls_per_tenth_of_clip"):
            counts = " ".join(str(n) for n in summary["falls_per_tenth_of_clip"])
            print(f"falls per tenth of the clip's cycle (phase 0-0.1, ..., 0.9-1): {counts}")
        if summary.get("mean_length_by_start_tenth"):
            lengths = " ".join("-" if n is None else f"{n:.0f}" for n in summary["mean_length_by_start_tenth"])
            print(f"mean length by start phase (steps; episodes started in phase 0-0.1, ..., 0.9-1): {lengths}")
    if "baseline" in summary:
        base, comp = summary["baseline"], summary["comparison"]
        low, high = comp["gain_ci95"]
        ratio = f"{comp['ratio']:.2f}x" if comp["ratio"] is not None else "n/a"
        print(f"reference PD from the same starts: normalised return {base['normalized_return']:.3f} +- "
              f"{base['normalized_return_std']:.3f}, mean length {base['mean_length']:.0f}")
        print(f"policy - reference, start by start: {comp['mean_gain']:+.4f} (95% CI {low:+.4f} to {high:+.4f}), "
              f"{ratio}; better from {comp['wins']} of {base['episodes']} starts, worse from {comp['losses']} "
              f"(sign test p = {comp['sign_test_p']:.2g})")
