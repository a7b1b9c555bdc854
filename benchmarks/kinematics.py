"""Per-call cost of clip sampling and forward kinematics (median of 7 runs of 200 calls)."""
import statistics
import time

import numpy as np

from charctl.character.kinematics import forward_kinematics
from charctl.character.model import load_character
from charctl.motion.clip import load_clip

for character, motion in [("humanoid", "spinkick"), ("dog", "trot")]:
    char, clip = load_character(character), load_clip(character, motion)
    pose = clip.sample(0.37)
    def batched(char=char, clip=clip):
        frames = clip.sample(np.linspace(0, 1, 1000), velocities=False)
        return forward_kinematics(char, frames.root_pos, frames.root_rot, frames.joint_rot)

    for label, fn in [("sample(t)", lambda: clip.sample(0.37)),
                      ("forward_kinematics",
                       lambda: forward_kinematics(char, pose.root_pos, pose.root_rot, pose.joint_rot)),
                      ("sample + FK, 1000 frames batched", batched)]:
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(200):
                fn()
            runs.append((time.perf_counter() - t) / 200 * 1e6)
        print(f"| {character} | {label} | {statistics.median(runs):.0f} us |")
