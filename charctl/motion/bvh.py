"""Generic BVH (Biovision hierarchy) reading and writing: any skeleton, any channel order.

Parsing is strict: every problem is a one-line CharctlError naming the file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charctl.util.errors import CharctlError
from charctl.util.fileio import atomic_path

CHANNEL_NAMES = {"Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation"}


@dataclass
class BvhJoint:
    name: str
    parent: int  # index into Bvh.joints, -1 for the root
    offset: np.ndarray  # (3,)
    channels: list[str]
    end_site: np.ndarray | None = None  # offset of the End Site, if the joint has one


@dataclass
class Bvh:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray  # (frames, total channels), BVH units (degrees for rotations)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    def channel_slices(self) -> list[slice]:
        """The columns of `motion` that belong to each joint."""
        out, start = [], 0
        for joint in self.joints:
            out.append(slice(start, start + len(joint.channels)))
            start += len(joint.channels)
        return out


class _Tokens:
    """Whitespace tokens with their line numbers, for error messages."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.pos = 0

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            last = self.items[-1][1] if self.items else 1
            raise CharctlError(f"{self.path}:{last}: file ends early, expected {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok != word:
            raise CharctlError(f"{self.path}:{line}: expected '{word}', found '{tok}'")
        return line

    def number(self, what: str, kind=float):
        tok, line = self.next(what)
        try:
            return kind(tok)
        except ValueError:
            raise CharctlError(f"{self.path}:{line}: {what}: '{tok}' is not a number") from None


MAX_DEPTH = 100  # joints from the root to a leaf
MAX_FRAME_TIME = 10.0  # seconds per frame


def read_bvh(path: str | Path) -> Bvh:
    path = Path(path)
    if not path.is_file():
        raise CharctlError(f"{path}: file not found")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise CharctlError(f"{path}: not a text file") from None
    motion_line = next((n for n, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_line is None:
        raise CharctlError(f"{path}:{len(lines)}: no MOTION section")
    tokens = _Tokens(path, lines[:motion_line])
    tokens.expect("HIERARCHY")
    joints: list[BvhJoint] = []
    tok, line = tokens.next("'ROOT'")
    if tok != "ROOT":
        raise CharctlError(f"{path}:{line}: expected 'ROOT', found '{tok}'")
    _read_joint(tokens, joints, parent=-1)
    if tokens.pos != len(tokens.items):
        tok, line = tokens.items[tokens.pos]
        raise CharctlError(f"{path}:{line}: unexpected '{tok}' after the hierarchy (only one ROOT is supported)")
    return Bvh(joints=joints, **_read_motion(path, lines, motion_line, joints))


def _read_joint(tokens: _Tokens, joints: list[BvhJoint], parent: int, depth: int = 1) -> None:
    name, line = tokens.next("a joint name")
    if depth > MAX_DEPTH:  # a chain this deep is no skeleton; without a bound it was a RecursionError
        raise CharctlError(f"{tokens.path}:{line}: joint '{name}': the hierarchy is more than {MAX_DEPTH} deep")
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = np.array([tokens.number("OFFSET") for _ in range(3)])
    tokens.expect("CHANNELS")
    count = tokens.number("channel count", int)
    channels = []
    for _ in range(count):
        channel, line = tokens.next("a channel name")
        if channel not in CHANNEL_NAMES:
            raise CharctlError(f"{tokens.path}:{line}: joint '{name}': unknown channel '{channel}'")
        channels.append(channel)
    index = len(joints)
    joints.append(BvhJoint(name=name, parent=parent, offset=offset, channels=channels))
    while True:
        tok, line = tokens.next("'JOINT', 'End' or '}'")
        if tok == "}":
            return
        if tok == "JOINT":
            _read_joint(tokens, joints, parent=index, depth=depth + 1)
        elif tok == "End":
            tokens.expect("Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            joints[index].end_site = np.array([tokens.number("End Site OFFSET") for _ in range(3)])
            tokens.expect("}")
        else:
            raise CharctlError(f"{tokens.path}:{line}: joint '{name}': unexpected '{tok}'")


def _read_motion(path: Path, lines: list[str], motion_line: int, joints: list[BvhJoint]) -> dict:
    def header(offset: int, key: str) -> str:
        n = motion_line + offset
        if n >= len(lines) or not lines[n].strip().startswith(key):
            raise CharctlError(f"{path}:{n + 1}: expected '{key}'")
        return lines[n].split(":", 1)[1].strip()

    try:
        num_frames = int(header(1, "Frames:"))
    except ValueError:
        raise CharctlError(f"{path}:{motion_line + 2}: 'Frames:' needs an integer") from None
    try:
        frame_time = float(header(2, "Frame Time:"))
    except ValueError:
        raise CharctlError(f"{path}:{motion_line + 3}: 'Frame Time:' needs a number") from None
    if num_frames < 1 or not frame_time > 0:
        raise CharctlError(f"{path}:{motion_line + 2}: need at least one frame and a positive frame time")
    if frame_time > MAX_FRAME_TIME:
        raise CharctlError(f"{path}:{motion_line + 3}: 'Frame Time: {frame_time:g}' is more than "
                           f"{MAX_FRAME_TIME:g} s per frame")
    width = sum(len(j.channels) for j in joints)
    first = motion_line + 3
    rows = [line for line in lines[first:] if line.strip()]
    if len(rows) < num_frames:
        raise CharctlError(f"{path}:{len(lines)}: file ends after {len(rows)} of {num_frames} frames (truncated)")
    motion = np.empty((num_frames, width))
    data_lines = [n for n in range(first, len(lines)) if lines[n].strip()]
    for f in range(num_frames):
        n = data_lines[f]
        values = lines[n].split()
        if len(values) != width:
            raise CharctlError(f"{path}:{n + 1}: frame {f} has {len(values)} values, "
                               f"the hierarchy has {width} channels")
        try:
            motion[f] = [float(v) for v in values]
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise CharctlError(f"{path}:{n + 1}: frame {f}: '{bad}' is not a number") from None
    if len(data_lines) > num_frames:
        raise CharctlError(f"{path}:{data_lines[num_frames] + 1}: more frame lines than 'Frames: {num_frames}'")
    if not np.all(np.isfinite(motion)):
        f = int(np.flatnonzero(~np.isfinite(motion).all(axis=1))[0])
        raise CharctlError(f"{path}:{data_lines[f] + 1}: frame {f}: non-finite values in the motion data")
    return {"frame_time": frame_time, "motion": motion}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def format_bvh(bvh: Bvh) -> str:
    out = ["HIERARCHY"]
    children: dict[int, list[int]] = {}
    for i, joint in enumerate(bvh.joints):
        children.setdefault(joint.parent, []).append(i)

    def write(i: int, depth: int) -> None:
        joint, pad = bvh.joints[i], "  " * depth
        out.append(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        out.append(f"{pad}{{")
        out.append(f"{pad}  OFFSET {_fmt(joint.offset)}")
        out.append(f"{pad}  CHANNELS {len(joint.channels)}{''.join(' ' + c for c in joint.channels)}")
        for child in children.get(i, []):
            write(child, depth + 1)
        if joint.end_site is not None:
            out.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_fmt(joint.end_site)}", f"{pad}  }}"])
        out.append(f"{pad}}}")

    roots = children.get(-1, [])
    if len(roots) != 1:
        raise ValueError("a BVH needs exactly one root joint")
    write(roots[0], 0)
    out += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.10g}"]
    out += [_fmt(row) for row in bvh.motion]
    return "\n".join(out) + "\n"


def write_bvh(path: str | Path, bvh: Bvh) -> None:
    text = format_bvh(bvh)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _fmt(values) -> str:
    # 10 significant digits: a write-read round trip is exact to ~1e-9 (tests demand 1e-6)
    return " ".join(f"{v:.10g}" for v in values)
