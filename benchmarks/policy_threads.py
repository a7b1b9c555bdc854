"""Time of one policy action (one observation, numpy) on 1 and 2 BLAS threads, alternated.

    python benchmarks/policy_threads.py policies/dog_trot.pt --rounds 3

Prints the median microseconds per action for each thread count and whether the actions were the same bit for bit.
"""

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from charctl.play.policy_file import open_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--actions", type=int, default=2000)
    args = parser.parse_args()
    task = open_policy(args.checkpoint)
    env = task.make_env()
    size = env.observation_space.shape[0]
    env.close()
    observations = np.random.default_rng(0).standard_normal((args.actions, size)).astype(np.float32)
    times: dict[int, list[float]] = {1: [], 2: []}
    actions: dict[int, np.ndarray] = {}
    for _ in range(args.rounds):
        for threads in times:
            with threadpool_limits(limits=threads, user_api="blas"):
                start = time.perf_counter()
                actions[threads] = np.stack([task.policy.act(obs) for obs in observations])
                times[threads].append((time.perf_counter() - start) / args.actions * 1e6)
    for threads, values in times.items():
        print(f"{threads} BLAS thread(s): {statistics.median(values):8.1f} us per action")
    print(f"same actions bit for bit: {np.array_equal(actions[1], actions[2])}")


if __name__ == "__main__":
    main()
