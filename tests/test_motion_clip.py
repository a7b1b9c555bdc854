"""Clips: the DeepMimic import matches the source, BVH round trips, sampling and looping behave."""

import json
from pathlib import Path

import numpy as np
import pybullet
import pytest
from scipy.spatial.transform import Rotation

from charctl.character.kinematics import body_velocities, forward_kinematics
from charctl.character.model import load_character
from charctl.motion.bvh import read_bvh, write_bvh
from charctl.motion.clip import Clip, load_clip
from charctl.sim.bullet_pose import apply_pose
from charctl.util import rotations as rot

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "deepmimic"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference not present")
SOURCES = {"humanoid": "humanoid3d", "dog": "dog3d"}
CLIPS = [("humanoid", "cartwheel", "humanoid3d_cartwheel"), ("humanoid", "spinkick", "humanoid3d_spinkick"),
         ("dog", "canter", "dog3d_canter"), ("dog", "trot", "dog3d_trot"), ("dog", "turn", "dog3d_spin")]


def deepmimic_fk(character_file: Path, motion_file: Path) -> dict[str, np.ndarray]:
    """Independent FK straight from DeepMimic's files: world joint positions (frames, 3) by name, z-up."""
    joints = json.loads(character_file.read_text())["Skeleton"]["Joints"]
    rows = np.asarray(json.loads(motion_file.read_text())["Frames"])
    world_rot, world_pos = {}, {}
    col = 8
    for j in joints:
        if j["Type"] == "none":
            world_pos[j["ID"]] = rows[:, 1:4]
            world_rot[j["ID"]] = Rotation.from_quat(rows[:, [5, 6, 7, 4]])
            continue
        if j["Type"] == "spherical":
            local = Rotation.from_quat(rows[:, [col + 1, col + 2, col + 3, col]])
            col += 4
        elif j["Type"] == "revolute":
            local = Rotation.from_rotvec(rows[:, col, None] * [0, 0, 1.0])
            col += 1
        else:
            local = Rotation.identity(len(rows))
        parent = j["Parent"]
        world_pos[j["ID"]] = world_pos[parent] + world_rot[parent].apply([j["AttachX"], j["AttachY"], j["AttachZ"]])
        world_rot[j["ID"]] = world_rot[parent] * local
    assert col == rows.shape[1]
    out = {}
    for j in joints:
        p = world_pos[j["ID"]] - rows[0, 1:4] * [1, 0, 1]  # loaders start the root at x = z = 0
        out[j["Name"]] = np.stack([p[:, 0], -p[:, 2], p[:, 1]], axis=1)  # y-up -> z-up
    return out


@needs_reference
@pytest.mark.parametrize("character,motion,source", CLIPS)
def test_shipped_clip_matches_deepmimic_source(character, motion, source):
    """Humanoid: every body within 1 mm on every frame. Dog: the paws within 2 cm despite the added segments."""
    char = load_character(character)
    clip = load_clip(character, motion)
    expected = deepmimic_fk(REFERENCE / "characters" / f"{SOURCES[character]}.txt",
                            REFERENCE / "motions" / f"{source}.txt")
    pos, _ = forward_kinematics(char, clip.root_pos, clip.root_rot, clip.joint_rot)
    names = list(expected) if character == "humanoid" else ["left_finger", "right_finger", "left_toe", "right_toe"]
    tolerance = 1e-3 if character == "humanoid" else 2e-2
    for name in names:
        error = np.linalg.norm(pos[:, char.joint_index(name)] - expected[name], axis=-1)
        assert error.max() < tolerance, (name, error.max())
    frames = json.loads((REFERENCE / "motions" / f"{source}.txt").read_text())["Frames"]
    assert clip.loop and clip.num_frames == len(frames)


@pytest.mark.parametrize("character,motion", [("humanoid", "spinkick"), ("dog", "turn")])
def test_bvh_write_then_read_is_exact(tmp_path, character, motion):
    clip = load_clip(character, motion)
    path = tmp_path / f"{character}_{motion}.bvh"
    write_bvh(path, clip.to_bvh())
    again = Clip.from_bvh(clip.character, read_bvh(path), name=motion, loop=True)
    np.testing.assert_allclose(again.root_pos, clip.root_pos, atol=1e-6)
    assert rot.quat_diff_angle(again.root_rot, clip.root_rot).max() < 1e-6
    assert rot.quat_diff_angle(again.joint_rot, clip.joint_rot).max() < 1e-6
    assert again.frame_time == pytest.approx(clip.frame_time, abs=1e-9)


def test_sample_hits_frames_and_interpolates():
    clip = load_clip("humanoid", "spinkick")
    pose = clip.sample(3 * clip.frame_time)
    np.testing.assert_allclose(pose.root_pos, clip.root_pos[3], atol=1e-9)
    assert rot.quat_diff_angle(pose.joint_rot, clip.joint_rot[3]).max() < 1e-9
    mid = clip.sample(3.5 * clip.frame_time)
    np.testing.assert_allclose(mid.root_pos, 0.5 * (clip.root_pos[3] + clip.root_pos[4]), atol=1e-9)
    halfway = rot.quat_diff_angle(clip.joint_rot[3], mid.joint_rot)
    np.testing.assert_allclose(halfway, 0.5 * rot.quat_diff_angle(clip.joint_rot[3], clip.joint_rot[4]), atol=1e-9)


@pytest.mark.parametrize("motion", ["trot", "turn"])
def test_looping_continues_with_the_cycle_displacement_and_heading(motion):
    clip = load_clip("dog", motion)
    t = 0.3
    now, later = clip.sample(t), clip.sample(t + clip.duration)
    dh = clip.cycle_heading
    assert rot.heading(later.root_rot) - rot.heading(now.root_rot) == pytest.approx(dh, abs=1e-6) or \
        abs(np.angle(np.exp(1j * (rot.heading(later.root_rot) - rot.heading(now.root_rot) - dh)))) < 1e-6
    assert later.root_pos[2] == pytest.approx(now.root_pos[2])  # height is not accumulated
    assert rot.quat_diff_angle(later.joint_rot, now.joint_rot).max() < 1e-9
    # the start of each cycle is exactly the end of the previous one
    end, start = clip.sample(2 * clip.duration - 1e-9), clip.sample(2 * clip.duration)
    np.testing.assert_allclose(end.root_pos, start.root_pos, atol=1e-6)
    if motion == "trot":  # a straight gait: one cycle later the root is one displacement further
        shift = (clip.root_pos[-1] - clip.root_pos[0]) * [1, 1, 0]
        np.testing.assert_allclose(later.root_pos - now.root_pos, shift, atol=1e-6)
    else:
        assert abs(dh) > 2.9  # the turning loop turns ~2.975 rad per cycle


def test_velocities_are_the_derivative_of_sampled_kinematics():
    """Body velocities from the clip's velocities match finite differences of forward kinematics."""
    char = load_character("humanoid")
    clip = load_clip("humanoid", "cartwheel")
    t, h = 0.52, 1e-5
    pose = clip.sample(t)
    pos, body_rot = forward_kinematics(char, pose.root_pos, pose.root_rot, pose.joint_rot)
    lin, ang = body_velocities(char, pose, pos, body_rot)
    ahead = clip.sample(t + h, velocities=False)
    pos2, rot2 = forward_kinematics(char, ahead.root_pos, ahead.root_rot, ahead.joint_rot)
    np.testing.assert_allclose(lin, (pos2 - pos) / h, atol=1e-3)
    np.testing.assert_allclose(ang, rot.angular_velocity_world(body_rot, rot2, h), atol=1e-3)


@pytest.mark.parametrize("character,motion", [("humanoid", "spinkick"), ("dog", "canter")])
def test_forward_kinematics_agrees_with_pybullet(character, motion):
    char = load_character(character)
    clip = load_clip(character, motion)
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(char.urdf_path), physicsClientId=client)
        for t in (0.0, 0.21, 0.4):
            pose = clip.sample(t)
            apply_pose(client, body, char, pose)
            pos, body_rot = forward_kinematics(char, pose.root_pos, pose.root_rot, pose.joint_rot)
            lin, ang = body_velocities(char, pose, pos, body_rot)
            states = pybullet.getLinkStates(body, range(char.num_joints - 1), computeLinkVelocity=1,
                                            computeForwardKinematics=1, physicsClientId=client)
            np.testing.assert_allclose([s[4] for s in states], pos[1:], atol=1e-6)
            assert rot.quat_diff_angle(np.array([s[5] for s in states]), body_rot[1:]).max() < 1e-6
            np.testing.assert_allclose([s[7] for s in states], ang[1:], atol=1e-6)
    finally:
        pybullet.disconnect(client)


@pytest.mark.parametrize("character,motion", [("humanoid", "cartwheel"), ("dog", "turn")])
def test_body_kinematics_matches_the_per_function_path(character, motion):
    """The one-pass kinematics of the reference track: same as forward_kinematics + body velocities, batched or not."""
    from charctl.character.kinematics import body_com_positions, body_com_velocities, body_kinematics

    char, clip = load_character(character), load_clip(character, motion)
    for t in (0.37, np.array([0.0, 0.37, 1.9, 5.3])):
        pose = clip.sample(t)
        pos, body_rot = forward_kinematics(char, pose.root_pos, pose.root_rot, pose.joint_rot)
        lin, ang = body_velocities(char, pose, pos, body_rot)
        body = body_kinematics(char, pose)
        np.testing.assert_allclose(body.joint_pos, pos, atol=1e-12)
        np.testing.assert_allclose(body.body_rot, rot.quat_to_matrix(body_rot), atol=1e-12)
        np.testing.assert_allclose(body.com_pos, body_com_positions(char, pos, body_rot), atol=1e-12)
        np.testing.assert_allclose(body.ang_vel, ang, atol=1e-12)
        np.testing.assert_allclose(body.com_vel, body_com_velocities(char, pos, body_rot, lin, ang), atol=1e-12)
