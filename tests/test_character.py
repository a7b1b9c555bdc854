"""Characters are data: URDF + YAML load into PyBullet with the DoF counts the project promises."""

import shutil

import numpy as np
import pybullet
import pytest

from charctl.character.model import load_character
from charctl.cli import main
from charctl.util.errors import CharctlError
from charctl.util.paths import CHARACTERS_DIR, CONFIGS_DIR

EXPECTED = {"humanoid": (15, 34, 28, 45.0), "dog": (29, 82, 76, 29.25)}
PYBULLET_DOF = {pybullet.JOINT_SPHERICAL: 3, pybullet.JOINT_REVOLUTE: 1, pybullet.JOINT_FIXED: 0}


@pytest.fixture(scope="module")
def bullet():
    client = pybullet.connect(pybullet.DIRECT)
    yield client
    pybullet.disconnect(client)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pybullet_reports_the_promised_dof(bullet, name):
    bodies, dof, action_size, mass = EXPECTED[name]
    character = load_character(name)
    body = pybullet.loadURDF(str(character.urdf_path), physicsClientId=bullet)
    n = pybullet.getNumJoints(body, physicsClientId=bullet)
    infos = [pybullet.getJointInfo(body, i, physicsClientId=bullet) for i in range(n)]
    # 6 for the floating base plus each joint's velocity DoF, as PyBullet counts them
    assert 6 + sum(PYBULLET_DOF[info[2]] for info in infos) == dof
    assert [info[12].decode() for info in infos] == [j.name for j in character.joints[1:]]
    assert character.num_joints == bodies and character.num_dof == dof and character.action_size == action_size
    masses = [pybullet.getDynamicsInfo(body, i, physicsClientId=bullet)[0] for i in range(-1, n)]
    assert sum(masses) == pytest.approx(mass) == character.total_mass


def test_humanoid_matches_deepmimic_gains_and_limits():
    h = load_character("humanoid")
    chest, knee, wrist = (h.joints[h.joint_index(n)] for n in ("chest", "right_knee", "right_wrist"))
    assert (chest.kp, chest.kd, chest.torque_limit) == (1000, 100, 200)
    assert (knee.kind, knee.kp, knee.kd) == ("revolute", 500, 50)
    np.testing.assert_allclose(knee.limits, [[-3.14, 0.0]])
    assert wrist.kind == "fixed"
    assert [h.joints[i].name for i in h.end_effectors] == ["right_wrist", "left_wrist", "right_ankle", "left_ankle"]
    assert len(h.indices_of("spherical")) == 8 and len(h.indices_of("revolute")) == 4


def test_dog_splits_keep_rest_positions_of_the_original_joints():
    """dog3d's shoulder sits at spine1 + (0.304074, -0.109983, -0.106071); through spine2 and the scapula too."""
    dog = load_character("dog")

    def rest_position(name):
        i, pos = dog.joint_index(name), np.zeros(3)
        while i > 0:
            pos += dog.offsets[i]
            i = dog.parents[i]
        return pos

    np.testing.assert_allclose(rest_position("left_shoulder") - rest_position("spine1"),
                               [0.304074, -0.109983, -0.106071])
    np.testing.assert_allclose(rest_position("neck") - rest_position("spine1"), [0.28135, 0, 0])
    np.testing.assert_allclose(rest_position("head") - rest_position("neck"), [0.175, 0, 0])
    assert len(dog.indices_of("spherical")) == 24 and len(dog.indices_of("revolute")) == 4


def test_a_third_character_is_data_only(tmp_path, bullet):
    """Copy the humanoid's files under a new name: it loads without any code change."""
    for suffix in (".urdf", ".yaml"):
        shutil.copy(CHARACTERS_DIR / f"humanoid{suffix}", tmp_path / f"robot{suffix}")
    text = (tmp_path / "robot.yaml").read_text().replace("urdf: humanoid.urdf", "urdf: robot.urdf")
    (tmp_path / "robot.yaml").write_text(text)
    robot = load_character("robot", directory=tmp_path)
    assert robot.name == "robot" and robot.num_dof == 34


def test_import_character_regenerates_the_shipped_files(tmp_path):
    for name in EXPECTED:
        recipe = CONFIGS_DIR / "characters" / f"{name}.yaml"
        assert main(["import-character", str(recipe), "--out-dir", str(tmp_path)]) == 0
        for suffix in (".urdf", ".yaml"):
            assert (tmp_path / f"{name}{suffix}").read_text() == (CHARACTERS_DIR / f"{name}{suffix}").read_text()


def test_unknown_character_lists_the_known_ones():
    with pytest.raises(CharctlError, match="characters: dog, humanoid"):
        load_character("robot")


def test_bad_yaml_names_the_file_and_joint(tmp_path):
    shutil.copy(CHARACTERS_DIR / "humanoid.urdf", tmp_path / "bad.urdf")
    text = (CHARACTERS_DIR / "humanoid.yaml").read_text().replace("urdf: humanoid.urdf", "urdf: bad.urdf")
    (tmp_path / "bad.yaml").write_text(text.replace("  chest:", "  chestt:", 1))
    with pytest.raises(CharctlError, match=r"bad.yaml: joint 'chestt' is not in bad.urdf"):
        load_character(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_joint_layout_columns_cover_the_action_in_character_order(name):
    from charctl.character.layout import joint_layout

    character = load_character(name)
    layout = joint_layout(character)
    assert layout.action_size == character.action_size
    columns = np.concatenate([layout.ball_columns, layout.hinge_columns])
    assert sorted(columns.tolist()) == list(range(character.action_size))
    assert list(layout.actuated) == sorted(layout.balls + layout.hinges)
    assert all(character.joints[i].kind == "spherical" for i in layout.balls)
    assert all(character.joints[i].kind == "revolute" for i in layout.hinges)
    first_hinge = layout.hinges[0]  # its column follows the 3 of every ball joint before it
    assert layout.hinge_columns[0] == 3 * sum(1 for i in layout.balls if i < first_hinge)


def test_hinge_angle_and_twist_agree_about_the_axis_and_differ_off_it():
    from charctl.character.layout import hinge_angle, hinge_quat, hinge_twist
    from charctl.util import rotations as rot

    axis = np.array([0.0, 0.0, 1.0])
    angles = np.linspace(-3.0, 3.0, 13)
    np.testing.assert_allclose(hinge_angle(hinge_quat(angles, axis), axis), angles, atol=1e-12)
    np.testing.assert_allclose(hinge_twist(hinge_quat(angles, axis), axis), angles, atol=1e-12)
    # a swing off the axis: the twist keeps the turn about the axis, the projection mixes the swing in
    q = rot.quat_mul(rot.quat_from_rotvec(np.array([1.2, 0.0, 0.0])), hinge_quat(0.5, axis))
    assert hinge_twist(q, axis) == pytest.approx(0.5)
    assert abs(hinge_angle(q, axis) - 0.5) > 0.01
