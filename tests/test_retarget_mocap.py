"""What real CMU and SFU files bring that clean clips do not: a calibration T-pose as frame 0, a stretch off
the flat ground, a wrong forward axis, absurd frame times; each a BVH fixture in CMU's shape (the synthetic
walk of test_retarget.py: Hips with 6 channels, ZYX rotations, 120 fps, y-up facing +z, inches)."""

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from charctl.character.model import load_character
from charctl.cli import main
from charctl.motion import retarget
from charctl.motion.clip import load_clip_file
from test_retarget import CMU_MAP, synthetic_walk, write_cmu_bvh


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


@pytest.fixture(scope="module")
def walk():
    return synthetic_walk()


def write(path, walk, root=None, tpose=False):
    """The walk as a CMU BVH; `tpose` puts CMU's calibration frame first (every rotation zero: arms out)."""
    t, root, local = walk["t"], walk["root"] if root is None else root, walk["local"]
    if tpose:
        t = np.concatenate([t, t[-1:] + t[1]])
        root = np.concatenate([root[:1], root])
        local = {name: Rotation.concatenate([Rotation.identity(1), r]) for name, r in local.items()}
    write_cmu_bvh(path, t, root, local)
    return path


def run(capsys, *args):
    code = main(["retarget", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def retarget_cli(tmp_path, capsys, source, *extra, name="clip"):
    code, out, err = run(capsys, source, "--character", "humanoid", "--map", CMU_MAP, "--name", name,
                         "--out-dir", tmp_path, "--force", *extra)
    return code, out, err, tmp_path / f"humanoid_{name}.bvh"


def largest_step(clip) -> float:
    """Largest joint rotation change between neighbouring frames, degrees."""
    q = clip.joint_rot
    dot = np.abs(np.sum(q[:-1] * q[1:], axis=-1))
    return float(np.degrees(2 * np.arccos(np.minimum(dot, 1))).max())


# ------------------------------------------------------------------------------------ calibration frame
def test_a_t_pose_first_frame_is_dropped_with_a_notice(walk, humanoid, tmp_path, capsys):
    source = write(tmp_path / "tpose.bvh", walk, tpose=True)
    code, out, err, path = retarget_cli(tmp_path, capsys, source)
    assert code == 0
    assert err.count("\n") == 1 and "dropped frame 0, a calibration pose" in err
    clip = load_clip_file(humanoid, path)
    assert clip.num_frames == 73  # 1.2 s at 60 fps, as without the T-pose frame
    # measured: 5.7 degrees at most from frame to frame (with the T-pose kept: 80)
    assert largest_step(clip) < 20
    kept_code, _, _, kept = retarget_cli(tmp_path, capsys, source, "--frames", "0:", name="kept")
    assert kept_code == 0 and largest_step(load_clip_file(humanoid, kept)) > 60


def test_a_clean_clip_keeps_its_first_frame_silently(walk, tmp_path, capsys):
    code, _, err, _ = retarget_cli(tmp_path, capsys, write(tmp_path / "clean.bvh", walk))
    assert code == 0 and err == ""


def test_frames_picks_a_range(walk, humanoid, tmp_path, capsys):
    code, out, _, path = retarget_cli(tmp_path, capsys, write(tmp_path / "w.bvh", walk), "--frames", "12:73")
    assert code == 0
    clip = load_clip_file(humanoid, path)
    assert clip.num_frames == 31  # source frames 12..72: 0.5 s
    whole = load_clip_file(humanoid, retarget_cli(tmp_path, capsys, tmp_path / "w.bvh", name="whole")[3])
    # the range starts above the origin too, and moves as the whole clip does from its frame 6 (0.1 s)
    assert np.abs(clip.root_pos[0, :2]).max() < 1e-9
    np.testing.assert_allclose(clip.joint_rot[:, 4], whole.joint_rot[6:37, 4], atol=1e-6)


@pytest.mark.parametrize("frames, message", [
    ("5:3", "need 0 <= A < B <= 145"),
    ("0:1000", "need 0 <= A < B <= 145"),
    ("7:8", "needs at least 2 frames"),
    ("a:b", "expected A:B"),
    (":", "expected A:B"),
    ("-3:", "expected A:B"),
])
def test_bad_frame_ranges_are_one_line_errors(walk, tmp_path, capsys, frames, message):
    code, _, err, path = retarget_cli(tmp_path, capsys, write(tmp_path / "w.bvh", walk), f"--frames={frames}")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not path.exists()


# ------------------------------------------------------------------------------------ leaving the ground
def test_a_clip_standing_above_the_floor_warns(walk, tmp_path, capsys):
    """The walker steps onto a 1 m platform for 0.4 s (root raised smoothly, feet planted up there)."""
    t = walk["t"]
    up = np.clip((t - 0.3) / 0.15, 0, 1) * np.clip((1.0 - t) / 0.15, 0, 1)
    root = walk["root"] + np.outer(up * 40.0, [0, 1, 0])  # 40 inches up
    code, _, err, _ = retarget_cli(tmp_path, capsys, write(tmp_path / "platform.bvh", walk, root=root))
    assert code == 0
    assert err.count("\n") == 1 and "leaves the flat ground" in err
    share = float(err.split("of it in ")[1].split("%")[0])
    highest = float(err.split("up to ")[1].split(" m")[0])
    assert 30 <= share <= 70 and 0.8 < highest < 1.2  # measured: 56 %, 0.94 m


def test_a_jump_does_not_warn(walk, tmp_path, capsys):
    """A hop: the whole walker thrown up 0.5 m on a parabola (0.64 s of flight): feet are still only at its top."""
    t = walk["t"]
    flight = np.clip(t - 0.3, 0, 0.64)
    height = np.where(flight > 0, 3.13 * flight - 9.81 / 2 * flight ** 2, 0) / 0.0254  # metres to inches
    root = walk["root"] + np.outer(height, [0, 1, 0])
    code, _, err, _ = retarget_cli(tmp_path, capsys, write(tmp_path / "hop.bvh", walk, root=root))
    assert code == 0 and err == ""


# ------------------------------------------------------------------------------------ forward axis
def test_a_wrong_forward_axis_warns(walk, tmp_path, capsys):
    spec = yaml.safe_load(CMU_MAP.read_text())
    spec["source"]["forward"] = "-z"
    wrong = tmp_path / "wrong_forward.yaml"
    wrong.write_text(yaml.safe_dump(spec))
    code, _, err = run(capsys, write(tmp_path / "w.bvh", walk), "--character", "humanoid", "--map", wrong,
                       "--name", "back", "--out-dir", tmp_path)
    assert code == 0
    assert "travels against the character's facing in 100% of its moving frames" in err
    assert "source.forward '-z'" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------ validation
def test_an_absurd_frame_time_or_rate_is_refused_before_anything_is_allocated(walk, tmp_path, capsys):
    source = write(tmp_path / "w.bvh", walk)
    slow = tmp_path / "slow.bvh"
    slow.write_text(source.read_text().replace("Frame Time: 0.00833333", "Frame Time: 1000000"))
    code, _, err, path = retarget_cli(tmp_path, capsys, slow)
    assert code == 2 and "more than 10 s per frame" in err and len(err.strip().splitlines()) == 1
    slow.write_text(source.read_text().replace("Frame Time: 0.00833333", "Frame Time: 9"))  # allowed, but ...
    code, _, err, path = retarget_cli(tmp_path, capsys, slow, "--fps", "1000")  # ... far too many frames at 1000 fps
    assert code == 2 and "more than the 432000 allowed" in err and len(err.strip().splitlines()) == 1
    for fps in ("0", "-5", "nan", "inf", "1e9"):
        code, _, err, _ = retarget_cli(tmp_path, capsys, source, "--fps", fps)
        assert code == 2 and "--fps must be a positive number" in err
    assert not path.exists()


def test_non_finite_source_values_are_refused(walk, tmp_path, capsys):
    source = write(tmp_path / "w.bvh", walk)
    lines = source.read_text().splitlines()
    row = lines.index("MOTION") + 5
    lines[row] = " ".join(["nan"] + lines[row].split()[1:])
    bad = tmp_path / "nan.bvh"
    bad.write_text("\n".join(lines) + "\n")
    code, _, err, path = retarget_cli(tmp_path, capsys, bad)
    assert code == 2 and "non-finite" in err and not path.exists()


def test_the_output_checks_refuse_non_finite_values():
    motion = retarget.TargetMotion(np.full((3, 3), np.nan), np.tile([0, 0, 0, 1.0], (3, 1)),
                                   np.tile([0, 0, 0, 1.0], (3, 15, 1)), 1 / 60)
    with pytest.raises(retarget.CharctlError, match="root position has non-finite values"):
        retarget.check_finite(motion, "x.bvh")


def test_sfu_style_positions_on_every_joint_work_with_the_cmu_map(walk, humanoid, tmp_path, capsys):
    """SFU's files carry 6 channels on every joint (positions repeating the offsets): the CMU map takes them."""
    source = tmp_path / "sfu.bvh"
    write_cmu_bvh(source, walk["t"], walk["root"], walk["local"], all_positions=True)
    code, _, err, path = retarget_cli(tmp_path, capsys, source, name="sfu")
    clean = retarget_cli(tmp_path, capsys, write(tmp_path / "w.bvh", walk), name="cmu")[3]
    assert code == 0 and err == ""
    np.testing.assert_allclose(load_clip_file(humanoid, path).joint_rot, load_clip_file(humanoid, clean).joint_rot,
                               atol=1e-6)



# ------------------------------------------------------------------------------------ looping
def wrap_step(clip) -> float:
    """Largest joint change (degrees) across the wrap: half a frame before the clip's end to half a frame after."""
    before = clip.sample(clip.duration - clip.frame_time / 2, velocities=False).joint_rot
    after = clip.sample(clip.duration + clip.frame_time / 2, velocities=False).joint_rot
    dot = np.abs(np.sum(before * after, axis=-1))
    return float(np.degrees(2 * np.arccos(np.minimum(dot, 1))).max())


def test_loop_cycle_cuts_one_gait_cycle_and_closes_it(walk, humanoid, tmp_path, capsys):
    """The 1.2 s walk has a 1 s gait cycle: `wrap` jumps at its ends, `cycle` cuts 1 s and joins smoothly. The
    spine drifts 15 degrees over the take, so no two frames match exactly and the blend has to close the loop."""
    local = dict(walk["local"])
    local["Spine"] = local["Spine"] * Rotation.from_euler("x", np.radians(15) * walk["t"][:, None] / 1.2)
    source = tmp_path / "drift.bvh"
    write_cmu_bvh(source, walk["t"], walk["root"], local)
    code, _, err, path = retarget_cli(tmp_path, capsys, source, "--loop", "cycle", name="cycle")
    assert code == 0 and "--loop cycle: frames" in err and err.count("\n") == 1
    cycle = load_clip_file(humanoid, path)
    assert cycle.loop and abs(cycle.duration - 1.0) <= cycle.frame_time
    np.testing.assert_allclose(np.abs(np.sum(cycle.joint_rot[-1] * cycle.joint_rot[0], axis=-1)), 1.0, atol=1e-9)
    code, _, err, wrapped = retarget_cli(tmp_path, capsys, source, "--loop", "wrap", name="wrap")
    assert code == 0 and "joins the last frame to the first with a" in err
    # measured: across the wrap 5.5 degrees (cycle) and 22 (wrap); inside the clip up to 5.7 per frame
    assert wrap_step(cycle) < 1.2 * largest_step(cycle)
    assert wrap_step(load_clip_file(humanoid, wrapped)) > 3 * largest_step(cycle)


def test_loop_cycle_needs_a_clip_long_enough(walk, tmp_path, capsys):
    code, _, err, _ = retarget_cli(tmp_path, capsys, write(tmp_path / "w.bvh", walk), "--loop", "cycle",
                                   "--frames", "0:60")
    assert code == 2 and "too short to hold a cycle of at least 0.5 s" in err


def test_motions_says_what_each_loop_mode_means(capsys):
    assert main(["motions"]) == 0
    out = capsys.readouterr().out
    assert "loop wrap:" in out and "loop none:" in out and "--loop cycle" in out


# ------------------------------------------------------------------------------------ CMU elbows
def bone_angles(humanoid, clip, src, pairs):
    """Per pair (target joint, target child, source joint, source child): angle (degrees, per output frame)
    between the retargeted bone and the source bone (the source at 120 fps, the output at 60)."""
    from charctl.character.kinematics import forward_kinematics

    pos, _ = forward_kinematics(humanoid, clip.root_pos, clip.root_rot, clip.joint_rot)
    out = []
    for joint, child, source, source_child in pairs:
        a = pos[:, humanoid.joint_index(child)] - pos[:, humanoid.joint_index(joint)]
        b = src.pos[::2, src.names.index(source_child)] - src.pos[::2, src.names.index(source)]
        cos = np.sum(a * b, axis=-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return out


def test_an_elbow_bending_about_a_tilted_axis_keeps_the_forearm_direction(walk, humanoid, tmp_path):
    """CMU's elbows bend about an axis ~30 degrees off the one a T-posed arm's shortest-arc alignment gives the
    humanoid's elbow hinge. The fixture bends them 30-90 degrees about such an axis; the shoulder takes the twist
    that puts the hinge axis normal to the bend plane, so the forearm points where the source's does."""
    from charctl.motion.bvh import read_bvh

    local, t = dict(walk["local"]), walk["t"]
    flex = np.radians(60 + 30 * np.sin(2 * np.pi * t))
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        axis = np.array([0.0, np.cos(np.radians(30)), sign * np.sin(np.radians(30))])  # y tilted about the bone
        local[f"{side}ForeArm"] = Rotation.from_rotvec(-sign * flex[:, None] * axis)
    source = tmp_path / "tilted_elbow.bvh"
    write_cmu_bvh(source, t, walk["root"], local)
    clip = retarget.retarget_bvh(source, humanoid, CMU_MAP, "elbow", fps=60, warn=lambda line: None)
    rmap = retarget.load_map(CMU_MAP, humanoid)
    src = retarget.source_motion(read_bvh(source), source, rmap)
    forearms = bone_angles(humanoid, clip, src, [("left_elbow", "left_wrist", "LeftForeArm", "LeftHand"),
                                                 ("right_elbow", "right_wrist", "RightForeArm", "RightHand")])
    upper = bone_angles(humanoid, clip, src, [("left_shoulder", "left_elbow", "LeftArm", "LeftForeArm"),
                                              ("right_shoulder", "right_elbow", "RightArm", "RightForeArm")])
    # measured: 0.0 degrees (27.5 median, 31 at most when the hinge took only the twist about its own axis)
    for angles in forearms:
        assert angles.max() < 3.0
    for angles in upper:  # the twist turns the upper arm about itself only
        assert angles.max() < 0.5
    elbow = clip.joint_rot[:, humanoid.joint_index("left_elbow")]
    bend = np.degrees(2 * np.arctan2(elbow[:, 2], elbow[:, 3]))
    np.testing.assert_allclose(bend, np.degrees(flex[::2]), atol=0.5)  # and the hinge carries the whole bend


def test_a_deepmimic_clip_with_an_absurd_frame_duration_is_refused(tmp_path, capsys):
    import json

    from test_retarget import DEEPMIMIC_WALK

    if not DEEPMIMIC_WALK.exists():
        pytest.skip("DeepMimic reference data not present")
    data = json.loads(DEEPMIMIC_WALK.read_text())
    source = tmp_path / "slow.txt"
    for frame in data["Frames"]:
        frame[0] = 1000000.0
    source.write_text(json.dumps(data))
    code, _, err = run(capsys, source, "--character", "humanoid", "--name", "slow", "--out-dir", tmp_path)
    assert code == 2 and "frame durations must be in (0, 10] s" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "humanoid_slow.bvh").exists()


def test_a_clip_with_non_finite_values_is_not_saved(humanoid, tmp_path):
    from charctl.motion.clip import Clip

    clip = Clip(character=humanoid, name="bad", frame_time=1 / 60, root_pos=np.array([[0, 0, np.inf]] * 2),
                root_rot=np.tile([0, 0, 0, 1.0], (2, 1)), joint_rot=np.tile([0, 0, 0, 1.0], (2, 15, 1)), loop=False)
    with pytest.raises(retarget.CharctlError, match="non-finite"):
        clip.save(directory=tmp_path)
    assert list(tmp_path.iterdir()) == []
