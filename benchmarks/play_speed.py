"""Real-time factor of `charctl play POLICY --gui`: simulated seconds per wall-clock second, first control step to last.

    xvfb-run -a -s "-screen 0 1024x768x24" .venv/bin/python benchmarks/play_speed.py policies/dog_trot.pt --seconds 20
    .venv/bin/python benchmarks/play_speed.py policies/dog_trot.pt --seconds 10 --alone

The window run counts the env's control steps from outside (any version of charctl's play, so code before and after a
change compare the same way). --alone steps the same policy as fast as it goes with no window and no pacing: the
ceiling the window run can reach.
"""

import argparse
import sys
import time

from charctl.envs import imitation


def window_run(policy: str, seconds: float) -> str:
    from charctl.cli import main

    marks = []
    step = imitation.ImitationEnv.step

    def counted(self, action):
        marks.append(time.monotonic())
        return step(self, action)

    imitation.ImitationEnv.step = counted
    if main(["play", policy, "--gui", "--seconds", str(seconds)]) != 0:
        sys.exit("play failed")
    simulated = (len(marks) - 1) / 30.0
    return f"{policy} --gui: {simulated / (marks[-1] - marks[0]):.2f}x real time ({simulated:.1f} s simulated)"


def alone(policy: str, seconds: float) -> str:
    from charctl.play.playback import Player
    from charctl.play.policy_file import open_policy

    task = open_policy(policy)
    env = task.make_env()
    player = Player(env, task.policy, env.unwrapped.config.horizon, seed=0, deterministic=True, ghost=False)
    player.reset()
    steps, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        if player.step().done:
            player.reset()
        steps += 1
    rate = steps / (time.monotonic() - start)
    env.close()
    return f"{policy} alone: {rate:.1f} control steps/s, {rate * env.unwrapped.dt:.2f}x real time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--alone", action="store_true", help="the simulation alone, unpaced, no window")
    args = parser.parse_args()
    line = alone(args.policy, args.seconds) if args.alone else window_run(args.policy, args.seconds)
    print(f"{line}; load average {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
