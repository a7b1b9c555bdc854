"""`charctl export`: a reference clip or a policy's simulated motion as a BVH on the character's skeleton that
reads back (the project's BVH reader, a generic BVH forward kinematics, the retargeter with an identity map)
with the same joint angles and root path."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from charctl.character.kinematics import forward_kinematics
from charctl.cli import main
from charctl.motion import retarget
from charctl.motion.bvh import read_bvh
from charctl.motion.clip import Clip, load_clip
from charctl.util import rotations as rot

POLICIES = Path(__file__).resolve().parents[1] / "policies"
CLIPS = [("humanoid", "spinkick"), ("dog", "trot")]


def export(tmp_path, character, motion, euler="ZXY", extra=()):
    out = tmp_path / f"{character}_{motion}_{euler}.bvh"
    assert main(["export", "--reference", character, motion, "--out", str(out), "--euler", euler, *extra]) == 0
    return out


def joint_angle_error(a: Clip, b: Clip) -> float:
    """Largest angle (degrees) between the two clips' local joint rotations, over actuated joints and frames."""
    moving = [k for k, j in enumerate(a.character.joints) if j.kind in ("spherical", "revolute")]
    return float(np.degrees(rot.quat_diff_angle(a.joint_rot[:, moving], b.joint_rot[:, moving])).max())


@pytest.mark.parametrize("character, motion", CLIPS)
@pytest.mark.parametrize("euler", ["ZXY", "XYZ"])
def test_reference_export_reads_back_with_the_same_angles_and_root(character, motion, euler, tmp_path):
    clip = load_clip(character, motion)
    path = export(tmp_path, character, motion, euler)
    bvh = read_bvh(path)
    assert bvh.num_frames == clip.num_frames
    assert bvh.frame_time == pytest.approx(clip.frame_time, rel=1e-9)
    assert [j.name for j in bvh.joints] == [j.name for j in clip.character.joints]
    assert bvh.joints[0].channels[:3] == ["Xposition", "Yposition", "Zposition"]
    assert all(j.channels[-3:] == [f"{a}rotation" for a in euler] for j in bvh.joints)
    back = Clip.from_bvh(clip.character, bvh, name=motion, loop=False)
    # measured: 2e-6 degrees, root 1e-16 m (10 significant digits in the file)
    assert joint_angle_error(clip, back) < 0.5
    assert np.abs(back.root_pos - clip.root_pos).max() < 1e-3
    assert np.degrees(rot.quat_diff_angle(back.root_rot, clip.root_rot)).max() < 0.5


@pytest.mark.parametrize("character, motion", CLIPS)
def test_generic_bvh_kinematics_of_the_export_puts_every_joint_where_the_clip_does(character, motion, tmp_path):
    """Any BVH tool computes joint positions from OFFSETs and Euler channels alone: do that independently of
    the clip code (the retargeter's source kinematics, y-up facing +x) and compare with the character's FK."""
    clip = load_clip(character, motion)
    path = export(tmp_path, character, motion)
    rmap = retarget.RetargetMap(path, 1.0, "y", "x", 1.0, False, {})
    src = retarget.source_motion(read_bvh(path), path, rmap)
    pos, _ = forward_kinematics(clip.character, clip.root_pos, clip.root_rot, clip.joint_rot)
    # measured: 1e-9 m
    assert np.abs(src.pos - pos).max() < 1e-3


def identity_map(tmp_path, character) -> Path:
    path = tmp_path / f"{character.name}_identity.yaml"
    spec = {"source": {"scale": 1.0, "up": "y", "forward": "x"}, "root_scale": 1.0,
            "joints": {j.name: j.name for j in character.joints}}
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("character, motion", [("humanoid", "cartwheel"), ("dog", "trot")])
def test_retargeting_the_export_with_an_identity_map_returns_the_clip(character, motion, tmp_path):
    clip = load_clip(character, motion)
    path = export(tmp_path, character, motion)
    back = retarget.retarget_bvh(path, clip.character, identity_map(tmp_path, clip.character), motion,
                                 fps=1.0 / clip.frame_time)
    assert back.num_frames == clip.num_frames
    # measured: 0.0000 degrees for both. (Not the spinkick: its right knee bends 12.7 degrees past the
    # hinge's limit, which the retargeter clamps, the ankle compensating.)
    assert joint_angle_error(clip, back) < 0.5
    # the retargeter starts the clip above the origin (as the shipped clips already are) and grounds it:
    # only the height may move, by the grounding's per-frame lift
    assert np.abs(back.root_pos[:, :2] - clip.root_pos[:, :2]).max() < 1e-3
    assert np.degrees(rot.quat_diff_angle(back.root_rot, clip.root_rot)).max() < 0.5


def test_reference_export_of_a_looping_clip_continues_for_the_seconds_asked(tmp_path):
    clip = load_clip("dog", "trot")
    bvh = read_bvh(export(tmp_path, "dog", "trot", extra=("--seconds", "2")))
    assert bvh.num_frames == int(round(2.0 / clip.frame_time)) + 1
    back = Clip.from_bvh(clip.character, bvh, "trot", loop=False)
    later = clip.sample(np.arange(bvh.num_frames) * clip.frame_time, velocities=False)
    assert np.abs(back.root_pos - later.root_pos).max() < 1e-3
    assert back.root_pos[-1, 0] > 3.0  # about four cycles of +1.24 m


def test_policy_export_writes_the_simulated_motion(tmp_path, capsys):
    out = tmp_path / "trot_sim.bvh"
    assert main(["export", str(POLICIES / "dog_trot.pt"), "--out", str(out), "--seconds", "1"]) == 0
    assert "31 frames at 30 fps" in capsys.readouterr().out
    bvh = read_bvh(out)
    assert bvh.num_frames == 31 and bvh.frame_time == pytest.approx(1 / 30)
    character = load_clip("dog", "trot").character
    sim = Clip.from_bvh(character, bvh, "trot", loop=False)
    # the policy trots forward along +x, upright, its paws near the ground
    assert sim.root_pos[-1, 0] - sim.root_pos[0, 0] > 0.5
    pos, _ = forward_kinematics(character, sim.root_pos, sim.root_rot, sim.joint_rot)
    assert pos[:, list(character.ground_contact_bodies), 2].min() < 0.1
    # deterministic: the same command writes the same file
    again = tmp_path / "again.bvh"
    assert main(["export", str(POLICIES / "dog_trot.pt"), "--out", str(again), "--seconds", "1"]) == 0
    assert again.read_text() == out.read_text()


@pytest.mark.parametrize("args, message", [
    ([], "give a CHECKPOINT or --reference"),
    (["x.pt", "--reference", "dog", "trot"], "give a CHECKPOINT or --reference"),
    (["--reference", "dog", "trot", "--seconds", "1e9"], "--seconds must be in"),
    (["--reference", "dog", "trot", "--seconds", "nan"], "--seconds must be in"),
    (["--reference", "dog", "nosuch"], "unknown clip 'nosuch'"),
])
def test_bad_requests_are_one_line_errors_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "out.bvh"
    assert main(["export", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_unless_forced_and_the_suffix_is_bvh(tmp_path, capsys):
    out = tmp_path / "out.bvh"
    out.write_text("keep")
    assert main(["export", "--reference", "dog", "trot", "--out", str(out)]) == 2
    assert out.read_text() == "keep"
    assert main(["export", "--reference", "dog", "trot", "--out", str(out), "--force"]) == 0
    assert read_bvh(out).num_frames == load_clip("dog", "trot").num_frames
    assert main(["export", "--reference", "dog", "trot", "--out", str(tmp_path / "out.txt")]) == 2
    assert "the output is a .bvh file" in capsys.readouterr().err
