"""The numpy quaternion helpers agree with scipy's Rotation."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from charctl.util import rotations as rot


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_mul_rotate_conj_match_scipy(rng):
    a, b = Rotation.random(50, random_state=1), Rotation.random(50, random_state=2)
    v = rng.normal(size=(50, 3))
    np.testing.assert_allclose(rot.canonical(rot.quat_mul(a.as_quat(), b.as_quat())), rot.canonical((a * b).as_quat()),
                               atol=1e-12)
    np.testing.assert_allclose(rot.quat_rotate(a.as_quat(), v), a.apply(v), atol=1e-12)
    np.testing.assert_allclose(rot.quat_rotate(rot.quat_conj(a.as_quat()), v), a.inv().apply(v), atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-8, 0.0, 3.14])
def test_exp_and_log_maps_match_scipy(rng, scale):
    v = rng.normal(size=(40, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True) * scale * rng.uniform(0.5, 1.0, size=(40, 1))
    q = rot.quat_from_rotvec(v)
    np.testing.assert_allclose(rot.canonical(q), rot.canonical(Rotation.from_rotvec(v).as_quat()), atol=1e-12)
    np.testing.assert_allclose(rot.rotvec_from_quat(q), Rotation.from_quat(q).as_rotvec(), atol=1e-10)
    np.testing.assert_allclose(rot.rotvec_from_quat(-q), v, atol=1e-10)  # both signs of a quaternion


def test_slerp_halfway_and_heading():
    a = Rotation.from_euler("z", 10, degrees=True).as_quat()
    b = Rotation.from_euler("z", 50, degrees=True).as_quat()
    mid = rot.slerp(a, b, 0.5)
    assert rot.heading(mid) == pytest.approx(np.radians(30))
    standing = (Rotation.from_euler("z", 1.0) * rot.Y_UP_TO_Z_UP).as_quat()
    assert rot.heading(standing) == pytest.approx(1.0)
    assert rot.heading(rot.quat_mul(rot.heading_inverse(standing), standing)) == pytest.approx(0.0, abs=1e-12)


def test_matrices_heading_frame_and_difference_angle():
    q = Rotation.random(30, random_state=4).as_quat()
    np.testing.assert_allclose(rot.quat_to_matrix(q), Rotation.from_quat(q).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(q[0]), Rotation.from_quat(q[0]).as_matrix(), atol=1e-12)
    assert np.all(rot.quat_diff_angle(rot.quat_from_matrix(rot.quat_to_matrix(q)), q) < 1e-7)
    expected = rot.quat_to_matrix(rot.heading_inverse(q))
    np.testing.assert_allclose(rot.heading_matrix(q), expected, atol=1e-12)
    np.testing.assert_allclose(np.stack([rot.heading_matrix(x) for x in q]), expected, atol=1e-12)
    upright = Rotation.from_euler("y", 90, degrees=True).as_quat()  # +x points straight down: heading 0
    np.testing.assert_allclose(rot.heading_matrix(upright), np.eye(3), atol=1e-12)
    a, b = Rotation.random(20, random_state=5), Rotation.random(20, random_state=6)
    np.testing.assert_allclose(rot.quat_diff_angle(a.as_quat(), -b.as_quat()), (a.inv() * b).magnitude(), atol=1e-7)
