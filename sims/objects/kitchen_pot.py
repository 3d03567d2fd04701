"""Procedural cooking pots: a hollow cylindrical pot, low like a saucepan or tall like a stockpot,
with two side handles on its +-y sides (part of the body: D-shaped ears in the vertical plane,
or U loops angled up to a grip above the rim) and a lid resting on the rim. The lid (a flat
metal disc or a domed glass one, with a tall knob) is a child body on a slide joint along +z
through the rim's centre: q = 0 rests on the rim, up to `lid_travel` lifted; its friction keeps
a lifted lid from sliding back under small disturbances.

Collision geometry is convex pieces: a ring of wall boxes, a bottom disc, capsules for the
handles, a disc or convex dome and a cylinder knob for the lid; the pot's visual is a revolved
mesh. The handle bars are chunky on purpose: the grasp planner tries centres spread evenly over
the body's surface points, and with the lid on only the handles can be grasped from above, so
they need a fair share of those points.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import revolve, ring_of_boxes

WALL_SEGMENTS = 24
DENSITY = 2000.0  # thin aluminium / steel walls modelled a few mm thick
GLASS = (0.78, 0.88, 0.92, 0.45)


def _dome(radius: float, thickness: float, rise: float) -> tuple[np.ndarray, np.ndarray]:
    """Convex mesh of a lid: a rim `thickness` high at `radius`, domed `rise` higher at the centre."""
    theta = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ring = np.c_[np.cos(theta), np.sin(theta)]
    pts = [np.c_[radius * ring, np.zeros(len(ring))]]
    for f in np.linspace(0, 0.9, 5):  # f = r / radius; a spherical-cap-like rise
        pts.append(np.c_[f * radius * ring, np.full(len(ring), thickness + rise * (1 - f**2))])
    pts.append([[0.0, 0.0, thickness + rise]])
    hull = trimesh.convex.convex_hull(np.concatenate(pts))
    return hull.vertices, hull.faces


def generate(instance_id: int) -> ObjectAsset:
    """Kitchen pot `instance_id`, from the spec in assets/categories/kitchen_pot.yaml."""
    b = ObjectBuilder("kitchen_pot", instance_id)
    p = b.p
    style = b.choice("handle_styles")
    lid_style = b.choice("lid_styles")
    rgba, handle_rgba = b.rgba(), b.rgba("handle_colors")
    r, h, wall, bottom = p["radius"], p["height"], p["wall"], p["bottom"]

    profile = [(0, 0), (r, 0), (r, h), (r - wall, h), (r - wall, bottom), (0, bottom)]
    b.mesh("body", *revolve(profile, 48), rgba=rgba)
    hidden = dict(rgba=rgba, visible=False, density=DENSITY)
    ring_of_boxes(b, "body", r, wall, bottom, h, WALL_SEGMENTS, **hidden)
    b.cylinder("body", r, bottom / 2, pos=(0, 0, bottom / 2), **hidden)
    for side in (1.0, -1.0):
        (_ear if style == "ear" else _loop)(b, side, r, h, p, rgba=handle_rgba, density=DENSITY)

    lid = b.body("lid", pos=(0, 0, h), slide_axis=(0, 0, 1), range=(0.0, b.spec["lid_travel"]),
                 damping=1.0, frictionloss=0.08)
    r_lid, t = r + 0.002, p["lid_thickness"]  # overhangs the rim a little, as lids do
    if lid_style == "glass":
        rise = p["lid_dome"]
        b.mesh("lid", *_dome(r_lid, t, rise), collide=True, body=lid, rgba=GLASS, density=DENSITY)
        b.mesh("lid", *revolve([(r_lid - 0.004, 0), (r_lid, 0), (r_lid, t), (r_lid - 0.004, t)], 48),
               body=lid, rgba=handle_rgba)  # the metal band around the glass
    else:
        rise = 0.0
        b.cylinder("lid", r_lid, t / 2, pos=(0, 0, t / 2), body=lid, rgba=rgba, density=DENSITY)
    kh = p["knob_height"] + 0.001  # 1 mm sunk into the lid so its end face is buried
    b.cylinder("lid", p["knob_radius"], kh / 2, pos=(0, 0, t + rise - 0.001 + kh / 2), body=lid,
               rgba=handle_rgba, density=DENSITY)
    b.extra.update(handle_style=float(b.spec["handle_styles"].index(style)),
                   glass_lid=float(lid_style == "glass"))
    return b.finish(scale=max(h, 2 * r))


def _loop(b: ObjectBuilder, side: float, r: float, h: float, p: dict, **kw) -> None:
    """A U of round bar: two arms out of the wall, angled up to a grip above the rim (so the
    fingers can close across the grip without landing on the rim or the lid's edge)."""
    rb = p["bar_radius"]
    half_w = p["loop_width"] / 2
    z_root = h - p["handle_drop"] - rb
    z_grip = h + p["loop_rise"] - rb
    y_root = np.sqrt((r - rb) ** 2 - half_w**2)  # on the wall, where the arm's end is buried
    y_out = r + p["loop_length"]
    corners = [(-half_w, y_root, z_root), (-0.9 * half_w, y_out, z_grip), (0.9 * half_w, y_out, z_grip),
               (half_w, y_root, z_root)]
    for (x0, y0, z0), (x1, y1, z1) in zip(corners[:-1], corners[1:], strict=False):
        b.capsule("body", (x0, side * y0, z0), (x1, side * y1, z1), rb, **kw)


def _ear(b: ObjectBuilder, side: float, r: float, h: float, p: dict, **kw) -> None:
    """A D-shaped loop of round bar in the vertical plane through the axis, just below the rim."""
    rb = p["bar_radius"]
    z_u = h - p["handle_drop"] - rb
    z_l = z_u - p["ear_span"]
    y_out = r + p["ear_length"]
    corners = [(r - rb, z_u), (y_out, z_u), (y_out - 0.15 * p["ear_span"], z_l), (r - rb, z_l)]
    for (y0, z0), (y1, z1) in zip(corners[:-1], corners[1:], strict=False):
        b.capsule("body", (0, side * y0, z0), (0, side * y1, z1), rb, **kw)
