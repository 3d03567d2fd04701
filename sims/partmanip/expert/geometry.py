"""Geometry the skill planners share: where closed fingers can push or touch a part, how far
a push's hand may lean, and which of two equivalent hand poses joint 7 can reach."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sims.core.directions import DIRECTIONS
from sims.core.rotations import quat_to_mat
from sims.objects.spatial import spatial_part_masks
from sims.partmanip.classes import HORIZONTAL, MOVE_DISTANCE
from sims.partmanip.expert.params import ExpertParams
from sims.partmanip.grasp import HAND_HALF
from sims.partmanip.push import (
    BLOCK_SLACK,
    FINGER_HALF,
    FINGER_LANE,
    FINGER_LENGTH,
    PRE_TOUCH,
    TOUCH_MIN_Z,
    push_contact,
)

HOME_CLOSING_AXIS = np.array([0.0, -1.0, 0.0])  # the fingers' closing axis at the home pose
DEFAULT = ExpertParams()


def base_frame(snap) -> tuple[np.ndarray, np.ndarray]:
    """The object's base body pose in the world: position and rotation matrix."""
    pos, quat = snap.body_poses["base"]
    return pos, quat_to_mat(quat)


def within_wrist(mat: np.ndarray, hand_mat: np.ndarray, q7: float, either_way: bool = False,
                 nearest: bool = False, params: ExpertParams = DEFAULT) -> np.ndarray:
    """A hand rotation `mat` (top-down, or a push's tilted one), unless turning there the short
    way from `hand_mat` takes joint 7 (now at `q7`) past `wrist_limit`: then whichever of it and
    the same hand closing the other way round (the fingers swapped) leaves joint 7 nearer the
    middle of its range. `either_way`: a turn within `half_turn_slack` of a half turn may go
    either way round, so `mat` is kept if one way stays in range (a push back from home's pose:
    which way is shorter is down to rounding there). `nearest`: of the two, the one the hand
    turns to the least, if it keeps joint 7 in range (closed fingers coming down on a part
    touch it alike either way round)."""
    flipped = mat @ np.diag([-1.0, -1.0, 1.0])
    limit = params.wrist_limit

    def q7_after(m: np.ndarray) -> float:
        a, b = hand_mat[:2, 1], m[:2, 1]
        yaw = float(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b))
        if either_way and abs(yaw) > np.pi - params.half_turn_slack:
            return min(q7 - yaw, q7 - yaw + np.copysign(2 * np.pi, yaw), key=abs)
        return q7 - yaw  # turning the hand by +yaw about world z turns joint 7 by about -yaw

    if nearest:
        ok = [m for m in (mat, flipped) if abs(q7_after(m)) <= limit]
        if ok:
            return min(ok, key=lambda m: Rotation.from_matrix(hand_mat.T @ m).magnitude())
    if abs(q7_after(mat)) <= limit:
        return mat
    return min((mat, flipped), key=lambda m: abs(q7_after(m)))


def push_tilt(tcp: np.ndarray, d: np.ndarray, params: ExpertParams = DEFAULT) -> float:
    """The push's tilt: `push_tilt`, less where the wrist trailing behind the fingertips would
    pass out of the arm's reach at the push's start or end (a far object pushed towards the
    robot), down to upright."""
    ends = np.stack([tcp - d * PRE_TOUCH, tcp + d * (MOVE_DISTANCE + params.push_overshoot)])[:, :2]
    for tilt in np.linspace(params.push_tilt, 0.0, params.push_tilt_steps):
        wrist = ends - d[:2] * params.wrist_behind_tcp * np.sin(tilt)
        if np.linalg.norm(wrist, axis=1).max() <= params.wrist_reach:
            return float(tilt)
    return 0.0


def top_touch(snap, part: str, params: ExpertParams = DEFAULT) -> tuple[np.ndarray, np.ndarray] | None:
    """Where closed fingers coming straight down can touch `part`, and the closing axis of the
    hand doing it: the upward-facing point of the part nearest its middle with nothing above
    it in the fingers' lane (a kettle's top handle) nor in the hand's footprint higher up (a
    display's screen above its base). Home's closing axis is tried first, then across it."""
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    top = pts[nrm[:, 2] > params.top_normal_z]
    if len(top) == 0:
        return None
    top = top[:: max(1, len(top) // 300)]  # (a subsample: the tests below are pairwise)
    cloud = snap.object_points()[::2]
    rel = cloud[None, :, :] - top[:, None, :]  # (top points, cloud, 3)
    fingers = (np.linalg.norm(rel[..., :2], axis=2) < FINGER_LANE) & (rel[..., 2] > params.top_lane_clearance)
    for closing in (HOME_CLOSING_AXIS, np.array([1.0, 0.0, 0.0]), None):
        if closing is None:  # nothing clear of the hand: the fingers' lane alone (the hand may graze)
            closing, hand = HOME_CLOSING_AXIS, False
        else:
            along, across = np.abs(rel[..., :2] @ closing[:2]), np.abs(rel[..., :2] @ closing[[1, 0]])
            hand = ((along < HAND_HALF[0]) & (across < HAND_HALF[1])
                    & (rel[..., 2] > FINGER_LENGTH - params.top_lane_clearance))
        free = ~np.any(fingers | hand, axis=1)
        if free.any():
            cand = top[free]
            return cand[np.argmin(np.linalg.norm((cand - top.mean(axis=0))[:, :2], axis=1))], closing
    return None


def descent_clear(cloud: np.ndarray, pts: np.ndarray, d: np.ndarray, lateral: np.ndarray,
                  params: ExpertParams = DEFAULT) -> np.ndarray:
    """A mask over contact points `pts` (n, 3): a push on the point begins where the hand,
    coming straight down (fingertips to the push's height, as `push_contact` places them),
    meets no point of the object `cloud` on its way: none above the fingertips under the
    closed fingers, none above the fingers under the hand, whose footprint reaches
    `descent_behind` further back when it trails tilted."""
    cloud = cloud[::2].astype(np.float32)
    a, b, z = cloud @ d.astype(np.float32), cloud @ lateral.astype(np.float32), cloud[:, 2]
    tip = np.maximum(pts[:, 2], TOUCH_MIN_Z) - 0.005
    start = pts @ d - (FINGER_HALF + PRE_TOUCH)
    side = pts @ lateral
    out = np.empty(len(pts), bool)
    for i in range(0, len(pts), 256):  # in chunks: (points, cloud) pairs run into the millions
        k = slice(i, i + 256)
        ahead = a[None, :] - start[k, None]
        across = np.abs(b[None, :] - side[k, None])
        above = z[None, :] - tip[k, None]
        fingers = (across < FINGER_LANE) & (np.abs(ahead) < FINGER_HALF) & (above > 0.0)
        hand = ((across < HAND_HALF[0]) & (ahead < HAND_HALF[1])
                & (ahead > -HAND_HALF[1] - params.descent_behind) & (above > FINGER_LENGTH))
        out[k] = ~np.any(fingers | hand, axis=1)
    return out


def push_point(snap, part: str, d: np.ndarray, avoid: np.ndarray | None = None,
               hand_clear: bool = False, params: ExpertParams = DEFAULT) -> np.ndarray | None:
    """Where closed fingers moving along `d` can push `part`: `push_contact`'s choice, except
    that points of the touched part itself block the fingers' lane only when they lie more
    than `own_slack` before the contact. Meeting the part a little earlier than the aimed-at
    point still touches it, so this finds a low, central contact on a part whose side is
    slanted to the push (a yawed stapler's lid, where the top edge is the only strictly free
    point and pushing there tips the object over) and after the object has moved or tipped,
    where the strict test finds none. A hollow part's inner wall, behind its own far wall,
    stays out of reach (a pot pushed from inside would bring the hand down onto its rim)
    unless no other contact is left. Contacts the hand reaches without meeting the object (see
    `push_contact`'s `hand_tilt`) come first: a pot's overhanging rim stops the hand short.
    `avoid` (world points, where earlier fingers met the wrong part): a contact whose lane
    passes within `avoid_lane` of none, if there is one; `hand_clear`: contacts the hand
    reaches clear of the object before any other."""
    cloud = snap.object_points()
    if part in snap.asset.parts:
        mine = np.concatenate([np.full(len(snap.part_points(n)), n == part) for n in snap.asset.parts])
    else:  # a spatial part: its share of the object's cloud
        mine = spatial_part_masks(cloud)[part]
    tilt = push_tilt(cloud.mean(axis=0), d, params)
    lateral = np.cross([0.0, 0.0, 1.0], d)
    passes = [None]
    if avoid is not None and len(avoid):  # clear of them if it can be, else as before
        pts = snap.part_points(part)
        passes.insert(0, np.all(np.abs((pts @ lateral)[:, None] - (avoid @ lateral)[None, :]) >= params.avoid_lane,
                                axis=1))
    # then the part's own points never block; the hand clear of the object too, if it can be
    tries = [(keep, own, hand) for keep in passes for own in (params.own_slack, np.inf) for hand in (tilt, None)]
    if hand_clear:  # every try with the hand clear before any without (a stable sort)
        tries.sort(key=lambda t: t[2] is None)

    def first(only: np.ndarray | None = None) -> np.ndarray | None:
        """The first try's contact, among the part's points flagged `only` if given."""
        for keep, own, hand in tries:
            if only is not None:
                keep = only if keep is None else keep & only
            p = push_contact(snap, part, d, slack=np.where(mine, own, BLOCK_SLACK), hand_tilt=hand, keep=keep)
            if p is not None:
                return p
        return None

    found = first()
    if found is None or descent_clear(cloud, found[None], d, lateral, params)[0]:
        return found
    # the hand coming down to where that push starts would land on the object (a pot's handle
    # over the wall below it): a contact it reaches clear, if there is one
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    clear = np.zeros(len(pts), bool)
    facing = (nrm @ -d > 0.5) & (pts[:, 2] > TOUCH_MIN_Z)  # the only points push_contact may take
    clear[facing] = descent_clear(cloud, pts[facing], d, lateral, params)
    better = first(clear)
    return found if better is None else better


def push_direction(snap, goal: np.ndarray, part: str, direction: str, params: ExpertParams = DEFAULT) -> str:
    """The direction to push `part` on in, towards `goal` (world, metres): `direction`, unless
    the pushed object has drifted off its line (an off-centre contact turns it as it slides)
    more than `push_drift` and further than it is from the goal along the line; then the
    horizontal direction that brings it back, if the part can be pushed that way."""
    d = DIRECTIONS[direction]
    remaining = (goal - snap.object_pos) * [1.0, 1.0, 0.0]
    across = remaining - (remaining @ d) * d
    if np.linalg.norm(across) <= max(params.push_drift, abs(float(remaining @ d))):
        return direction
    onto = max(HORIZONTAL, key=lambda k: float(DIRECTIONS[k] @ across))
    return onto if push_point(snap, part, DIRECTIONS[onto], params=params) is not None else direction
