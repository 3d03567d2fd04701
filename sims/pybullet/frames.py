"""Pose helpers between PyBullet's conventions (quaternions xyzw, bodies placed by their base's
centre of mass) and ours (quaternions wxyz, bodies placed by their link frame)."""

from __future__ import annotations

import numpy as np

from sims.core.rotations import mat_to_quat, quat_to_mat


def wxyz_to_xyzw(q) -> tuple[float, float, float, float]:
    w, x, y, z = (float(v) for v in q)
    return (x, y, z, w)


def xyzw_to_wxyz(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([w, x, y, z], float)


def compose(pos_a, rot_a, pos_b, rot_b) -> tuple[np.ndarray, np.ndarray]:
    """Pose a * pose b, rotations as (3, 3) matrices."""
    rot_a = np.asarray(rot_a, float)
    return np.asarray(pos_a, float) + rot_a @ np.asarray(pos_b, float), rot_a @ np.asarray(rot_b, float)


def invert(pos, rot) -> tuple[np.ndarray, np.ndarray]:
    rot = np.asarray(rot, float)
    return -rot.T @ np.asarray(pos, float), rot.T


def mat_from_xyzw(q) -> np.ndarray:
    return quat_to_mat(xyzw_to_wxyz(q))


def xyzw_from_mat(rot) -> tuple[float, float, float, float]:
    return wxyz_to_xyzw(mat_to_quat(np.asarray(rot, float)))
