"""Where closed fingers can push a part, decided on the object's points alone.

The expert uses it on the live scene; the catalog uses it on the object at its initial pose
(no simulation), so that push tasks start from states where the push is possible.
"""

from __future__ import annotations

import numpy as np

from sims.core.rotations import mat_to_quat, rot_z
from sims.core.types import ObjectAsset
from sims.objects.kinematics import body_transforms
from sims.partmanip.predicates import Snapshot

TOUCH_MIN_Z = 0.015  # fingertips stay above the table when pushing low parts
FINGER_LANE = 0.014  # m: half-width of the closed finger pair across a push
FINGER_LENGTH = 0.05  # m from the fingertips to the hand
BLOCK_SLACK = 0.004  # m: a point of the object this little before a contact does not block it
PUSH_HEIGHT = 0.03  # preferred contact height for a push (low: the object does not tip)


def push_contact(snap, part: str, d: np.ndarray,
                 slack: np.ndarray | float = BLOCK_SLACK) -> np.ndarray | None:
    """Where closed fingers moving along `d` can first touch `part`: a point of the part whose
    surface faces them, with no other point of the object in the fingers' lane before it (else
    they would hit that first). Prefers low points (the object does not tip) near the line
    through the object's centre (it does not turn). `slack`: how far (m, one for every point of
    the object, or per point) a point may lie before the contact without blocking it."""
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    cloud = snap.object_points()
    centre = cloud.mean(axis=0)
    lateral = np.cross([0.0, 0.0, 1.0], d)
    ok = (nrm @ -d > 0.5) & (pts[:, 2] > TOUCH_MIN_Z)
    cand = pts[ok][:: max(1, int(ok.sum()) // 200)]
    if len(cand) == 0:
        return None
    # every candidate at once: (candidates, cloud) lane and behind-the-contact tests
    tip = np.maximum(cand[:, 2], TOUCH_MIN_Z) - 0.005
    across = np.abs((cloud @ lateral)[None, :] - (cand @ lateral)[:, None]) < FINGER_LANE
    height = (cloud[None, :, 2] > tip[:, None]) & (cloud[None, :, 2] < tip[:, None] + FINGER_LENGTH)
    before = (cloud @ d)[None, :] - (cand @ d)[:, None] < -np.broadcast_to(slack, len(cloud))[None, :]
    free = ~np.any(across & height & before, axis=1)
    if not free.any():
        return None
    score = np.abs((cand - centre) @ lateral) + np.abs(cand[:, 2] - PUSH_HEIGHT)
    score[~free] = np.inf
    return cand[int(np.argmin(score))]


def resting_snapshot(asset: ObjectAsset, pos, yaw: float) -> Snapshot:
    """The object at rest, joints at zero, placed at `pos` turned by `yaw` (no contacts)."""
    place = np.eye(4)
    place[:3, :3], place[:3, 3] = rot_z(yaw), pos
    poses = {}
    for body, tf in body_transforms(asset).items():
        world = place @ tf
        poses[body] = (world[:3, 3], mat_to_quat(world[:3, :3]))
    return Snapshot(asset, poses)
