"""Top-down parallel-jaw grasp planning on part point clouds.

A grasp is the TCP pose of a Panda hand pointing straight down. For candidate centres on the
target part and candidate closing directions we "lower" the open fingers onto the object's
points and keep grasps whose closing region holds mostly the target part, whose closing width
fits the gripper, whose two contact regions are antipodal (surface normals along the closing
axis, opposed), and where neither the open fingers nor the hand hit the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Panda hand geometry around the TCP (metres).
PAD_HALF_WIDTH = 0.0105  # finger pads, across the closing direction
PAD_BELOW_TCP = 0.009  # fingertips below the TCP
PAD_HEIGHT = 0.02  # grasping surface of the pads above the fingertips
OPEN_HALF = 0.04  # inner finger faces when open
FINGER_THICK = 0.02
HAND_ABOVE_TCP = 0.045  # hand body starts this far above the TCP
HAND_HALF = (0.105, 0.032)  # hand half-extents along closing / lateral axes
MAX_WIDTH = 0.07  # widest closing region we accept (8 cm opening minus margins)
# TCP this far below the top of the grasped region: the deepest at which the pads still land
# on the part alone (deeper grasps slip less when the object turns or swings)
GRASP_DEPTHS = (0.024, 0.018, 0.012)
# fingertips stay this far above the table: low enough that the pads reach below the widest
# point of a low, rounded part (a scissors ring 2 cm tall), else the squeeze pops it out
TABLE_CLEARANCE = 0.004
FRICTION_CONE = np.cos(np.radians(35.0))  # contact normals within 35 deg of the closing axis
COM_WEIGHT = 1.0  # score per metre of centre-of-mass offset across the closing axis
COM_SLIDE = 0.03  # m: a part centred this near the centre of mass is also grasped through it
CONTACT_BAND = 0.003  # points this close to the outermost ones count as finger contacts


@dataclass(frozen=True)
class Grasp:
    """A planned grasp: TCP position and rotation (world frame), closing width, score."""

    pos: np.ndarray
    mat: np.ndarray
    width: float
    score: float


def topdown_rotation(closing_axis: np.ndarray) -> np.ndarray:
    """TCP rotation pointing down (z = -world z) with the fingers closing along `closing_axis`."""
    y = np.array([closing_axis[0], closing_axis[1], 0.0])
    y /= np.linalg.norm(y)
    z = np.array([0.0, 0.0, -1.0])
    return np.stack([np.cross(y, z), y, z], axis=1)


def plan_topdown_grasp(points: np.ndarray, normals: np.ndarray, is_part: np.ndarray, n_yaw: int = 24,
                       max_centres: int = 64, home_closing_axis=(0.0, -1.0, 0.0),
                       table_z: float = 0.0, rank: int = 0,
                       centre_of_mass: np.ndarray | None = None,
                       body: np.ndarray | None = None) -> Grasp | None:
    """Best top-down grasp on the points flagged `is_part` of an object cloud with outward
    surface `normals` (world frame).

    Grasps score higher near the part's centroid, with a narrow closing width and with contact
    normals aligned to the closing axis; the alignment term makes the chosen yaw a smooth
    function of the part's orientation (not the nearest grid step), which matters for learning
    from the demos. Of the two symmetric closing directions, the one nearest
    `home_closing_axis` (the hand's home orientation) is used, keeping the wrist in range.
    With the object's `centre_of_mass`, grasps whose closing axis points at it score higher:
    an offset across the closing axis makes the lifted object turn about the grasp axis, which
    only the pads' torsional friction resists.
    With per-point `body` labels (articulated objects), the fingers must close on one rigid
    body: squeezing across a joint (both rings of a pair of scissors) folds it out of the grasp.
    `rank` > 0 gives the rank-th best instead, among grasps at least 1.5 cm or 30 deg apart
    (a retry after a grasp slipped); if there are fewer, the last of them.
    """
    part = points[is_part]
    if len(part) == 0:
        return None
    centres = part[:: max(1, len(part) // max_centres)]
    centroid = part.mean(axis=0)
    home = np.asarray(home_closing_axis, float)
    # only for a part around the centre of mass (a mug's body, not a laptop's upright screen)
    slide = centre_of_mass is not None and np.linalg.norm((centroid - centre_of_mass)[:2]) < COM_SLIDE
    found: list[Grasp] = []
    for theta in np.linspace(0.0, np.pi, n_yaw, endpoint=False):
        u = np.array([np.cos(theta), np.sin(theta), 0.0])
        if u @ home < 0:
            u = -u
        v = np.array([-u[1], u[0], 0.0])
        # and the centre of mass itself: a round body is then squeezed across its diameter,
        # not on a chord whose slanted contacts let it slip out as it turns (the candidate
        # centres are surface points, none of them on the axis)
        tries = np.concatenate([centres, centre_of_mass[None]]) if slide else centres
        along, across = points @ u, points @ v
        for c in tries:
            g = _evaluate(points, normals, is_part, c, u, along - c @ u, across - c @ v, table_z, body)
            if g is None:
                continue
            pos, width, alignment = g
            score = (-np.linalg.norm((pos - centroid)[:2]) - 0.5 * width + 0.05 * alignment
                     + 0.001 * (u @ home))
            if centre_of_mass is not None:
                score -= COM_WEIGHT * abs((centre_of_mass - pos) @ v)
            found.append(Grasp(pos, topdown_rotation(u), width, float(score)))
    found.sort(key=lambda g: -g.score)
    distinct: list[Grasp] = []
    for g in found:
        if all(np.linalg.norm(g.pos - h.pos) > 0.015
               or abs(g.mat[:, 1] @ h.mat[:, 1]) < np.cos(np.radians(30.0)) for h in distinct):
            distinct.append(g)
            if len(distinct) > rank:
                break
    return distinct[min(rank, len(distinct) - 1)] if distinct else None


def _evaluate(points, normals, is_part, centre, u, a, b, table_z, body=None):
    """A grasp at `centre` closing along `u` (`a`, `b`: each point's offset from `centre` along
    and across `u`), at the deepest of GRASP_DEPTHS that is feasible."""
    # every test looks at points under the hand's footprint only (it may shift by up to
    # OPEN_HALF along `u` to centre on the closing region): keep just those
    near = (np.abs(a) < HAND_HALF[0] + OPEN_HALF) & (np.abs(b) < HAND_HALF[1])
    a, b, z, normals, is_part = a[near], b[near], points[near, 2], normals[near], is_part[near]
    body = None if body is None else body[near]
    column = (np.abs(b) < PAD_HALF_WIDTH + 0.002) & (np.abs(a) < OPEN_HALF)  # between the fingers
    if not np.any(column & is_part):
        return None  # no point of the part between the fingers, at any depth
    for depth in GRASP_DEPTHS:
        g = _evaluate_at(a, b, z, normals, is_part, body, column, centre, u, table_z, depth)
        if g is not None:
            return g
    return None


def _evaluate_at(a, b, z, normals, is_part, body, column, centre, u, table_z, depth):
    top = z[column].max()
    tcp_z = max(top - depth, table_z + TABLE_CLEARANCE + PAD_BELOW_TCP)
    tip_z = tcp_z - PAD_BELOW_TCP
    between = column & (z > tip_z)
    if not between.any():  # everything under this centre is below the fingertips
        return None
    lo, hi = a[between].min(), a[between].max()
    width = hi - lo
    if width > MAX_WIDTH:
        return None
    mid = (lo + hi) / 2
    a = a - mid
    # Nothing may sit where the open fingers come down, beyond the closing region.
    lane = (np.abs(b) < PAD_HALF_WIDTH + 0.002) & (z > tip_z)
    fingers = lane & (np.abs(a) > width / 2 + 1e-3) & (np.abs(a) < OPEN_HALF + FINGER_THICK)
    if np.any(fingers):
        return None
    pad = between & (z < tip_z + PAD_HEIGHT)
    if pad.sum() < 5 or is_part[pad].mean() < 0.8:
        return None
    if body is not None and np.any(body[pad] != body[pad][0]):
        return None
    # Antipodal: where each finger lands, enough of the surface faces that finger (edges and
    # rims also hold points facing up, so we ask for a share, not all of them).
    alignment = 0.0
    for side, sign in ((a - a[pad].min() < CONTACT_BAND, -1.0), (a[pad].max() - a < CONTACT_BAND, 1.0)):
        cos = normals[pad & side] @ (sign * u)
        facing = cos > FRICTION_CONE
        if facing.sum() < 3 or facing.mean() < 0.25:
            return None
        alignment += cos[facing].mean() / 2
    hand = (np.abs(a) < HAND_HALF[0]) & (np.abs(b) < HAND_HALF[1]) & (z > tcp_z + HAND_ABOVE_TCP - 0.005)
    if np.any(hand):
        return None
    pos = centre + mid * u
    return np.array([pos[0], pos[1], tcp_z]), width, alignment
