"""Cost of one AWR actor minibatch step: autograd + torch.optim.SGD vs the hand-written numpy step the agent uses.

    .venv/bin/python benchmarks/update_step.py --rounds 5

Alternates the two in each round (same net sizes, batch 256, 1 torch thread, 1 BLAS thread) and prints medians per size:
Hopper ([128, 64], 11 -> 3) and the imitation tasks' observation and action sizes.
"""

import argparse
import statistics
import time

import torch
from threadpoolctl import threadpool_limits

from charctl.awr.mlp_grad import MLPStepper, gaussian_actor_step
from charctl.awr.policy import ActionSpec, Actor, actor_loss

SIZES = {"Hopper (11 -> 3)": (11, 3), "humanoid imitation (227 -> 28)": (227, 28),
         "dog imitation (437 -> 76)": (437, 76)}


def autograd_steps(actor: Actor, optimizer, batches) -> None:
    for obs, actions, weights in batches:
        loss = actor_loss(actor, actor(obs), actions, weights, 10.0, 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def hand_written_steps(stepper: MLPStepper, batches) -> None:
    for obs, actions, weights in batches:
        gaussian_actor_step(stepper, obs.numpy(), actions.numpy(), weights.numpy(), 0.4, 10.0, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")  # as the trainer holds numpy's BLAS
    for name, (obs_size, action_size) in SIZES.items():
        spec = ActionSpec(discrete=False, size=action_size, low=[-1.0] * action_size, high=[1.0] * action_size)
        actor = Actor(obs_size, spec, [128, 64], 0.01, 0.4)
        optimizer = torch.optim.SGD(actor.parameters(), lr=1e-5, momentum=0.9)
        stepper = MLPStepper(actor.net, optimizer)
        batches = [(torch.randn(256, obs_size), torch.randn(256, action_size), torch.rand(256))
                   for _ in range(args.steps)]
        times = {"autograd": [], "hand-written": []}
        for _ in range(args.rounds):
            for label, run in (("autograd", lambda: autograd_steps(actor, optimizer, batches)),
                               ("hand-written", lambda: hand_written_steps(stepper, batches))):
                start = time.perf_counter()
                run()
                times[label].append((time.perf_counter() - start) / args.steps * 1e3)
        auto, hand = statistics.median(times["autograd"]), statistics.median(times["hand-written"])
        print(f"{name}: autograd {auto:.3f} ms/step, hand-written {hand:.3f} ms/step, {auto / hand:.2f}x")


if __name__ == "__main__":
    main()
