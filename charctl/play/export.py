"""What a trained policy makes the simulated character do, recorded as a clip (for `charctl export`)."""

from __future__ import annotations

import numpy as np

from charctl.motion.clip import Clip
from charctl.motion.export import frame_count
from charctl.play.playback import Player


def simulated_clip(task, seconds: float, seed: int = 0) -> tuple[Clip, bool]:
    """Run the policy deterministically from held-out start `seed` (the first episode `charctl play` shows) for
    `seconds`, or until the character falls; returns (the simulated motion, one frame per control step; fell)."""
    env = task.make_env()
    try:
        imitation = env.unwrapped
        steps = frame_count(seconds, imitation.dt) - 1
        player = Player(env, task.policy, imitation.config.horizon, seed, deterministic=True, ghost=False)
        player.reset()
        states = [imitation.sim.state()]
        fell = False
        for _ in range(steps):
            info = player.step()
            states.append(imitation.sim.state())
            if info.done:
                fell = info.fell
                break
        character = imitation.character
        clip = Clip(character=character, name=imitation.clip.name, frame_time=imitation.dt,
                    root_pos=np.stack([s.root_pos for s in states]),
                    root_rot=np.stack([s.root_rot for s in states]),
                    joint_rot=np.stack([s.joint_rot for s in states]), loop=False)
    finally:
        env.close()
    return clip, fell
