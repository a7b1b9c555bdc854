"""The one place for rotation math. Quaternions are xyzw (scipy and PyBullet order); arrays may be batched.

Most functions go through scipy.spatial.transform.Rotation. The quaternion product, rotation, matrix,
exp/log maps, difference angle and heading frame are plain numpy: the environment calls them every step on
small batches, where building Rotation objects (or numpy calls per component) cost more than the
arithmetic (tests check them against scipy).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

# The world is z-up and DeepMimic's (and BVH's) frames are y-up: a standing character's root carries this turn.
Y_UP_TO_Z_UP = Rotation.from_euler("x", 90, degrees=True)
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a), broadcasting over leading dimensions."""
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(np.shape(a), np.shape(b)))
    out[..., 0] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 1] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 2] = aw * bz + ax * by - ay * bx + az * bw
    out[..., 3] = aw * bw - ax * bx - ay * by - az * bz
    return out


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): v + 2w(u x v) + 2u x (u x v), written out."""
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx, ty, tz = 2.0 * (y * vz - z * vy), 2.0 * (z * vx - x * vz), 2.0 * (x * vy - y * vx)
    out = np.empty(np.broadcast_shapes(np.shape(q)[:-1], np.shape(v)[:-1]) + (3,))
    out[..., 0] = vx + w * tx + y * tz - z * ty
    out[..., 1] = vy + w * ty + z * tx - x * tz
    out[..., 2] = vz + w * tz + x * ty - y * tx
    return out


def normalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def canonical(q: np.ndarray) -> np.ndarray:
    """The representative with w >= 0 (q and -q are the same rotation)."""
    return np.where(q[..., 3:] < 0, -q, q)


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    """Exponential map: axis * angle (..., 3) -> quaternion (..., 4). Plain numpy: called per env step."""
    v = np.asarray(v, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a, with its Taylor series near 0 where the division loses precision
    small = angle < 1e-6
    scale = np.where(small, 0.5 - angle * angle / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """Logarithm map: quaternion -> axis * angle with angle in [0, pi]. Plain numpy: called per env step."""
    q = canonical(np.asarray(q, dtype=np.float64))
    xyz, w = q[..., :3], q[..., 3:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, w)
    small = s < 1e-6
    scale = np.where(small, 2.0 / np.where(small, w, 1.0) * (1.0 - s * s / (3.0 * w * w + 1e-300)),
                     angle / np.where(small, 1.0, s))
    return xyz * scale



def quat_diff_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle of the rotation taking a to b: the w of conj(a) * b is the 4D dot product a . b."""
    cos = np.abs((a * b).sum(axis=-1)) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    return 2.0 * np.arccos(np.minimum(cos, 1.0))


def slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation from q0 (w = 0) to q1 (w = 1), elementwise over leading dimensions."""
    w = np.asarray(w, dtype=np.float64)
    rel = rotvec_from_quat(quat_mul(quat_conj(q0), q1))
    return quat_mul(q0, quat_from_rotvec(rel * w[..., None]))


def angular_velocity_world(q0: np.ndarray, q1: np.ndarray, dt: float) -> np.ndarray:
    """Angular velocity in the world frame turning q0 into q1 in dt."""
    return rotvec_from_quat(quat_mul(q1, quat_conj(q0))) / dt


def angular_velocity_local(q0: np.ndarray, q1: np.ndarray, dt: float) -> np.ndarray:
    """Angular velocity in the rotating (child) frame turning q0 into q1 in dt."""
    return rotvec_from_quat(quat_mul(quat_conj(q0), q1)) / dt


def heading(q: np.ndarray) -> np.ndarray:
    """Heading angle about the world z axis: direction of the rotated +x axis projected on the ground."""
    forward = quat_rotate(q, np.broadcast_to([1.0, 0.0, 0.0], np.shape(q)[:-1] + (3,)))
    return np.arctan2(forward[..., 1], forward[..., 0])


def z_rotation(angle: np.ndarray | float) -> np.ndarray:
    """Quaternion of a rotation by `angle` about the world z axis."""
    half = 0.5 * np.asarray(angle, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([zeros, zeros, np.sin(half), np.cos(half)], axis=-1)


def _matrix_form(q: np.ndarray) -> np.ndarray:
    """The rotation matrix of a unit quaternion written as a homogeneous quadratic form in it, flattened (9,)."""
    x, y, z, w = q
    return np.array([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z])


def _quadratic_coefficients() -> np.ndarray:
    """C (16, 9) with matrix(q).flat = (q outer q).flat @ C, by polarising the quadratic form."""
    basis = np.eye(4)
    coefficients = np.empty((4, 4, 9))
    for a in range(4):
        for b in range(4):
            both = _matrix_form(basis[a] + basis[b]) - _matrix_form(basis[a]) - _matrix_form(basis[b])
            coefficients[a, b] = 0.5 * both if a != b else _matrix_form(basis[a])
    return coefficients.reshape(16, 9)


_QUADRATIC = _quadratic_coefficients()


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4): one outer product and one matrix product,
    a few times faster than writing out the nine entries on the small arrays of an env step."""
    batch = np.shape(q)[:-1]
    outer = (q[..., :, None] * q[..., None, :]).reshape(batch + (16,))
    return (outer @ _QUADRATIC).reshape(batch + (3, 3))


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) of rotation matrices (..., 3, 3)."""
    m = np.asarray(m, dtype=np.float64)
    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat().reshape(m.shape[:-2] + (4,))


def heading_matrix(q: np.ndarray) -> np.ndarray:
    """Matrix (..., 3, 3) taking the world into q's heading frame: heading_inverse(q) without trigonometry."""
    if np.ndim(q) == 1:  # one state per env step: Python floats beat numpy's per-call cost here
        x, y, z, w = q.tolist()
        c, s = _unit_or_x(1 - 2 * (y * y + z * z), 2 * (x * y + w * z))  # the rotated +x axis, as in `heading`
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    fx, fy = 1 - 2 * (y * y + z * z), 2 * (x * y + w * z)
    norm = np.hypot(fx, fy)
    flat = norm == 0.0  # pointing straight up or down: heading 0, as atan2(0, 0)
    c = np.where(flat, 1.0, fx / np.where(flat, 1.0, norm))
    s = np.where(flat, 0.0, fy / np.where(flat, 1.0, norm))
    out = np.zeros(np.shape(q)[:-1] + (3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, s, -s, c, 1.0
    return out


def _unit_or_x(fx: float, fy: float) -> tuple[float, float]:
    norm = math.hypot(fx, fy)
    return (fx / norm, fy / norm) if norm > 0.0 else (1.0, 0.0)


def heading_inverse(q: np.ndarray) -> np.ndarray:
    """Rotation that takes the world into q's heading frame (removes the heading, keeps tilt)."""
    return z_rotation(-heading(q))




def quat_from_euler(seq: str, angles_deg: np.ndarray) -> np.ndarray:
    """BVH-style Euler angles in degrees, `seq` uppercase for intrinsic rotations (e.g. 'ZYX')."""
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    return Rotation.from_euler(seq, angles_deg.reshape(-1, len(seq)), degrees=True).as_quat().reshape(
        angles_deg.shape[:-1] + (4,))


def euler_from_quat(seq: str, q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4)).as_euler(seq, degrees=True).reshape(q.shape[:-1] + (len(seq),))


def apply_y_up_to_z_up(pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root position and rotation from a y-up world (DeepMimic, BVH) into charctl's z-up world."""
    up = Y_UP_TO_Z_UP.as_quat()
    return quat_rotate(up, pos), quat_mul(up, rot)


def apply_z_up_to_y_up(pos: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    down = Y_UP_TO_Z_UP.inv().as_quat()
    return quat_rotate(down, pos), quat_mul(down, rot)
