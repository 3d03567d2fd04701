"""Where closed fingers can push a part, decided on the object's points alone.

The expert uses it on the live scene; the catalog uses it on the object at its initial pose
(no simulation), so that push tasks start from states where the push is possible.
"""

from __future__ import annotations

import numpy as np

from sims.core.rotations import mat_to_quat, rot_z
from sims.core.types import ObjectAsset
from sims.objects.kinematics import body_transforms
from sims.partmanip.grasp import HAND_ABOVE_TCP, HAND_HALF, PAD_BELOW_TCP
from sims.partmanip.predicates import Snapshot

TOUCH_MIN_Z = 0.015  # fingertips stay above the table when pushing low parts
FINGER_LANE = 0.014  # m: half-width of the closed finger pair across a push
FINGER_LENGTH = 0.05  # m from the fingertips to the hand
BLOCK_SLACK = 0.004  # m: a point of the object this little before a contact does not block it
PUSH_HEIGHT = 0.03  # preferred contact height for a push (low: the object does not tip)
HAND_LENGTH = 0.06  # m: the hand's body above HAND_ABOVE_TCP, up to the wrist flange
FINGER_HALF = 0.011  # m: closed finger pair, half its thickness along the push direction
PRE_TOUCH = 0.05  # m: a push starts this far behind its contact point


def push_contact(snap, part: str, d: np.ndarray, slack: np.ndarray | float = BLOCK_SLACK,
                 hand_tilt: float | None = None, keep: np.ndarray | None = None) -> np.ndarray | None:
    """Where closed fingers moving along `d` can first touch `part`: a point of the part whose
    surface faces them, with no other point of the object in the fingers' lane before it (else
    they would hit that first). Prefers low points (the object does not tip) near the line
    through the object's centre (it does not turn). `slack`: how far (m, one for every point of
    the object, or per point) a point may lie before the contact without blocking it.
    With `hand_tilt` (rad, fingertips leading), the hand above the fingers must not meet the
    object either on its way to the contact: it is far wider than the fingers (a pot's rim
    overhanging its low side stops the hand short of the wall). `keep`: a mask over the part's
    points, those that may be the contact."""
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    cloud = snap.object_points()
    centre = cloud.mean(axis=0)
    lateral = np.cross([0.0, 0.0, 1.0], d)
    ok = (nrm @ -d > 0.5) & (pts[:, 2] > TOUCH_MIN_Z)
    if keep is not None:
        ok &= keep
    cand = pts[ok][:: max(1, int(ok.sum()) // 200)]
    if len(cand) == 0:
        return None
    # every candidate at once: (candidates, cloud) lane and behind-the-contact tests
    tip = np.maximum(cand[:, 2], TOUCH_MIN_Z) - 0.005
    across = np.abs((cloud @ lateral)[None, :] - (cand @ lateral)[:, None]) < FINGER_LANE
    height = (cloud[None, :, 2] > tip[:, None]) & (cloud[None, :, 2] < tip[:, None] + FINGER_LENGTH)
    before = (cloud @ d)[None, :] - (cand @ d)[:, None] < -np.broadcast_to(slack, len(cloud))[None, :]
    blocked = across & height & before
    if hand_tilt is not None:
        blocked |= hits_hand(cloud, cand, d, lateral, tip, hand_tilt)
    free = ~np.any(blocked, axis=1)
    if not free.any():
        return None
    score = np.abs((cand - centre) @ lateral) + np.abs(cand[:, 2] - PUSH_HEIGHT)
    score[~free] = np.inf
    return cand[int(np.argmin(score))]


def hits_hand(cloud, cand, d, lateral, tip, tilt: float) -> np.ndarray:
    """(candidates, cloud): the point lies in the hand's path to a contact at the candidate,
    the hand leaning back by `tilt` from the fingertips (its box in the hand's own frame)."""
    axis = -np.sin(tilt) * d + np.cos(tilt) * np.array([0.0, 0.0, 1.0])  # tips -> wrist
    front = np.cos(tilt) * d + np.sin(tilt) * np.array([0.0, 0.0, 1.0])  # the hand's face
    base = cand - d * FINGER_HALF
    base = np.concatenate([base[:, :2], tip[:, None]], axis=1)
    up, ahead, side = ((cloud @ e)[None, :] - (base @ e)[:, None] for e in (axis, front, lateral))
    bottom = PAD_BELOW_TCP + HAND_ABOVE_TCP
    return ((up > bottom) & (up < bottom + HAND_LENGTH) & (np.abs(side) < HAND_HALF[0])
            & (ahead < HAND_HALF[1]) & (ahead > -HAND_HALF[1] - PRE_TOUCH))


def resting_snapshot(asset: ObjectAsset, pos, yaw: float) -> Snapshot:
    """The object at rest, joints at zero, placed at `pos` turned by `yaw` (no contacts)."""
    place = np.eye(4)
    place[:3, :3], place[:3, 3] = rot_z(yaw), pos
    poses = {}
    for body, tf in body_transforms(asset).items():
        world = place @ tf
        poses[body] = (world[:3, 3], mat_to_quat(world[:3, :3]))
    return Snapshot(asset, poses)
