"""Motion out: a clip (a reference clip, or what the simulated character did) as a BVH for Blender and other tools.

The skeleton is the character's own: joint names and OFFSETs from its model (metres, y-up as BVH convention has
it), the root with 3 position and 3 rotation channels, every other joint with 3 rotation channels in one Euler
order (hinges rotate about their own axis only, fixed joints stay at zero: importers that expect three rotation
channels per joint take the file as it is), and an End Site on each leaf so the last bones have a length.
Angles are unwrapped over time (a multiple of 360 degrees added where a channel would jump by more than 180)
so that tools interpolating between keyframes do not spin a joint the long way round.
"""

from __future__ import annotations

import numpy as np

from charctl.character.layout import hinge_angle, hinge_quat
from charctl.character.model import Character
from charctl.motion.bvh import Bvh, BvhJoint
from charctl.motion.clip import Clip
from charctl.util import rotations as rot
from charctl.util.errors import CharctlError

EULER_ORDERS = ("ZXY", "XYZ", "ZYX")
END_SITE_DEFAULT = 0.05  # metres: leaf bone length when the body has no collision shape to measure


def export_bvh(clip: Clip, euler: str = "ZXY") -> Bvh:
    """`clip` as a BVH of its character's skeleton with `euler` rotation channels (intrinsic, degrees)."""
    if euler not in EULER_ORDERS:
        raise CharctlError(f"Euler order '{euler}' is not one of {', '.join(EULER_ORDERS)}")
    c = clip.character
    rot_channels = [f"{axis}rotation" for axis in euler]
    pos_y, rot_y = rot.apply_z_up_to_y_up(clip.root_pos, clip.root_rot)
    joints, columns = [], []
    for index, joint in enumerate(c.joints):
        if joint.kind == "root":
            channels = ["Xposition", "Yposition", "Zposition"] + rot_channels
            columns += [pos_y, _euler(euler, rot_y)]
        else:
            channels = list(rot_channels)
            q = clip.joint_rot[:, index]
            if joint.kind == "revolute":  # only the turn about the hinge axis, as the character can do
                q = hinge_quat(hinge_angle(q, joint.axis), joint.axis)
            elif joint.kind == "fixed":
                q = np.tile(rot.IDENTITY, (clip.num_frames, 1))
            columns.append(_euler(euler, q))
        joints.append(BvhJoint(name=joint.name, parent=int(joint.parent), offset=joint.offset.copy(),
                               channels=channels, end_site=_end_site(c, index)))
    motion = np.concatenate(columns, axis=1) + 0.0  # no "-0" in the file
    if not np.all(np.isfinite(motion)):
        raise CharctlError(f"{c.name} {clip.name}: non-finite values in the motion, nothing written")
    return Bvh(joints=joints, frame_time=clip.frame_time, motion=motion)


def _euler(seq: str, q: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():  # at gimbal lock scipy still returns angles of the same rotation
        warnings.simplefilter("ignore", UserWarning)
        angles = rot.euler_from_quat(seq, q)
    return np.unwrap(angles, period=360.0, axis=0)


def _end_site(c: Character, index: int) -> np.ndarray | None:
    """A leaf joint's End Site: twice its body's first collision shape centre (the far end of a bone-centred
    shape), or a short stub along the parent bone when the body has no shape off its joint."""
    if any(j.parent == index for j in c.joints):
        return None
    shapes = c.bodies[index].shapes
    if shapes and np.linalg.norm(shapes[0].center) > 1e-3:
        return 2.0 * np.asarray(shapes[0].center, dtype=np.float64)
    offset = c.joints[index].offset
    norm = np.linalg.norm(offset)
    return offset / norm * END_SITE_DEFAULT if norm > 1e-6 else np.array([0.0, END_SITE_DEFAULT, 0.0])


def reference_clip(clip: Clip, seconds: float | None) -> Clip:
    """The clip itself (seconds None), or `seconds` of it sampled at its frame rate (a looping clip continues,
    a non-looping one holds its last frame)."""
    if seconds is None:
        return clip
    times = np.arange(frame_count(seconds, clip.frame_time)) * clip.frame_time
    pose = clip.sample(times, velocities=False)
    return Clip(character=clip.character, name=clip.name, frame_time=clip.frame_time, root_pos=pose.root_pos,
                root_rot=pose.root_rot, joint_rot=pose.joint_rot, loop=False)


MAX_SECONDS = 3600.0  # an hour of animation: far more than any use, and a bound on the memory asked for


def frame_count(seconds: float, frame_time: float) -> int:
    if not np.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise CharctlError(f"--seconds must be in (0, {MAX_SECONDS:g}], got {seconds:g}")
    return int(round(seconds / frame_time)) + 1
