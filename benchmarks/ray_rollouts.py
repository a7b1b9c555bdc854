"""Samples/s of rollouts with local worker processes vs Ray actors (1 and 2 workers), and the Ray path's
per-iteration overhead: putting the policy in the object store, a round trip to every actor, episodes back.

    .venv/bin/python benchmarks/ray_rollouts.py --env charctl/DogTrot-v0 --samples 4096 --rounds 3

A fixed untrained policy collects whole episodes; medians over rounds. Nothing else should be running.
"""

import argparse
import statistics
import time


def untrained_policy(env_id: str):
    from charctl.awr.agent import AWRAgent
    from charctl.awr.config import load_config
    from charctl.awr.rollout import make_env

    env = make_env(env_id)
    agent = AWRAgent(env.observation_space, env.action_space, load_config(env_id, overrides={"device": "cpu"}))
    env.close()
    return agent.policy()


def rate(rollouts, policy, samples: int, rounds: int) -> float:
    rollouts.collect(policy, 64, iteration=0)  # warm up (first env resets, imports)
    rates = []
    for k in range(rounds):
        start = time.perf_counter()
        episodes = rollouts.collect(policy, samples, iteration=k + 1)
        rates.append(sum(len(e) for e in episodes) / (time.perf_counter() - start))
    return statistics.median(rates)


def ray_overhead_ms(rollouts, policy, rounds: int) -> dict:
    """Milliseconds: ray.put of the policy, and a collect of one sample per worker minus a local collect's cost."""
    import ray

    state = policy.to_state()
    put = [_timed(lambda: ray.put(state)) for _ in range(rounds * 5)]
    tiny = [_timed(lambda: rollouts.collect(policy, 1, iteration=100)) for _ in range(rounds * 5)]
    size = sum(w.nbytes for w in state["weights"]) + sum(b.nbytes for b in state["biases"])
    return {"put_ms": 1e3 * statistics.median(put), "tiny_collect_ms": 1e3 * statistics.median(tiny),
            "policy_kb": size / 1024}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    from charctl.awr.ray_rollout import RayRollouts
    from charctl.awr.rollout import Rollouts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="charctl/DogTrot-v0")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    policy = untrained_policy(args.env)
    print(f"{args.env}: {args.samples} samples per collect, medians of {args.rounds} rounds")
    for workers in (1, 2):
        with Rollouts(args.env, {}, workers, seed=0) as local:
            local_rate = rate(local, policy, args.samples, args.rounds)
            local_tiny = statistics.median(_timed(lambda: local.collect(policy, 1, iteration=100))
                                           for _ in range(args.rounds * 5))
        with RayRollouts(args.env, {}, workers, seed=0, log=print) as remote:
            ray_rate = rate(remote, policy, args.samples, args.rounds)
            overhead = ray_overhead_ms(remote, policy, args.rounds)
        print(f"{workers} worker(s): local {local_rate:.0f} samples/s, Ray {ray_rate:.0f} samples/s "
              f"(ratio {ray_rate / local_rate:.2f}); one-sample collect: local {1e3 * local_tiny:.1f} ms, "
              f"Ray {overhead['tiny_collect_ms']:.1f} ms; ray.put of the policy ({overhead['policy_kb']:.0f} KB) "
              f"{overhead['put_ms']:.2f} ms")
    ray.shutdown()


if __name__ == "__main__":
    main()
