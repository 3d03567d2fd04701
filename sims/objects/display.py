"""Procedural desktop monitors: a flat base plate (rectangular or round), a stand (a bar or round
neck rising behind the panel, with a bracket reaching forward over the panel's top edge to the
tilt hinge) and a panel facing -x: frame (bezel ring, back shell, rear housing and the tab that
hangs it from the hinge) around the screen face.

The panel hangs from the hinge, which runs along y right above the panel's centre of mass, so
gravity keeps q = 0 (panel upright) and a frictionloss above the gravity torque at full tilt
holds any tilt; positive q leans the panel back, negative tips it forward. The panel body's
frame is turned 180 deg about y (local z down), which keeps its points at local z >= 0. The
neck stands a few centimetres behind the panel and rises above everything else, so the gripper
can come down on it.
"""

from __future__ import annotations

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder

BEZEL_LAYER = 0.0025  # thickness of the panel's front layer (bezel ring around the screen)
OVERLAP = 0.0015  # neighbouring geoms overlap by more than the builder's buried-point margin
GRAVITY = 9.81
PANEL_DENSITY = 400.0  # kg/m^3: a panel is a mostly hollow shell
HOUSING_DENSITY = 500.0  # electronics and power supply sit in the rear housing


def generate(instance_id: int) -> ObjectAsset:
    """Monitor `instance_id`, from the spec in assets/categories/display.yaml."""
    b = ObjectBuilder("display", instance_id)
    p = b.p
    base_shape = b.choice("base_shapes")
    neck_shape = b.choice("neck_shapes")
    rgba = b.rgba()
    screen_rgba = b.rgba("screen_colors")
    dark = tuple(0.7 * c for c in rgba[:3]) + (1.0,)

    # -- panel dimensions ----------------------------------------------------------------------
    width = p["panel_width"]
    bs, bt, bb = p["bezel_side"], p["bezel_top"], p["bezel_bottom"]
    height = p["aspect"] * (width - 2 * bs) + bt + bb
    depth, hd = p["panel_depth"], p["housing_depth"]
    hw, hh = p["housing_width"] * width, p["housing_height"] * height

    # -- panel geometry, upright in a frame with the housing's back face at x = 0 and the panel's
    # centre at z = 0 (front face towards -x): (part, half extents, centre, density, rgba)
    s = BEZEL_LAYER
    front = -(hd + depth)
    bx = (s + OVERLAP) / 2
    side_h = height - bt - bb
    side_z = (bb - bt) / 2
    recess = 0.0003  # glass sits just behind the bezel face
    pieces = [
        ("frame", ((hd + OVERLAP) / 2, hw / 2, hh / 2), (-(hd + OVERLAP) / 2, 0, 0), HOUSING_DENSITY),
        ("frame", ((depth - s) / 2, width / 2, height / 2), (-hd - (depth - s) / 2, 0, 0), PANEL_DENSITY),
        ("frame", (bx, width / 2, bt / 2), (front + bx, 0, height / 2 - bt / 2), PANEL_DENSITY),
        ("frame", (bx, width / 2, bb / 2), (front + bx, 0, -height / 2 + bb / 2), PANEL_DENSITY),
        *[("frame", (bx, bs / 2, side_h / 2), (front + bx, sign * (width / 2 - bs / 2), side_z),
           PANEL_DENSITY) for sign in (-1, 1)],
        ("screen", ((s + OVERLAP - recess) / 2, width / 2 - bs + OVERLAP, side_h / 2 + OVERLAP),
         (front + (recess + s + OVERLAP) / 2, 0, side_z), PANEL_DENSITY),
    ]
    masses = [8 * np.prod(half) * rho for _, half, _, rho in pieces]
    com = sum(m * np.asarray(c) for m, (_, _, c, _) in zip(masses, pieces, strict=True)) / sum(masses)

    # The tilt hinge runs right above the panel's centre of mass, over its top edge: the panel
    # hangs from it, so gravity holds q = 0 (and friction any tilt) without creeping away.
    r_hinge = p["hinge_radius"]
    axis_up = np.array([com[0], 0.0, height / 2 + r_hinge + 0.001])
    tb = p["base_thickness"]
    if base_shape == "rect":
        half_depth = p["base_depth"] / 2
        b.box("base", (half_depth, p["base_width"] / 2, tb / 2), pos=(0, 0, tb / 2), rgba=dark,
              density=1800.0)
    else:
        half_depth = p["base_radius"]
        b.cylinder("base", half_depth, tb / 2, pos=(0, 0, tb / 2), rgba=dark, density=1800.0)
    neck_x = half_depth - p["neck_back"]
    housing_x = neck_x - p["neck_offset"]  # world x of the housing's back face
    pivot = np.array([housing_x + axis_up[0], 0.0, tb + p["clearance"] + height / 2 + axis_up[2]])
    top = pivot[2] + r_hinge
    if neck_shape == "bar":
        neck_w = p["neck_width"]
        b.box("stand", (p["neck_depth"] / 2, neck_w / 2, (top - tb) / 2 + OVERLAP),
              pos=(neck_x, 0, (top + tb) / 2 - OVERLAP), rgba=rgba, density=800.0)
    else:
        neck_w = 2 * p["neck_radius"]
        b.cylinder("stand", p["neck_radius"], (top - tb) / 2 + OVERLAP,
                   pos=(neck_x, 0, (top + tb) / 2 - OVERLAP), rgba=rgba, density=800.0)
    bracket_w = 0.7 * neck_w
    b.box("stand", ((neck_x - pivot[0]) / 2, bracket_w / 2, r_hinge),
          pos=((neck_x + pivot[0]) / 2, 0, pivot[2]), rgba=rgba, density=800.0)
    b.cylinder("stand", r_hinge, bracket_w / 2 + 0.004, pos=pivot, axis=(0, 1, 0), rgba=dark,
               density=800.0)

    # -- panel body on the hinge, its frame turned 180 deg about y (local z points down), which
    # keeps every panel point at local z >= 0 like the other bodies' points.
    lever = axis_up[2] - com[2]
    friction = 1.3 * sum(masses) * GRAVITY * lever * np.sin(max(p["tilt_forward"], p["tilt_back"])) + 0.05
    b.body("panel", pos=pivot, quat=(0.0, 0.0, 1.0, 0.0), hinge_axis=(0, 1, 0),
           range=(-p["tilt_forward"], p["tilt_back"]), damping=0.1, frictionloss=friction)

    def to_panel(c):
        rel = np.asarray(c, float) - axis_up
        return (-rel[0], rel[1], -rel[2])

    for part, half, centre, rho in pieces:
        b.box(part, half, pos=to_panel(centre), body="panel", density=rho,
              rgba=screen_rgba if part == "screen" else rgba)
    tab_h = (axis_up[2] - height / 2) / 2 + OVERLAP  # joins the panel's top edge to the hinge
    b.box("frame", (0.35 * r_hinge, bracket_w / 2 - 0.002, tab_h),
          pos=to_panel((axis_up[0], 0, axis_up[2] - tab_h)), body="panel", rgba=dark,
          density=PANEL_DENSITY)
    b.box("frame", (0.0002, min(0.02, 0.1 * width), 0.0015),
          pos=to_panel((front - 0.0002, 0, -height / 2 + bb / 2)), body="panel",
          rgba=tuple(min(1.0, c + 0.25) for c in rgba[:3]) + (1.0,), collide=False)  # badge
    b.extra.update(round_base=float(base_shape == "round"), round_neck=float(neck_shape == "post"),
                   panel_height=float(height), tilt_frictionloss=float(friction))
    return b.finish()
