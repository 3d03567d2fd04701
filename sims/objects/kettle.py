"""Procedural kettles: a hollow round or tapered body with a spout on its +x side and a flat
top with a round opening, closed by a lid with a tall knob. The lid is a child body hinged at
its back (-x) edge about -y (q = 0 closed, opening up to ~1.6 rad). The handle is either on the
-x side (a round arc or a C of bars) or a top handle arching from side to side behind the lid,
whose opening is then shifted forward so the knob stays clear of the arch.

Collision geometry is convex pieces: a ring of (tilted) wall boxes, a bottom disc, a top plate of
convex sectors around the opening, a convex spout, capsules for the handle, cylinders for the lid
and knob; the body's visual is a revolved mesh.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import trimesh

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import frustum_of_boxes, revolve

WALL_SEGMENTS = 20
TOP_SECTORS = 12
KNOB_CLEAR = 0.036  # top handle this far behind the knob axis (plus its radius): the hand clears it


def _radius_at(r_bottom: float, r_top: float, height: float, z: float) -> float:
    return r_bottom + (r_top - r_bottom) * z / height


def _top_plate(b: ObjectBuilder, centre_x: float, r_hole: float, r_out: float, z0: float, z1: float,
               **kw) -> None:
    """A flat annulus from a hole of `r_hole` at (centre_x, 0) out to radius `r_out` about the
    axis, as convex sectors fanned around the hole (the hole need not be centred)."""
    c = np.array([centre_x, 0.0])
    for k in range(TOP_SECTORS):
        phis = np.linspace(2 * np.pi * k / TOP_SECTORS, 2 * np.pi * (k + 1) / TOP_SECTORS, 3)
        ring = []
        for j, f in enumerate(phis):
            d = np.array([np.cos(f), np.sin(f)])
            t = -c @ d + np.sqrt((c @ d) ** 2 - c @ c + r_out**2)  # ray from the hole meets the rim
            ring.append(c + t * d)
            if j != 1:
                ring.append(c + r_hole * d)
        pts = np.concatenate([np.c_[np.array(ring), np.full(len(ring), z)] for z in (z0, z1)])
        hull = trimesh.convex.convex_hull(pts)
        b.mesh("body", hull.vertices, hull.faces, collide=True, **kw)


def _spout(b: ObjectBuilder, root, angle: float, length: float, r0: float, **kw) -> None:
    """A convex tapered spout from `root` (inside the wall) along elevation `angle` in +x."""
    theta = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.c_[np.cos(theta), np.sin(theta), np.zeros_like(theta)]
    local = np.concatenate([r0 * ring, 0.45 * r0 * ring + [0, 0, length]])
    axis = np.array([np.cos(angle), 0.0, np.sin(angle)])
    x = np.array([-np.sin(angle), 0.0, np.cos(angle)])
    rot = np.stack([x, np.cross(axis, x), axis], axis=1)
    hull = trimesh.convex.convex_hull(local @ rot.T + np.asarray(root))
    b.mesh("body", hull.vertices, hull.faces, collide=True, **kw)


def generate(instance_id: int) -> ObjectAsset:
    """Kettle `instance_id`, from the spec in assets/categories/kettle.yaml."""
    b = ObjectBuilder("kettle", instance_id)
    p = b.p
    shape = b.choice("body_shapes")
    style = b.choice("handle_styles")
    rgba, handle_rgba = b.rgba(), b.rgba("handle_colors")
    r_b, h, wall, bottom = p["radius"], p["height"], p["wall"], p["bottom"]
    r_t = r_b * (p["taper"] if shape == "tapered" else 1.0)
    r_at = partial(_radius_at, r_b, r_t, h)

    # visual: the revolved wall and bottom; the top plate's collision sectors show as they are,
    # so the opening is visible when the lid is up
    b.mesh("body", *revolve([(0, 0), (r_b, 0), (r_t, h), (r_t - wall, h), (r_at(bottom) - wall, bottom),
                             (0, bottom)], 40), rgba=rgba)
    hidden = dict(rgba=rgba, visible=False)
    b.cylinder("body", r_b, bottom / 2, pos=(0, 0, bottom / 2), **hidden)
    frustum_of_boxes(b, "body", r_at(bottom), r_t, wall, bottom, h, WALL_SEGMENTS, **hidden)

    r_lid = p["lid_fraction"] * r_t
    x_lid = p["lid_shift"] if style == "top" else 0.0
    _top_plate(b, x_lid, r_lid - 0.004, r_t - wall / 2, h - wall, h, rgba=rgba)

    z_sp = p["spout_height"] * h
    length = min(p["spout_length"], (h + 0.01 - z_sp) / np.sin(p["spout_angle"]))  # tip near the top
    _spout(b, (r_at(z_sp) - p["spout_radius"], 0, z_sp), p["spout_angle"], length, p["spout_radius"],
           rgba=rgba)

    rh = p["handle_radius"]
    if style == "top":
        path = _top_handle(x_lid, r_lid, rh, h, r_at, p)
    else:
        path = _side_handle(style, rh, h, r_at, p)
    for p0, p1 in zip(path[:-1], path[1:], strict=False):
        b.capsule("handle", p0, p1, rh, rgba=handle_rgba)

    # the lid's body sits on the hinge line at the lid's back edge, on the top surface
    lo, hi = b.spec["lid_range"]
    lid = b.body("lid", pos=(x_lid - r_lid, 0, h), hinge_axis=(0, -1, 0), range=(lo, hi),
                 damping=0.01, frictionloss=0.002)
    t = p["lid_thickness"]
    b.cylinder("lid", r_lid, t / 2, pos=(r_lid, 0, t / 2), body=lid, rgba=rgba)
    kh = p["knob_height"] + 0.001  # 1 mm sunk into the lid so its end face is buried
    b.cylinder("lid", p["knob_radius"], kh / 2, pos=(r_lid, 0, t - 0.001 + kh / 2), body=lid,
               rgba=handle_rgba)
    b.extra.update(tapered=float(shape == "tapered"),
                   handle_style=float(b.spec["handle_styles"].index(style)))
    return b.finish(scale=h)


def _side_handle(style: str, rh: float, h: float, r_at, p: dict) -> list[np.ndarray]:
    """Centre line of a handle on the -x side, from its upper root to its lower root (both
    buried in the wall so the handle is attached)."""
    z_u = h - rh - 0.004
    z_t = max(h + p["handle_rise"], z_u)
    z_l = h - p["handle_span"] * h
    reach = p["handle_reach"]
    if style == "square":
        pts = [(-(r_at(z_u) - rh), z_u), (-(r_at(z_u) + reach), z_t),
               (-(r_at(z_l) + reach * 0.85), z_l), (-(r_at(z_l) - rh), z_l)]
    else:
        zc, half = (z_t + z_l) / 2, (z_t - z_l) / 2
        pts = [(-(r_at(min(z, h)) - rh + (reach + rh) * np.cos(f)), z)
               for f in np.linspace(np.pi / 2, -np.pi / 2, 9) for z in [zc + half * np.sin(f)]]
        if z_t > z_u + 0.002:  # a handle rising above the top starts from the wall below it
            pts.insert(0, (-(r_at(z_u) - rh), z_u))
    return [np.array([x, 0.0, z]) for x, z in pts]


def _top_handle(x_lid: float, r_lid: float, rh: float, h: float, r_at, p: dict) -> list[np.ndarray]:
    """Centre line of an arch across y behind the lid: roots buried in the wall near the top on
    both sides, legs rising to a straight grip."""
    x = min(x_lid - KNOB_CLEAR - rh, x_lid - r_lid - rh - 0.008)  # clear of the opened lid
    z_root = h - 0.012
    y_root = np.sqrt(max((r_at(z_root) - rh) ** 2 - x**2, 0.0))
    top = h + p["top_handle_height"]
    y_top = 0.55 * y_root
    return [np.array(v) for v in ((x, -y_root, z_root), (x, -y_root * 0.9, h + 0.4 * (top - h)),
                                  (x, -y_top, top), (x, y_top, top), (x, y_root * 0.9, h + 0.4 * (top - h)),
                                  (x, y_root, z_root))]
