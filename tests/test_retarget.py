"""Retargeting a CMU-style BVH onto the humanoid, DeepMimic .txt through the same command, and bad input.

The source is built here: CMU joint names, "Zrotation Yrotation Xrotation" channels, 120 fps, y-up and
facing +z (as CMU's BVH conversions are), arms in a T-pose at rest; once on a straight-legged skeleton in
inches and once on CMU's own rest pose (legs splayed ~20 degrees, CMU's length unit). Its motion is a walk
computed by two-link IK so each foot really is planted (fixed, flat) during its stance phase. A clip of
our own characters exported with foreign names, units, axes, channel order and rate must come back as it
was (humanoid cartwheel, 82-DoF dog trot).
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from charctl.character.kinematics import forward_kinematics
from charctl.character.model import load_character
from charctl.cli import main
from charctl.motion import retarget
from charctl.util.errors import CharctlError
from charctl.util.paths import CONFIGS_DIR

REPO = Path(__file__).resolve().parent.parent
CMU_MAP = CONFIGS_DIR / "retarget" / "cmu_humanoid.yaml"
DEEPMIMIC_WALK = REPO.parent / "shared" / "reference" / "deepmimic" / "motions" / "humanoid3d_walk.txt"

FPS, DURATION, PERIOD, STANCE = 120, 1.2, 1.0, 0.6  # gait: 60 % of each 1 s cycle on the ground
HIP_HEIGHT, ANKLE_HEIGHT, THIGH, SHIN = 35.0, 3.0, 17.0, 16.5  # inches
SPEED, LIFT = 40.0, 4.0  # inches per second, swing height

# name, parent, offset (inches, y-up, facing +z, left = +x)
SKELETON = [
    ("Hips", None, (0, 0, 0)),
    ("LHipJoint", "Hips", (0, 0, 0)),
    ("LeftUpLeg", "LHipJoint", (3.5, -2.0, 0)),
    ("LeftLeg", "LeftUpLeg", (0, -THIGH, 0)),
    ("LeftFoot", "LeftLeg", (0, -SHIN, 0)),
    ("LeftToeBase", "LeftFoot", (0, -2.0, 5.0)),
    ("RHipJoint", "Hips", (0, 0, 0)),
    ("RightUpLeg", "RHipJoint", (-3.5, -2.0, 0)),
    ("RightLeg", "RightUpLeg", (0, -THIGH, 0)),
    ("RightFoot", "RightLeg", (0, -SHIN, 0)),
    ("RightToeBase", "RightFoot", (0, -2.0, 5.0)),
    ("LowerBack", "Hips", (0, 2.0, 0)),
    ("Spine", "LowerBack", (0, 4.0, 0)),
    ("Spine1", "Spine", (0, 4.0, 0)),
    ("Neck", "Spine1", (0, 6.0, 0)),
    ("Neck1", "Neck", (0, 2.0, 0)),
    ("Head", "Neck1", (0, 2.0, 0)),
    ("LeftShoulder", "Spine1", (1.0, 5.0, 0)),
    ("LeftArm", "LeftShoulder", (6.0, 0, 0)),
    ("LeftForeArm", "LeftArm", (11.0, 0, 0)),
    ("LeftHand", "LeftForeArm", (10.0, 0, 0)),
    ("RightShoulder", "Spine1", (-1.0, 5.0, 0)),
    ("RightArm", "RightShoulder", (-6.0, 0, 0)),
    ("RightForeArm", "RightArm", (-11.0, 0, 0)),
    ("RightHand", "RightForeArm", (-10.0, 0, 0)),
]
END_SITES = {"LeftToeBase": (0, 0, 2.0), "RightToeBase": (0, 0, 2.0), "Head": (0, 3.0, 0),
             "LeftHand": (3.0, 0, 0), "RightHand": (-3.0, 0, 0)}
ELBOW_FLEX = np.radians(30.0)


def gait(t: np.ndarray, phase: float, unit: float):
    """Ankle (forward z, height y) of one foot (inches x unit), and whether it is planted."""
    cycle = (t / PERIOD + phase) % 1.0
    k = np.floor(t / PERIOD + phase)
    step = SPEED * unit * PERIOD  # the foot moves one stride per cycle
    planted = cycle < STANCE
    # stance: fixed at the plant point; swing: smooth move to the next one, lifted by a sine bump
    s = np.clip((cycle - STANCE) / (1 - STANCE), 0, 1)
    smooth = s * s * (3 - 2 * s)
    plant = k * step - phase * step + 0.5 * STANCE * step
    z = np.where(planted, plant, plant + smooth * step)
    y = (ANKLE_HEIGHT + np.where(planted, 0.0, LIFT * np.sin(np.pi * s))) * unit
    return z, y, planted


def leg_ik(hip_z, hip_y, ankle_z, ankle_y, thigh_length, shin_length):
    """Thigh and shin angles from straight down (positive: forward) for a planar two-link leg."""
    dz, dy = ankle_z - hip_z, hip_y - ankle_y
    d = np.hypot(dz, dy)
    assert np.all(d < thigh_length + shin_length)
    cos_knee = (thigh_length**2 + shin_length**2 - d**2) / (2 * thigh_length * shin_length)
    knee = np.arccos(np.clip(cos_knee, -1, 1))  # interior angle
    reach = np.arctan2(dz, dy)
    inner = np.arcsin(shin_length * np.sin(knee) / d)
    thigh = reach + inner  # knee ahead of the line hip-ankle
    shin = thigh - (np.pi - knee)
    return thigh, shin


def synthetic_walk(skeleton=SKELETON):
    """A walk on `skeleton` (SKELETON or CMU_REST): local rotations per joint, root position, and per foot
    the planted frames and the knee flexion. Legs are solved in world space, so a rest pose with splayed
    legs (CMU's) is straightened by the hip rotation as in real CMU data; feet stay flat (rest-oriented)."""
    offsets = {name: np.array(offset, dtype=float) for name, _, offset in skeleton}
    unit = (np.linalg.norm(offsets["LeftLeg"]) + np.linalg.norm(offsets["LeftFoot"])) / (THIGH + SHIN)
    down = np.array([0.0, -1.0, 0.0])
    t = np.arange(int(round(DURATION * FPS)) + 1) / FPS
    n = len(t)
    hip_drop = -(offsets["LHipJoint"] + offsets["LeftUpLeg"])[1]
    root = np.stack([np.zeros(n), np.full(n, (HIP_HEIGHT - 2.0) * unit + hip_drop), SPEED * unit * t], axis=1)
    local = {name: Rotation.identity(n) for name, _, _ in skeleton}
    local["Hips"] = Rotation.from_euler("y", 5.0 * np.sin(2 * np.pi * t / PERIOD)[:, None], degrees=True)
    contacts, knee_flex = {}, {}
    for side, phase, sign in (("Left", 0.0, 1.0), ("Right", 0.5, -1.0)):
        # The hips yaw a little: put the hip joint where it is, solve the leg in the sagittal plane.
        hip = root + local["Hips"].apply(offsets[f"{side[0]}HipJoint"] + offsets[f"{side}UpLeg"])
        ankle_z, ankle_y, planted = gait(t, phase, unit)
        thigh, shin = leg_ik(hip[:, 2], hip[:, 1], ankle_z, ankle_y, np.linalg.norm(offsets[f"{side}Leg"]),
                             np.linalg.norm(offsets[f"{side}Foot"]))
        straighten_thigh, _ = Rotation.align_vectors([down], [offsets[f"{side}Leg"]])
        straighten_shin, _ = Rotation.align_vectors([down], [offsets[f"{side}Foot"]])
        # world rotations: a bone's rest direction -> straight down -> swung forward about x (left) by -angle
        thigh_world = Rotation.from_euler("x", -thigh[:, None]) * straighten_thigh
        shin_world = Rotation.from_euler("x", -shin[:, None]) * straighten_shin
        local[f"{side}UpLeg"] = local["Hips"].inv() * thigh_world
        local[f"{side}Leg"] = thigh_world.inv() * shin_world
        local[f"{side}Foot"] = shin_world.inv()  # the foot keeps its rest orientation: flat
        contacts[side], knee_flex[side] = planted, thigh - shin
        # arms hang down from the T-pose and swing opposite to the leg, elbows bent forward
        arm_down = Rotation.from_euler("z", -sign * 80.0, degrees=True)
        swing = Rotation.from_euler("x", 0.3 * np.sin(np.pi * 2 * (t / PERIOD + phase))[:, None] * sign)
        local[f"{side}Arm"] = swing * arm_down
        local[f"{side}ForeArm"] = Rotation.from_euler("y", np.full((n, 1), -sign * ELBOW_FLEX))
    local["Spine"] = Rotation.from_euler("x", 0.05 * np.sin(4 * np.pi * t / PERIOD)[:, None])
    return dict(t=t, root=root, local=local, contacts=contacts, knee_flex=knee_flex, offsets=offsets)


def write_cmu_bvh(path: Path, t, root, local, skeleton=SKELETON, end_sites=END_SITES, order="ZYX", fps=FPS,
                  all_positions=False) -> None:
    """A BVH as CMU's conversions write it: root with 6 channels, ZYX rotation channels, one row per frame.
    (`all_positions`: 6 channels on every joint, the translation repeating the offset, as SFU's files do.)"""
    parents = {name: parent for name, parent, _ in skeleton}
    offsets = {name: offset for name, _, offset in skeleton}
    children = {name: [c for c, p, _ in skeleton if p == name] for name in parents}
    lines, visited = ["HIERARCHY"], []

    def emit(name, depth):
        pad = "  " * depth
        visited.append(name)
        o = offsets[name]
        lines.extend([f"{pad}{'ROOT' if parents[name] is None else 'JOINT'} {name}", f"{pad}{{",
                      f"{pad}  OFFSET {o[0]:.5f} {o[1]:.5f} {o[2]:.5f}"])
        position = "Xposition Yposition Zposition " if parents[name] is None or all_positions else ""
        rotations = " ".join(f"{axis}rotation" for axis in order)
        lines.append(f"{pad}  CHANNELS {6 if position else 3} {position}{rotations}")
        for child in children[name]:
            emit(child, depth + 1)
        if name in end_sites:
            e = end_sites[name]
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {e[0]} {e[1]} {e[2]}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(skeleton[0][0], 0)
    lines += ["MOTION", f"Frames: {len(t)}", f"Frame Time: {1.0 / fps:.8f}"]
    identity = Rotation.identity(len(t))
    columns = []
    for name in visited:
        if parents[name] is None:
            columns.append(root)
        elif all_positions:
            columns.append(np.tile(offsets[name], (len(t), 1)))
        columns.append(local.get(name, identity).as_euler(order, degrees=True))
    for row in np.concatenate(columns, axis=1):
        lines.append(" ".join(f"{v:.9f}" for v in row))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def humanoid():
    return load_character("humanoid")


@pytest.fixture(scope="module", params=["straight", "cmu"])
def walk(request, tmp_path_factory):
    """The synthetic source on a straight-legged skeleton and on CMU's rest pose (splayed legs, other
    proportions), and the clip `charctl retarget` makes of it."""
    directory = tmp_path_factory.mktemp("retarget")
    skeleton, end_sites = (SKELETON, END_SITES) if request.param == "straight" else (CMU_REST, {})
    walk = synthetic_walk(skeleton)
    source = directory / "07_01.bvh"
    write_cmu_bvh(source, walk["t"], walk["root"], walk["local"], skeleton, end_sites)
    code = main(["retarget", str(source), "--character", "humanoid", "--map", str(CMU_MAP), "--name", "walk",
                 "--out-dir", str(directory)])
    assert code == 0
    return dict(walk, source=source, out=directory / "humanoid_walk.bvh")


def load_output(path, character):
    from charctl.motion.clip import load_clip_file

    return load_clip_file(character, path)


def body_lowest(character, clip):
    pos, rot = forward_kinematics(character, clip.root_pos, clip.root_rot, clip.joint_rot)
    return retarget.lowest_points(character, pos, rot)


def hinge_angles(character, clip):
    """Angle of every hinge per frame, after checking the rotation has no component off its axis."""
    out = {}
    for k in character.indices_of("revolute"):
        joint = character.joints[k]
        rotvec = Rotation.from_quat(clip.joint_rot[:, k]).as_rotvec()
        angle = rotvec @ joint.axis
        np.testing.assert_allclose(rotvec, angle[:, None] * joint.axis, atol=1e-5)
        out[joint.name] = angle
    return out


def test_output_loads_with_the_source_duration_at_60_fps(walk, humanoid):
    clip = load_output(walk["out"], humanoid)
    assert clip.frame_time == pytest.approx(1 / 60, abs=1e-6)
    assert clip.duration == pytest.approx(walk["t"][-1], abs=0.5 / 60)
    assert clip.joint_rot.shape == (clip.num_frames, humanoid.num_joints, 4)
    assert clip.loop is False


def test_feet_touch_the_ground_when_planted_and_nothing_goes_below(walk, humanoid):
    clip = load_output(walk["out"], humanoid)
    low = body_lowest(humanoid, clip)
    assert low.min() > -0.01
    t = np.arange(clip.num_frames) * clip.frame_time
    for side in ("left", "right"):
        # the source's stance frames, mapped to output times
        planted = np.interp(t, walk["t"], walk["contacts"][side.capitalize()].astype(float)) == 1.0
        assert planted.sum() > 10
        foot = low[:, humanoid.joint_index(f"{side}_ankle")]
        assert np.abs(foot[planted]).max() < 0.02, side
        assert foot[~planted].max() > 0.03  # and the swing really lifts the foot


def test_hinges_stay_on_their_axis_within_limits_and_carry_the_source_angles(walk, humanoid):
    clip = load_output(walk["out"], humanoid)
    angles = hinge_angles(humanoid, clip)
    for name, angle in angles.items():
        low, high = humanoid.joints[humanoid.joint_index(name)].limits[0]
        assert angle.min() >= low - 1e-6 and angle.max() <= high + 1e-6, name
    # The synthetic knees flex by the IK's knee angle, the elbows by 30 degrees forward.
    t = np.arange(clip.num_frames) * clip.frame_time
    for side in ("left", "right"):
        expected = -np.interp(t, walk["t"], walk["knee_flex"][side.capitalize()])  # humanoid knees flex < 0
        np.testing.assert_allclose(angles[f"{side}_knee"], expected, atol=0.03)
        np.testing.assert_allclose(angles[f"{side}_elbow"], ELBOW_FLEX, atol=0.03)


def test_walk_moves_forward_along_x_upright(walk, humanoid):
    clip = load_output(walk["out"], humanoid)
    pos, _ = forward_kinematics(humanoid, clip.root_pos, clip.root_rot, clip.joint_rot)
    # the source walks along +z (its forward); the humanoid along +x, scaled by the ratio of the root's
    # rest heights over the ankles, both legs (source units cancel out; CMU's right leg is the longer)
    o = walk["offsets"]
    source_legs = -sum(o[f"{s[0]}HipJoint"] + o[f"{s}UpLeg"] + o[f"{s}Leg"] + o[f"{s}Foot"]
                       for s in ("Left", "Right"))[1]
    leg_ratio = 2 * (0.421546 + 0.40987) / source_legs
    distance = clip.root_pos[-1] - clip.root_pos[0]
    assert distance[0] == pytest.approx((walk["root"][-1, 2] - walk["root"][0, 2]) * leg_ratio, rel=1e-3)
    assert abs(distance[1]) < 0.02
    head, ankle = pos[:, humanoid.joint_index("neck"), 2], pos[:, humanoid.joint_index("left_ankle"), 2]
    assert np.all(head - ankle > 1.0)
    # the arms hang at the sides (from the source's T-pose rest through the rest alignment): left is +y
    assert np.all(pos[:, humanoid.joint_index("left_wrist"), 1] - pos[:, 0, 1] > 0.1)
    assert np.all(pos[:, humanoid.joint_index("right_wrist"), 1] - pos[:, 0, 1] < -0.1)
    wrist, shoulder = humanoid.joint_index("left_wrist"), humanoid.joint_index("left_shoulder")
    assert np.all(pos[:, wrist, 2] < pos[:, shoulder, 2] - 0.3)


# CMU's own rest pose (offsets as in the 31-joint conversions): legs splayed ~20 degrees, arms in a T-pose.
CMU_REST = [
    ("Hips", None, (0, 0, 0)), ("LHipJoint", "Hips", (0, 0, 0)),
    ("LeftUpLeg", "LHipJoint", (1.36306, -1.79463, 0.83929)), ("LeftLeg", "LeftUpLeg", (2.44811, -6.72613, 0)),
    ("LeftFoot", "LeftLeg", (2.5622, -7.03959, 0)), ("LeftToeBase", "LeftFoot", (0.15764, -0.43311, 2.32255)),
    ("RHipJoint", "Hips", (0, 0, 0)),
    ("RightUpLeg", "RHipJoint", (-1.30552, -1.79463, 0.83929)), ("RightLeg", "RightUpLeg", (-2.54253, -6.98555, 0)),
    ("RightFoot", "RightLeg", (-2.56826, -7.05623, 0)), ("RightToeBase", "RightFoot", (-0.16473, -0.45259, 2.36315)),
    ("LowerBack", "Hips", (0.02827, 2.03559, -0.19338)), ("Spine", "LowerBack", (0.05672, 2.04885, -0.04275)),
    ("Spine1", "Spine", (0.05672, 2.04885, -0.04275)), ("Neck", "Spine1", (0, 0, 0)),
    ("Neck1", "Neck", (-0.01039, 1.60236, 0.22346)), ("Head", "Neck1", (-0.0051, 1.62104, -0.00728)),
    ("LeftShoulder", "Spine1", (0, 0, 0)), ("LeftArm", "LeftShoulder", (3.36241, 1.20089, -0.31121)),
    ("LeftForeArm", "LeftArm", (4.983, 0, 0)), ("LeftHand", "LeftForeArm", (3.48356, 0, 0)),
    ("RightShoulder", "Spine1", (0, 0, 0)), ("RightArm", "RightShoulder", (-3.1366, 1.37405, -0.40465)),
    ("RightForeArm", "RightArm", (-5.2419, 0, 0)), ("RightHand", "RightForeArm", (-3.44417, 0, 0)),
]


def test_source_rest_pose_is_reproduced_through_the_rest_alignment(humanoid, tmp_path):
    """At CMU's rest (all rotations zero) the humanoid's limbs point where CMU's do; torso and feet stay upright."""
    t = np.arange(3) / FPS
    root = np.tile([0.0, 17.0, 0.0], (3, 1))
    source = tmp_path / "rest.bvh"
    write_cmu_bvh(source, t, root, {}, CMU_REST, {"LeftToeBase": (0, 0, 1), "RightToeBase": (0, 0, 1)})
    clip = retarget.retarget_bvh(source, humanoid, CMU_MAP, "rest")
    pos, rot = forward_kinematics(humanoid, clip.root_pos, clip.root_rot, clip.joint_rot)
    offsets = {name: np.array(offset) for name, _, offset in CMU_REST}

    def cmu_to_world(v):  # CMU x left, y up, z forward -> charctl x forward, y left, z up
        return np.array([v[2], v[0], v[1]]) / np.linalg.norm(v)

    for joint, child, cmu_bone in [("left_hip", "left_knee", "LeftLeg"), ("left_knee", "left_ankle", "LeftFoot"),
                                   ("right_hip", "right_knee", "RightLeg"),
                                   ("left_shoulder", "left_elbow", "LeftForeArm"),
                                   ("right_shoulder", "right_elbow", "RightForeArm"),
                                   ("right_elbow", "right_wrist", "RightHand")]:
        bone = pos[0, humanoid.joint_index(child)] - pos[0, humanoid.joint_index(joint)]
        assert bone / np.linalg.norm(bone) @ cmu_to_world(offsets[cmu_bone]) > 0.999, joint
    rest = Rotation.from_euler("x", 90, degrees=True)
    for name in ("root", "chest", "neck", "left_ankle", "right_ankle"):
        angle = (Rotation.from_quat(rot[0, humanoid.joint_index(name)]) * rest.inv()).magnitude()
        assert angle < 1e-6, name
    assert body_lowest(humanoid, clip).min() == pytest.approx(0.0, abs=1e-9)


def test_ball_joints_are_clamped_to_their_limits_only_when_asked(humanoid, tmp_path):
    """A source bending its upper spine 90 degrees forward: the chest's limit is 1.2 rad per axis."""
    t = np.arange(5) / FPS
    root = np.tile([0.0, 17.0, 0.0], (5, 1))
    bend = {"Spine1": Rotation.from_euler("x", np.linspace(0, 90, 5)[:, None], degrees=True)}
    source = tmp_path / "bend.bvh"
    write_cmu_bvh(source, t, root, bend, CMU_REST, {})
    chest = humanoid.joint_index("chest")
    low, high = humanoid.joints[chest].limits.T
    free = retarget.retarget_bvh(source, humanoid, CMU_MAP, "bend")
    clamped = retarget.retarget_bvh(source, humanoid, CMU_MAP, "bend", clamp_ball_joints=True)
    free_rv = Rotation.from_quat(free.joint_rot[:, chest]).as_rotvec()
    clamped_rv = Rotation.from_quat(clamped.joint_rot[:, chest]).as_rotvec()
    assert np.abs(free_rv).max() == pytest.approx(np.pi / 2, abs=1e-6)
    assert np.all(clamped_rv >= low - 1e-9) and np.all(clamped_rv <= high + 1e-9)
    assert np.abs(clamped_rv).max() == pytest.approx(1.2, abs=1e-6)


FOREIGN_TO_WORLD = Rotation.from_matrix([[0, 0, 1], [1, 0, 0], [0, 1, 0]])  # x left, y up, z forward -> ours


def export_foreign_bvh(path: Path, character, motion, fps: float) -> None:
    """A character's clip as a third-party BVH would have it: joints renamed, centimetres, y-up facing +z,
    rest pose = the character's, ZXY channels, 6 channels on every joint. Retargeting it back must give the
    clip again."""
    identity = np.tile([0.0, 0, 0, 1], (character.num_joints, 1))
    standing = Rotation.from_euler("x", 90, degrees=True).as_quat()
    rest_pos, rest_rot = forward_kinematics(character, np.zeros(3), standing, identity)
    _, rot = forward_kinematics(character, motion.root_pos, motion.root_rot, motion.joint_rot)
    to_foreign = FOREIGN_TO_WORLD.inv()
    world = [to_foreign * Rotation.from_quat(rot[:, k]) * Rotation.from_quat(rest_rot[k]).inv() * FOREIGN_TO_WORLD
             for k in range(character.num_joints)]
    skeleton, local = [], {}
    for k, joint in enumerate(character.joints):
        parent = None if joint.parent < 0 else f"J_{character.joints[joint.parent].name}"
        offset = np.zeros(3) if parent is None else to_foreign.apply(rest_pos[k] - rest_pos[joint.parent]) * 100
        skeleton.append((f"J_{joint.name}", parent, tuple(offset)))
        local[f"J_{joint.name}"] = world[k] if parent is None else world[joint.parent].inv() * world[k]
    t = np.arange(len(motion.root_pos)) / fps
    write_cmu_bvh(path, t, to_foreign.apply(motion.root_pos) * 100, local, skeleton, {}, order="ZXY", fps=fps,
                  all_positions=True)


@pytest.mark.skipif(not DEEPMIMIC_WALK.exists(), reason="DeepMimic reference data not present")
@pytest.mark.parametrize("character_name, clip_file", [("humanoid", "humanoid3d_cartwheel.txt"),
                                                       ("dog", "dog3d_trot.txt")])
def test_a_clip_in_foreign_units_axes_names_and_rate_comes_back_as_it_was(character_name, clip_file, tmp_path):
    from charctl.motion.deepmimic import read_deepmimic_motion

    character = load_character(character_name)
    original = read_deepmimic_motion(DEEPMIMIC_WALK.parent / clip_file, character)
    original = retarget.enforce_limits(character, retarget.TargetMotion(
        original.root_pos, original.root_rot, original.joint_rot, original.frame_time), clamp_ball_joints=False)
    source = tmp_path / "foreign.bvh"
    export_foreign_bvh(source, character, retarget.resample(original, 120.0), fps=120.0)
    mapping = tmp_path / "identity.yaml"
    mapping.write_text("source: {scale: 0.01, up: y, forward: z}\njoints:\n" +
                       "".join(f"  {j.name}: J_{j.name}\n" for j in character.joints))
    clip = retarget.retarget_bvh(source, character, mapping, "back", fps=60.0)
    assert clip.num_frames == len(original.root_pos)
    pos, _ = forward_kinematics(character, clip.root_pos, clip.root_rot, clip.joint_rot)
    expected, _ = forward_kinematics(character, original.root_pos, original.root_rot, original.joint_rot)
    # body positions relative to the root exact; the root's path exact but for grounding's vertical lift
    np.testing.assert_allclose(pos - pos[:, :1], expected - expected[:, :1], atol=1e-3)
    np.testing.assert_allclose(clip.root_pos[:, :2], original.root_pos[:, :2] - original.root_pos[0, :2], atol=1e-4)
    assert np.abs(clip.root_pos[:, 2] - original.root_pos[:, 2]).max() < 0.05


def test_split_segment_takes_its_fraction_of_the_source_rotation(walk, humanoid, tmp_path):
    """A map may give a target joint a fraction of a source joint; the next joint on it takes the rest."""
    split = tmp_path / "split.yaml"
    split.write_text(CMU_MAP.read_text().replace("chest: [Spine1, chest]", "chest: {source: Spine, fraction: 0.5}")
                     .replace("neck: [Head, head]", "neck: Spine"))
    rmap = retarget.load_map(split, humanoid)
    from charctl.motion.bvh import read_bvh

    src = retarget.source_motion(read_bvh(walk["source"]), walk["source"], rmap)
    motion = retarget.transfer(humanoid, rmap, src, walk["source"])
    chest = Rotation.from_quat(motion.joint_rot[:, humanoid.joint_index("chest")]).as_rotvec()
    neck = Rotation.from_quat(motion.joint_rot[:, humanoid.joint_index("neck")]).as_rotvec()
    spine = walk["local"]["Spine"].as_rotvec()  # a bend about the source's left axis (+x) = humanoid's -z
    assert np.abs(spine[:, 0]).max() > 0.04
    np.testing.assert_allclose(chest[:, 2], -0.5 * spine[:, 0], atol=2e-3)
    np.testing.assert_allclose(neck[:, 2], -0.5 * spine[:, 0], atol=2e-3)


def test_lowest_points_of_the_collision_shapes(humanoid):
    """Rest pose, root 1 m up: foot boxes end 5 cm below the ankle; tilted 90 degrees, the box stands on its end."""
    identity = np.tile([0.0, 0, 0, 1], (1, humanoid.num_joints, 1))
    root_rot = Rotation.from_euler("x", 90, degrees=True).as_quat()[None]
    root_pos = np.array([[0.0, 0.0, 1.0]])
    pos, rot = forward_kinematics(humanoid, root_pos, root_rot, identity)
    low = retarget.lowest_points(humanoid, pos, rot)
    ankle = humanoid.joint_index("left_ankle")
    assert low[0, ankle] == pytest.approx(pos[0, ankle, 2] - 0.0225 - 0.055 / 2)
    assert low[0, 0] == pytest.approx(1.0 + 0.07 - 0.09)  # the root's sphere
    hip = humanoid.joint_index("left_hip")  # capsule along the thigh: half length + radius below its centre
    assert low[0, hip] == pytest.approx(pos[0, hip, 2] - 0.21 - 0.15 - 0.055)
    pitched = identity.copy()
    pitched[0, ankle] = Rotation.from_euler("z", -90, degrees=True).as_quat()  # toes straight down
    pos, rot = forward_kinematics(humanoid, root_pos, root_rot, pitched)
    low = retarget.lowest_points(humanoid, pos, rot)
    assert low[0, ankle] == pytest.approx(pos[0, ankle, 2] - 0.045 - 0.177 / 2)


@pytest.mark.skipif(not DEEPMIMIC_WALK.exists(), reason="DeepMimic reference data not present")
def test_deepmimic_txt_through_the_same_command(humanoid, tmp_path):
    from charctl.motion.deepmimic import read_deepmimic_motion

    assert main(["retarget", str(DEEPMIMIC_WALK), "--character", "humanoid", "--name", "dmwalk",
                 "--out-dir", str(tmp_path)]) == 0
    clip = load_output(tmp_path / "humanoid_dmwalk.bvh", humanoid)
    source = read_deepmimic_motion(DEEPMIMIC_WALK, humanoid)
    assert source.frame_time == pytest.approx(1 / 30, abs=1e-4)  # DeepMimic's walk: resampled to 60 fps
    assert clip.frame_time == pytest.approx(1 / 60) and clip.num_frames == 2 * source.num_frames - 1
    assert clip.loop is source.loop is True
    expected, _ = forward_kinematics(humanoid, source.root_pos, source.root_rot, source.joint_rot)
    pos, _ = forward_kinematics(humanoid, clip.root_pos, clip.root_rot, clip.joint_rot)
    np.testing.assert_allclose(pos[::2], expected, atol=1e-3)  # every other frame is a source frame


# ---------------------------------------------------------------------------------------- bad input
def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def test_unknown_joint_in_map_names_the_file_line_and_joint(walk, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CMU_MAP.read_text().replace("  left_knee: [LeftLeg, lShin]", "  left_knees: [LeftLeg, lShin]"))
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("  left_knees"))
    code, err = run_cli(["retarget", str(walk["source"]), "--character", "humanoid", "--map", str(bad),
                         "--name", "x", "--out-dir", str(tmp_path)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and f"{bad}:{line}" in err and "left_knees" in err
    assert not list(tmp_path.glob("*.bvh"))


def test_unknown_source_joint_names_the_map_line_and_the_bvh(walk, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CMU_MAP.read_text().replace("[LeftLeg, lShin]", "LeftShin"))
    code, err = run_cli(["retarget", str(walk["source"]), "--character", "humanoid", "--map", str(bad),
                         "--name", "x", "--out-dir", str(tmp_path)], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and str(bad) in err and "LeftShin" in err and str(walk["source"]) in err
    assert not list(tmp_path.glob("*.bvh"))


@pytest.mark.parametrize("which", ["source", "map"])
def test_missing_file(walk, tmp_path, capsys, which):
    paths = {"source": str(walk["source"]), "map": str(CMU_MAP)}
    paths[which] = str(tmp_path / "nope.bvh")
    code, err = run_cli(["retarget", paths["source"], "--character", "humanoid", "--map", paths["map"],
                         "--name", "x", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "nope.bvh" in err
    assert not list(tmp_path.glob("*.bvh"))


def test_truncated_bvh_names_the_file(walk, tmp_path, capsys):
    truncated = tmp_path / "cut.bvh"
    text = walk["source"].read_text()
    truncated.write_text(text[: int(len(text) * 0.7)])  # cut in the middle of a motion row
    code, err = run_cli(["retarget", str(truncated), "--character", "humanoid", "--map", str(CMU_MAP),
                         "--name", "x", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(truncated) in err
    assert not list(tmp_path.glob("humanoid_*"))


def test_existing_output_is_kept_unless_forced(walk, tmp_path, capsys):
    out = tmp_path / "humanoid_walk.bvh"
    out.write_text("keep me")
    args = ["retarget", str(walk["source"]), "--character", "humanoid", "--map", str(CMU_MAP), "--name", "walk",
            "--out-dir", str(tmp_path)]
    code, err = run_cli(args, capsys)
    assert code == 2 and "--force" in err and out.read_text() == "keep me"
    assert main(args + ["--force"]) == 0
    assert out.read_text() == walk["out"].read_text()


def test_map_errors_name_the_file_and_key(humanoid, tmp_path):
    cases = {
        "source: {up: q}\njoints: {root: Hips}\n": "source.up",
        "source: {up: y, forward: y}\njoints: {root: Hips}\n": "different axes",
        "joints: {root: Hips}\nscale: 2\n": "scale",
        "joints:\n  root: Hips\n  chest: {source: Spine, fraction: 2}\n": ":3: joint 'chest'",
        "joints: {chest: Spine}\n": "root joint",
    }
    for text, expected in cases.items():
        path = tmp_path / "m.yaml"
        path.write_text(text)
        with pytest.raises(CharctlError) as info:
            retarget.load_map(path, humanoid)
        message = str(info.value)
        assert str(path) in message and expected in message and "\n" not in message, message
