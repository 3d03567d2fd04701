"""Procedural scissors lying flat on the table, blades towards +x, finger rings towards -x.

Two stacked steel blades cross at a pivot screw (screw, a screw head on top of the upper
blade) at x = 0 before the instance is centred on its footprint; behind the pivot a low steel
tang per half (also blade) runs back into a plastic finger ring standing on the table
(handle), the two rings side by side in y. Styles: `symmetric` (two equal round rings),
`offset` (round thumb ring, longer oval finger ring), `shears` (kitchen shears: wider blades,
both rings oval). Tips are pointed or blunt.

Two bodies, one per half as in real scissors: the root holds the lower blade, the -y ring,
their tang and the screw; the child `upper` (the upper blade, the +y ring and their tang) is
hinged about the vertical screw axis, its frame on the pivot. q = 0 is closed; opening
(q > 0) swings the upper tip towards -y and its ring towards +y, up to 0.6 rad; closing past
0 is limited to where the rings would touch (at most 0.1 rad). `blade` and `handle` span both
bodies. The tangs leave the pivot disc at its rim, so neither half reaches into the other.

The rings are moulded chunky (2.1-2.6 cm tall) so a top-down grasp can close across one.
Collision geometry: convex blade slabs, boxes (tangs, rings), a cylinder (screw head); the
rings' visual is a smooth mesh over hidden boxes.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

from sims.core.rotations import quat_to_mat
from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import centre_footprint, loop_boxes, loop_mesh, slab, superellipse

RING_SEGMENTS = 16
STEEL_DENSITY = 7850.0
PLASTIC_DENSITY = 1100.0


# -- scissors --------------------------------------------------------------------------------

def _outline(g) -> np.ndarray:
    """xy corners of a box geom turned about z only."""
    rot = quat_to_mat(np.asarray(g.quat))[:2, :2]
    corners = np.array([(sx, sy) for sx in (-1, 1) for sy in (-1, 1)]) * g.size[:2]
    return corners @ rot.T + g.pos[:2]


def _separation(a: np.ndarray, b: np.ndarray) -> float:
    """Gap between two convex xy point sets along their best separating axis (< 0: overlap)."""
    best = -np.inf
    for poly in (a, b):
        ring = poly[ConvexHull(poly).vertices]
        edges = np.roll(ring, -1, axis=0) - ring
        normals = np.c_[edges[:, 1], -edges[:, 0]] / np.linalg.norm(edges, axis=1)[:, None]
        pa, pb = a @ normals.T, b @ normals.T
        best = max(best, float(np.max(np.maximum(pb.min(0) - pa.max(0), pa.min(0) - pb.max(0)))))
    return best


def closing_limit(moving: list[np.ndarray], fixed: list[np.ndarray], cap: float,
                  clearance: float = 0.0003, step: float = 0.005) -> float:
    """The largest angle (at most `cap`, in steps) by which the convex xy outlines `moving`
    can turn counter-clockwise about the origin before coming within `clearance` of `fixed`."""
    angle = 0.0
    while angle + step <= cap + 1e-9:
        c, s = np.cos(angle + step), np.sin(angle + step)
        turned = [m @ np.array([[c, s], [-s, c]]) for m in moving]
        if min(_separation(m, f) for m in turned for f in fixed) < clearance:
            break
        angle += step
    return angle


def _blade_outline(length: float, width: float, tip: str, back: float) -> np.ndarray:
    """Outline of the lower blade: cutting edge along y = -width/2, spine tapering to the tip;
    the round end behind the pivot carries the screw hole."""
    pts = [back * np.array([np.cos(t), np.sin(t)]) for t in np.linspace(np.pi / 2, 3 * np.pi / 2, 9)]
    if tip == "pointed":
        pts += [(0.45 * length, -width / 2), (length, -0.15 * width), (0.3 * length, width / 2)]
    else:
        r = 0.32 * width
        cx, cy = length - r, -width / 2 + r
        pts += [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.linspace(-np.pi / 2, np.pi / 2, 7)]
        pts += [(0.35 * length, width / 2)]
    pts += [(0.0, width / 2)]
    return np.asarray(pts, float)


def generate(instance_id: int) -> ObjectAsset:
    """Scissors `instance_id`, from the spec in assets/categories/scissors.yaml."""
    b = ObjectBuilder("scissors", instance_id)
    p = b.p
    style = b.choice("styles")
    tip = b.choice("tips")
    grip, steel = b.rgba("colors"), b.rgba("blade_colors")
    length, width, t = p["blade_length"], p["blade_width"], p["blade_thick"]
    hl, wall, h = p["handle_length"], p["ring_wall"], p["ring_height"]
    if style == "shears":
        width *= 1.3
        hl *= 1.15
    rs = p["screw_radius"]
    back = max(width / 2, rs + 0.004)
    rc = p["ring_inner"] + wall / 2  # ring centre line radius across y
    stretch = {"symmetric": (1.0, 1.0), "offset": (1.0, p["finger_ring_stretch"]),
               "shears": (p["finger_ring_stretch"], p["finger_ring_stretch"])}[style]
    rings = []
    for sign, s in zip((1.0, -1.0), stretch, strict=True):
        ax = rc * s
        rings.append((sign, ax, -hl + rc - ax))  # a longer ring grows backwards, its front stays put
    halves = {1.0: "upper", -1.0: "base"}  # each ring belongs to the blade crossing over to it

    # Lower blade on the table, upper blade on top of it, mirrored in y.
    outline = _blade_outline(length, width, tip, back)
    for k, sign in enumerate((1.0, -1.0)):
        verts, faces = slab(outline * [1.0, sign], k * t, (k + 1) * t)
        b.mesh("blade", verts, faces, collide=True, body=halves[-sign], rgba=steel,
               density=STEEL_DENSITY)

    # The shaft runs through holes in both blades (visual); the head is what can be touched.
    b.cylinder("screw", rs, t + 0.0006, pos=(0, 0, t + 0.0006), rgba=steel, collide=False)
    b.cylinder("screw", 1.45 * rs, 0.0005, pos=(0, 0, 2 * t + 0.0007), rgba=steel,
               density=STEEL_DENSITY)

    for sign, ax, xc in rings:
        kw = dict(body=halves[sign], rgba=grip)
        yc = sign * (rc + wall / 2 + p["ring_gap"] / 2)
        path = superellipse(ax, rc, 2.0, RING_SEGMENTS, start=np.pi / RING_SEGMENTS)
        frame = ((xc, yc, h / 2), (1, 0, 0), (0, 1, 0))
        b.mesh("handle", *loop_mesh(path, wall, h, *frame), **kw)
        loop_boxes(b, "handle", path, wall, h, *frame, visible=False, density=PLASTIC_DENSITY, **kw)
        # The steel tang runs from the rim of the pivot disc (so it stays clear of the other
        # half's blade, at any opening) into the ring; it stays low, under the fingertips of a
        # grasp closing across the ring, and is labelled blade (it is the blade's steel), so
        # every handle point has the tall ring next to it.
        tw = p["tang_width"]
        a = np.arcsin(min(0.7, (tw / 2 + 0.001) / back))  # the two tangs leave side by side
        p0 = back * np.array([-np.cos(a), sign * np.sin(a)])
        p1 = np.array([xc + ax, yc])
        d = p1 - p0
        yaw = np.arctan2(d[1], d[0])
        b.box("blade", (np.linalg.norm(d) / 2, tw / 2, p["tang_height"] / 2),
              pos=(*(p0 + p1) / 2, p["tang_height"] / 2), quat=(np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)),
              body=halves[sign], rgba=steel, density=STEEL_DENSITY)

    # Closing past 0 stops just before the rings (or tangs) of the two halves meet.
    pieces = {}
    for body in ("upper", "base"):
        ring = [g for g in b.geoms if g.body == body and g.part == "handle" and g.type == "box"]
        tang = [g for g in b.geoms if g.body == body and g.part == "blade" and g.type == "box"]
        pieces[body] = [np.concatenate([_outline(g) for g in ring]), *map(_outline, tang)]
    closed = closing_limit(pieces["upper"], pieces["base"], cap=0.1)
    # The upper half opens clockwise seen from above (axis -z): its tip towards -y, where the
    # lower blade's cutting edge faces it, and its ring away from the other one.
    b.body("upper", hinge_axis=(0, 0, -1), range=(-closed, b.spec["open_angle"]), damping=0.02,
           frictionloss=0.01)

    centre_footprint(b)
    b.extra.update(style=float(["symmetric", "offset", "shears"].index(style)),
                   pointed=float(tip == "pointed"))
    return b.finish()
