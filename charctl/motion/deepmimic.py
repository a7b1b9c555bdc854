"""Import DeepMimic's motion format (JSON `{"Loop": "wrap"|"none", "Frames": [[...], ...]}`) onto a character.

Each row: frame duration, root position (x, y, z; y up), root quaternion (w, x, y, z), then per joint in
the character's `deepmimic_joints` order: a quaternion (w, x, y, z) for a ball joint, an angle for a hinge,
nothing for a fixed joint. Quaternions are normalised (the dog files are not unit length); the world is
turned z-up; the first frame's horizontal root position is subtracted, as DeepMimic's loaders do. Joints
of the character that the file does not have (the dog's added segments) stay at identity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from charctl.character.layout import hinge_quat
from charctl.character.model import Character
from charctl.motion.clip import Clip
from charctl.util import rotations as rot
from charctl.util.errors import CharctlError

COLUMNS = {"spherical": 4, "revolute": 1, "fixed": 0}


def read_deepmimic_motion(path: str | Path, character: Character, name: str | None = None) -> Clip:
    path = Path(path)
    if not path.is_file():
        raise CharctlError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CharctlError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(data, dict) or "Frames" not in data:
        raise CharctlError(f"{path}: not a DeepMimic motion (no 'Frames')")
    loop = data.get("Loop", "none")
    if loop not in ("wrap", "none"):
        raise CharctlError(f"{path}: 'Loop' must be 'wrap' or 'none', not '{loop}'")
    if not character.deepmimic_joints:
        raise CharctlError(f"{character.urdf_path.with_suffix('.yaml')}: character '{character.name}' has no "
                           f"deepmimic_joints list, so DeepMimic rows cannot be mapped onto it")
    rows_joints = [character.joint_index(n) for n in character.deepmimic_joints]
    layout = [(index, character.joints[index]) for index in rows_joints]
    width = 8 + sum(COLUMNS[j.kind] for _, j in layout)
    frames = data["Frames"]
    if not frames:
        raise CharctlError(f"{path}: no frames")
    for f, row in enumerate(frames):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise CharctlError(f"{path}: frame {f} has {got} values; {character.name} rows have {width}")
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in row):
            raise CharctlError(f"{path}: frame {f} has a non-numeric or non-finite value")
    rows = np.asarray(frames, dtype=np.float64)

    durations = rows[:-1, 0]
    frame_time = float(durations[0]) if len(durations) else 1.0 / 60.0
    if not 0 < frame_time <= 10.0:  # a negative or zero duration made a 0-frame clip
        raise CharctlError(f"{path}: frame 0 lasts {frame_time} s; frame durations must be in (0, 10] s")
    if len(durations) and not np.allclose(durations, frame_time, rtol=1e-4, atol=1e-7):
        bad = int(np.flatnonzero(~np.isclose(durations, frame_time, rtol=1e-4, atol=1e-7))[0])
        raise CharctlError(f"{path}: frame {bad} lasts {durations[bad]} s, others {frame_time} s (need uniform frames)")

    F, J = len(rows), character.num_joints
    root_pos = rows[:, 1:4].copy()
    root_pos[:, [0, 2]] -= root_pos[0, [0, 2]]  # horizontal start at the origin (y is up here)
    root_rot = rot.normalize(rows[:, [5, 6, 7, 4]])  # wxyz -> xyzw
    root_pos, root_rot = rot.apply_y_up_to_z_up(root_pos, root_rot)
    joint_rot = np.tile(rot.IDENTITY, (F, J, 1))
    col = 8
    for index, joint in layout:
        if joint.kind == "spherical":
            joint_rot[:, index] = rot.normalize(rows[:, [col + 1, col + 2, col + 3, col]])
        elif joint.kind == "revolute":
            joint_rot[:, index] = hinge_quat(rows[:, col], joint.axis)
        col += COLUMNS[joint.kind]
    return Clip(character=character, name=name or path.stem, frame_time=frame_time, root_pos=root_pos,
                root_rot=root_rot, joint_rot=joint_rot, loop=loop == "wrap")
