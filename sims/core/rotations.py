"""Rotation conversions. Quaternions are (w, x, y, z), MuJoCo's order, everywhere in `sims`.

rot6d is the first two columns of the rotation matrix, concatenated: ``[R[:, 0], R[:, 1]]``
(Zhou et al., "On the continuity of rotation representations"). All functions accept a
leading batch shape.
"""

from __future__ import annotations

import numpy as np


def quat_to_mat(quat_wxyz: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz quaternion -> (..., 3, 3) rotation matrix (the quaternion is normalized)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrix -> (..., 4) wxyz quaternion with w >= 0."""
    m = np.asarray(mat, dtype=np.float64)
    batch = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    out = np.empty((m.shape[0], 4))
    for i, r in enumerate(m):
        t = np.trace(r)
        if t > 0:
            s = np.sqrt(t + 1.0) * 2
            out[i] = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            out[i] = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif r[1, 1] > r[2, 2]:
            s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            out[i] = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
        else:
            s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            out[i] = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    out *= np.where(out[:, :1] < 0, -1.0, 1.0)
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    return out.reshape(batch + (4,))


def mat_to_rot6d(mat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): first column then second column."""
    m = np.asarray(mat)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rot6d_to_mat(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; tolerant of non-orthonormal input (e.g. a policy's)."""
    r = np.asarray(rot6d, dtype=np.float64)
    a1, a2 = r[..., :3], r[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-9)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-9)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def yaw_quat(yaw: float) -> np.ndarray:
    """wxyz quaternion of a rotation by `yaw` radians about +z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def rot_z(yaw: float) -> np.ndarray:
    """3x3 rotation about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_angle(mat_a: np.ndarray, mat_b: np.ndarray) -> float:
    """Angle in radians of the relative rotation between two 3x3 matrices."""
    cos = (np.trace(mat_a.T @ mat_b) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))
