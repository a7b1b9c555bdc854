"""What veering off the clip's direction costs a policy: per episode, its mean heading error against its reward.

    python benchmarks/heading_cost.py policies/dog_trot.pt [EPISODES]     # default 8

Runs the policy deterministically from `charctl eval`'s held-out starts (episode j starts where eval's episode j
does) and prints a markdown table: each episode's median and largest absolute heading error (the step info's
`heading_error`, in degrees), its mean reward per step, pose, root and COM terms, pace and length, then the
correlation between the heading error and the reward over the episodes (docs/results.md).
"""

import sys

import numpy as np

from charctl.awr.rollout import evaluation_seed
from charctl.play.policy_file import open_policy


def episode(env, policy, seed: int) -> dict:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    errors, rewards, terms, speeds = [], [], {"pose": [], "root": [], "com": []}, []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, deterministic=True, rng=rng))
        errors.append(abs(np.degrees(info["heading_error"])))
        rewards.append(reward)
        speeds.append(info["speed"])
        for key, values in terms.items():
            values.append(info[f"reward_{key}"])
        if terminated or truncated:
            break
    return {"median_error": float(np.median(errors)), "max_error": float(np.max(errors)),
            "reward": float(np.mean(rewards)), **{k: float(np.mean(v)) for k, v in terms.items()},
            "speed": float(np.mean(speeds)), "steps": len(rewards)}


def main() -> None:
    path, episodes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
    task = open_policy(path)
    env = task.make_env(evaluation=True)
    try:
        rows = [episode(env, task.policy, evaluation_seed(0, j, held_out=True)) for j in range(episodes)]
    finally:
        env.close()
    print("| episode | heading error, median (max), degrees | reward per step | pose | root | COM | pace (m/s) "
          "| steps |")
    print("|---|---|---|---|---|---|---|---|")
    for j, r in enumerate(rows):
        print(f"| {j} | {r['median_error']:.1f} ({r['max_error']:.0f}) | {r['reward']:.3f} | {r['pose']:.3f} | "
              f"{r['root']:.3f} | {r['com']:.3f} | {r['speed']:.2f} | {r['steps']} |")
    errors, rewards = [r["median_error"] for r in rows], [r["reward"] for r in rows]
    print(f"\ncorrelation of the median heading error with the reward per step: "
          f"{np.corrcoef(errors, rewards)[0, 1]:.2f} over {episodes} episodes")


if __name__ == "__main__":
    main()
