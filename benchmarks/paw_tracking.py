"""How the dog's front legs track the trot clip: open loop with and without the clip's joint velocities as PD
targets, and under a policy.

    python benchmarks/paw_tracking.py [POLICY] [EPISODES]     # default: open loop only, 8 episodes

Episodes start where `charctl eval`'s held-out episodes do. Open loop (a zero residual action: PD targets from the
clip, no policy), once with PD target velocity 0 (DeepMimic's) and once with the clip's joint velocities
(`pd_target_velocity`): each front-leg joint's mean angle off the clip per control step (the step info's
`joint_angle_error`) until the fall. With a POLICY (deterministic, at most 200 steps an episode): the same angles,
each joint's mean rotation off the clip (a rotation vector in the joint's axes, degrees) on the steps its paw
touches the ground, and the share of steps each front paw (wrist or finger) touches it (docs/results.md).
"""

import sys

import gymnasium as gym
import numpy as np

import charctl.envs  # noqa: F401
from charctl.awr.rollout import evaluation_seed
from charctl.play.policy_file import open_policy
from charctl.util import rotations as rot

JOINTS = ["left_forearm", "right_forearm", "left_hand", "right_hand", "left_finger", "right_finger"]
PAWS = {"left": ("left_hand", "left_finger"), "right": ("right_hand", "right_finger")}


def run(env, act, episodes: int, max_steps: int | None = None) -> dict:
    names = [joint.name for joint in env.character.joints]
    index = {name: names.index(name) for name in JOINTS}
    angles, offsets, touching = [], {name: [] for name in JOINTS}, {side: [] for side in PAWS}
    for j in range(episodes):
        obs, _ = env.reset(seed=evaluation_seed(0, j, held_out=True))
        for _ in range(max_steps or 10**9):
            obs, _, terminated, truncated, info = env.step(act(obs))
            if terminated or truncated:
                break
            angles.append(np.degrees(info["joint_angle_error"][[index[n] for n in JOINTS]]))
            state, reference = env.sim.state(), env.reference_pose(env.time)
            contacts = {names[i] for i in env.sim.ground_contacts()}
            for side, paw in PAWS.items():
                down = bool(contacts & set(paw))
                touching[side].append(down)
                if down:
                    for name in (n for n in JOINTS if n.startswith(side)):
                        i = index[name]
                        off = rot.quat_mul(rot.quat_conj(reference.joint_rot[i]), state.joint_rot[i])
                        offsets[name].append(np.degrees(rot.rotvec_from_quat(off)))
    return {"angles": np.mean(angles, axis=0), "steps": len(angles),
            "offsets": {n: np.mean(v, axis=0) if v else None for n, v in offsets.items()},
            "touching": {side: float(np.mean(v)) for side, v in touching.items()}}


def row(label: str, result: dict) -> str:
    return f"| {label} | {result['steps']} | " + " | ".join(f"{a:.1f}" for a in result["angles"]) + " |"


def main() -> None:
    args = sys.argv[1:]
    policy_path = args.pop(0) if args and not args[0].isdigit() else None
    episodes = int(args[0]) if args else 8
    print("| run | steps | " + " | ".join(JOINTS) + " |")
    print("|---" * (len(JOINTS) + 2) + "|")
    for velocity in (False, True):
        env = gym.make("charctl/DogTrot-v0", config={"pd_target_velocity": velocity}).unwrapped
        zero = np.zeros(env.action_space.shape)
        label = f"open loop, target velocity {'the clip' if velocity else '0'}"
        print(row(label, run(env, lambda obs: zero, episodes)))
        env.close()
    if policy_path is None:
        return
    task = open_policy(policy_path)
    env = task.make_env(evaluation=True).unwrapped
    rng = np.random.default_rng(0)
    result = run(env, lambda obs: task.policy.act(obs, deterministic=True, rng=rng), episodes, max_steps=200)
    env.close()
    print(row(policy_path, result))
    print()
    print("with the paw on the ground, mean rotation off the clip (rotation vector in the joint's axes, degrees):")
    for name, offset in result["offsets"].items():
        print(f"  {name}: " + ("-" if offset is None else np.array2string(offset, precision=1)))
    print("share of steps each front paw touches the ground: " +
          ", ".join(f"{side} {share:.2f}" for side, share in result["touching"].items()))


if __name__ == "__main__":
    main()
