"""Forward kinematics of an ObjectAsset's body tree (joints at given positions), so part
point clouds can be posed without a simulator."""

from __future__ import annotations

import numpy as np

from sims.core.rotations import quat_to_mat
from sims.core.types import ObjectAsset


def _axis_angle(axis, angle: float) -> np.ndarray:
    x, y, z = np.asarray(axis, float) / np.linalg.norm(axis)
    c, s = np.cos(angle), np.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * k + (1 - c) * k @ k


def body_transforms(asset: ObjectAsset, joint_pos: dict[str, float] | None = None
                    ) -> dict[str, np.ndarray]:
    """4x4 pose of every body in the object frame, joints at `joint_pos` (default 0)."""
    joint_pos = joint_pos or {}
    out: dict[str, np.ndarray] = {}
    pending = list(asset.bodies)
    while pending:
        progressed = False
        for b in list(pending):
            if b.parent is not None and b.parent not in out:
                continue
            tf = np.eye(4)
            tf[:3, :3] = quat_to_mat(np.asarray(b.quat))
            tf[:3, 3] = b.pos
            if b.joint is not None:
                q = float(joint_pos.get(b.joint.name, 0.0))
                move = np.eye(4)
                if b.joint.type == "hinge":
                    move[:3, :3] = _axis_angle(b.joint.axis, q)
                else:
                    move[:3, 3] = np.asarray(b.joint.axis) * q
                tf = tf @ move
            out[b.name] = tf if b.parent is None else out[b.parent] @ tf
            pending.remove(b)
            progressed = True
        if not progressed:
            raise ValueError(f"object {asset.name}: bodies {[b.name for b in pending]} have no "
                             "valid parent")
    return out


def object_points(asset: ObjectAsset, joint_pos: dict[str, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """All part points and normals in the object frame, each point's part index, and the
    part names those indices refer to."""
    tfs = body_transforms(asset, joint_pos)
    names = list(asset.parts)
    pts, nrm, idx = [], [], []
    poses = {b: (tf[:3, 3], tf[:3, :3]) for b, tf in tfs.items()}
    for i, name in enumerate(names):
        p, n = asset.parts[name].posed(poses)
        pts.append(p)
        nrm.append(n)
        idx.append(np.full(len(p), i))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(idx), names
