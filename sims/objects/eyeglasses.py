"""Procedural eyeglasses standing upright on the table with their legs unfolded.

`frame`: the front, in the xz plane at the +y end: two lens rims (loops of boxes under a smooth
visual tube, resting on the table), the lenses (thin convex slabs, clear or tinted), the
bridge, translucent nose pads (visual) and an end piece on each outer side carrying a hinge at
70-80 % of the frame's height. `leg`: the two temples running back (-y) from the hinges,
splayed outwards a little, each ending in an earpiece that bends down to the table, so the
glasses stand on the bottoms of the rims and the two earpiece tips. Shapes: `round`, `oval`,
`rectangular` (superellipse rims).

Each temple is a child body (`leg_right` at +x, the wearer's right, and `leg_left` at -x; both
the part `leg`) hinged to the frame about a vertical axis through the temple's inner front
corner at the end piece, so a folding temple swings in behind the rims without reaching into
the end piece. q = 0 is unfolded, against the hinge's stop; q > 0 folds it inwards, up to
1.5 rad (nearly flat behind the rims), less for a long temple that would otherwise reach into
the other one's root. With both folded the temples cross (the bodies of one object do not
collide). The hinges' friction holds the temples while the glasses stand on them.
"""

from __future__ import annotations

import numpy as np

from sims.core.rotations import rot_z
from sims.core.types import GeomSpec, ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.geometry import inside_geom, sample_surface
from sims.objects.shapes import centre_footprint, hull, loop_boxes, loop_mesh, superellipse

RIM_SEGMENTS = 16
FRAME_DENSITY = 1300.0  # acetate
LENS_DENSITY = 1300.0  # CR-39
SHAPES = ("round", "oval", "rectangular")
POWER = {"round": 2.0, "oval": 2.0, "rectangular": 4.5}
X, Y, Z = np.eye(3)


def _rim_bottom(path: np.ndarray, wall: float) -> float:
    """Lowest corner of a rim's boxes below the rim centre (see `loop_boxes`)."""
    low = 0.0
    for p0, p1 in zip(path, np.roll(path, -1, axis=0), strict=True):
        d = (p1 - p0) / np.linalg.norm(p1 - p0)
        n = np.array([d[1], -d[0]])
        half = np.linalg.norm(p1 - p0) / 2 + wall / 2
        for s in (-1, 1):
            for t in (-1, 1):
                low = min(low, ((p0 + p1) / 2 + s * half * d + t * wall / 2 * n)[1])
    return low


def _rim_x(a: float, c: float, power: float, dz: float) -> float:
    """Half-width of a rim's centre line at height dz above its centre."""
    return a * max(0.0, 1 - abs(dz / c) ** power) ** (1 / power)


def _fold_limit(leg: list[GeomSpec], other: list[GeomSpec], offset, cap: float,
                clearance: float = 0.0005, step: float = 0.01) -> float:
    """The largest fold (at most `cap`) of the right (+x) temple (geoms `leg`, in its hinge
    frame) that keeps it `clearance` away from the unfolded left temple (geoms `other`, in the
    frame of its hinge, `offset` from the right one)."""
    pts, _ = sample_surface(leg, seed=0, density=1e6)
    angle = 0.0
    while angle + step <= cap + 1e-9:
        moved = pts @ rot_z(-(angle + step)).T - offset
        if any(inside_geom(g, moved, -clearance).any() for g in other):
            break
        angle += step
    return angle


def generate(instance_id: int) -> ObjectAsset:
    """Eyeglasses `instance_id`, from the spec in assets/categories/eyeglasses.yaml."""
    b = ObjectBuilder("eyeglasses", instance_id)
    p = b.p
    shape = b.choice("shapes")
    rgba = b.rgba("colors")
    tinted = b.rng.uniform() < b.spec["tinted_probability"]
    lens_rgba = (0.15, 0.13, 0.10, 0.75) if tinted else (0.85, 0.92, 0.97, 0.25)
    a = p["lens_width"] / 2
    c = a * p["round_aspect"] if shape == "round" else p["lens_height"] / 2
    power = POWER[shape]
    wall, depth = p["rim_wall"], p["rim_depth"]
    kw = dict(rgba=rgba, density=FRAME_DENSITY)

    # rims: the bottom edge is horizontal (vertices symmetric about straight down)
    path = superellipse(a, c, power, RIM_SEGMENTS, start=-np.pi / 2 + np.pi / RIM_SEGMENTS)
    zc = -_rim_bottom(path, wall)
    cx = p["bridge"] / 2 + wall / 2 + a
    for sign in (1.0, -1.0):
        frame = ((sign * cx, 0.0, zc), X, Z)
        b.mesh("frame", *loop_mesh(path, wall, depth, *frame), rgba=rgba)
        loop_boxes(b, "frame", path, wall, depth, *frame, visible=False, **kw)
        lens = np.c_[sign * cx + path[:, 0], np.zeros(len(path)), zc + path[:, 1]]
        b.mesh("frame", *hull(np.r_[lens + [0, p["lens_thick"] / 2, 0], lens - [0, p["lens_thick"] / 2, 0]]),
               collide=True, rgba=lens_rgba, density=LENS_DENSITY)
        b.ellipsoid("frame", (0.0016, 0.003, 0.0055),
                    pos=(sign * (p["bridge"] / 2 + 0.0025), -depth / 2 - 0.004, zc - 0.2 * c),
                    rgba=(0.9, 0.9, 0.9, 0.5), collide=False)

    dz = 0.45 * c
    b.box("frame", (cx - _rim_x(a, c, power, dz), depth * 0.4, 0.45 * wall), pos=(0, 0, zc + dz), **kw)

    top = zc + c + wall / 2
    zh = p["hinge_frac"] * top
    tw, th = p["temple_width"], p["temple_height"]
    x_hinge = cx + a + wall / 2 + p["endpiece"]
    x_in = cx + _rim_x(a, c, power, zh - zc) - wall / 2
    y_back = -depth / 2 - 0.004  # the end piece reaches back to carry the hinge
    hinges = {}
    for sign, name in ((1.0, "leg_right"), (-1.0, "leg_left")):
        b.box("frame", ((x_hinge - x_in) / 2, (depth / 2 - y_back) / 2, 0.75 * th),
              pos=(sign * (x_hinge + x_in) / 2, (depth / 2 + y_back) / 2, zh), **kw)
        # temple: straight back from the hinge, splayed outwards, then the earpiece drops to
        # the table steeply, so every point on it has the tall temple within a finger's width
        s = p["splay"]
        d = np.array([sign * np.sin(s), -np.cos(s), 0.0])
        start = np.array([sign * (x_hinge - tw / 2), y_back, zh])
        # the hinge: the temple's inner front corner; folding turns the temple about it
        # towards the other side (axis -z for the +x temple, +z for the -x one)
        hinges[name] = hinge = start - tw / 2 * np.array([sign * np.cos(s), np.sin(s), 0.0])
        r = 0.6 * th
        run = (zh - r) * p["earpiece_run"]
        straight = p["temple_length"] - run
        yaw = sign * s
        # from the hinge face back into the earpiece (overlapping it, same body)
        b.box("leg", (tw / 2, straight / 2 + 0.0005, th / 2),
              pos=start + d * (straight / 2 + 0.0005) - hinge,
              quat=(np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)), body=name, **kw)
        bend = start + d * straight - hinge
        b.capsule("leg", bend, bend + d * run + [0, 0, r - zh], r, body=name, **kw)
    # A long temple folded flat would reach into the other (unfolded) one at its hinge; the
    # glasses are mirror-symmetric, so one limit serves both.
    fold = _fold_limit([g for g in b.geoms if g.body == "leg_right"],
                       [g for g in b.geoms if g.body == "leg_left"],
                       hinges["leg_left"] - hinges["leg_right"], b.spec["fold_angle"])
    for sign, name in ((1.0, "leg_right"), (-1.0, "leg_left")):
        b.body(name, pos=hinges[name], hinge_axis=(0, 0, -sign), range=(0.0, fold), damping=0.005,
               frictionloss=b.spec["hinge_friction"])

    centre_footprint(b)
    b.extra.update(shape=float(SHAPES.index(shape)), tinted=float(tinted))
    return b.finish()
