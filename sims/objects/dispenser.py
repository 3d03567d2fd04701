"""Procedural pump dispensers (soap, lotion): a bottle with a wide screw cap (body), a pump on
the cap whose stem, head block and spout (head) and top pad (pressing_lid) form one sliding body,
and on some instances a loop handle on the bottle's -x side (handle), making it a pump jug.

The pump's body origin is the bottom of its stem, inside the cap, on the bottle's axis; it
slides along +z over [-12 mm, 0] (0 = up). A real pump's spring is not modelled: the pump is
nearly weightless and damped, so it stays where it is left (see PUMP_DENSITY). The spout points
along +x. Bottle sections: round (a cylinder; visual mesh with a rounded shoulder), square (a
rounded rectangle) and oval (an ellipse); square and oval bottles collide as their convex hull.
The cap is nearly as wide as the bottle (its narrow side), a pump head is a cylinder or a block.

The pump's height above the cap is held in a narrow band: tall enough that fingers taking the
head top-down clear the cap, low enough that the hand taking the bottle (fingers around the
cap and the bottle's top, the pump beside them) clears the pad.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import handle_arc, revolve

PRESS_DEPTH = 0.012
# The pump stands in for a spring-loaded one (no spring is modelled): nearly weightless and
# heavily damped, it stays where it is left, yet follows a finger pressing it.
PUMP_DENSITY = 1.0
PUMP_DAMPING = 6.0  # N s/m; the joint check's 20 N/m servo still strokes it fully in 1.5 s
PUMP_FRICTION = 0.004  # N; several times the pump's weight
BOTTLE_DENSITY = 700.0  # a partly filled bottle
STEM_SUNK = 0.002  # the stem starts this deep inside the cap
PAD_SUNK = 0.001  # the pad's lower part inside the head (deeper than the builder's buried margin)


def _prism(outline: np.ndarray, height: float, bevel: float = 0.002
           ) -> tuple[np.ndarray, np.ndarray]:
    """Convex solid over a convex (x, y) outline from z = 0 to `height`, its top and bottom edges
    bevelled inwards by `bevel`."""
    centre = outline.mean(axis=0)

    def shrink(d):
        v = outline - centre
        return centre + v * (1 - d / np.linalg.norm(v, axis=1, keepdims=True))

    rings = [(shrink(bevel * 0.6), 0.0), (outline, bevel * 0.6), (outline, height - bevel),
             (shrink(bevel), height)]
    pts = np.concatenate([np.c_[ring, np.full(len(ring), z)] for ring, z in rings])
    hull = trimesh.convex.convex_hull(pts)
    return hull.vertices.astype(np.float32), hull.faces.astype(np.int32)


def _outline(shape: str, hx: float, hy: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if shape == "oval":
        return np.c_[hx * np.cos(t), hy * np.sin(t)]
    corner = 0.35 * min(hx, hy)  # rounded rectangle: quarter circles at the corners
    quads = []
    for k, (sx, sy) in enumerate(((1, 1), (-1, 1), (-1, -1), (1, -1))):
        a = np.linspace(k * np.pi / 2, (k + 1) * np.pi / 2, n // 4)
        quads.append(np.c_[sx * (hx - corner) + corner * np.cos(a),
                           sy * (hy - corner) + corner * np.sin(a)])
    return np.concatenate(quads)


def _handle_path(x_wall: float, height: float, p: dict) -> list[tuple[float, float]]:
    """(x, z) points of the loop handle's centre line on the -x side, from its upper root down."""
    r = p["handle_radius"]
    z_top = p["handle_top"] * height
    half = p["handle_span"] * height / 2
    zc = z_top - half
    root = -x_wall + r  # roots buried in the wall so the handle is attached
    tip = -x_wall - p["handle_reach"]
    return handle_arc(root, tip, zc, half)


def generate(instance_id: int) -> ObjectAsset:
    """Dispenser `instance_id`, from the spec in assets/categories/dispenser.yaml."""
    b = ObjectBuilder("dispenser", instance_id)
    p = b.p
    shape = b.choice("shapes")
    head_shape = b.choice("head_shapes")
    has_handle = bool(b.rng.uniform() < b.spec["handle_probability"])
    rgba, pump_rgba, pad_rgba = b.rgba("colors"), b.rgba("pump_colors"), b.rgba("pad_colors")
    height, cap_h = p["height"], p["cap_height"]

    body_kw = dict(rgba=rgba, density=BOTTLE_DENSITY)
    if shape == "round":
        radius = p["radius"]
        half_x = radius
        fillet = min(0.003, p["cap_inset"])
        profile = [(0, 0), (radius - 0.002, 0), (radius, 0.002), (radius, height - fillet),
                   (radius - 0.293 * fillet, height - 0.293 * fillet), (radius - fillet, height),
                   (0, height)]
        b.mesh("body", *revolve(profile, 40), rgba=rgba)
        b.cylinder("body", radius, height / 2, pos=(0, 0, height / 2), visible=False, **body_kw)
    else:
        half_x = p["half_x"]
        half_y = p["half_y"]
        b.mesh("body", *_prism(_outline(shape, half_x, half_y), height), collide=True, **body_kw)
    cap_r = half_x - p["cap_inset"]  # a wide cap: the fingers taking the bottle close on it too
    b.cylinder("body", cap_r, (cap_h + 0.001) / 2, pos=(0, 0, height + (cap_h - 0.001) / 2),
               rgba=pump_rgba, density=BOTTLE_DENSITY)

    if has_handle:
        path = _handle_path(half_x, height, p)
        for (x0, z0), (x1, z1) in zip(path[:-1], path[1:], strict=True):
            b.capsule("handle", (x0, 0, z0), (x1, 0, z1), p["handle_radius"], **body_kw)

    # The pump: stem, head block with the spout, pad on top, all on one sliding body.
    top = STEM_SUNK + p["pump_height"]  # pad top, pump frame
    head_top = top - p["pad_rise"]
    head_bot = head_top - p["head_height"]
    rh = p["head_radius"]
    pump = "pump"  # its body is added after its geoms
    kw = dict(body=pump, density=PUMP_DENSITY)
    b.cylinder("head", p["stem_radius"], (head_bot + 0.001) / 2, pos=(0, 0, (head_bot + 0.001) / 2),
               rgba=pump_rgba, **kw)
    zc = (head_top + head_bot) / 2
    # The pad's lower part sinks into the head, so only its raised top is its surface.
    if head_shape == "round":
        head_x = rh
        b.cylinder("head", rh, p["head_height"] / 2, pos=(0, 0, zc), rgba=pump_rgba, **kw)
        b.cylinder("pressing_lid", rh - 0.001, (p["pad_rise"] + PAD_SUNK) / 2,
                   pos=(0, 0, top - (p["pad_rise"] + PAD_SUNK) / 2), rgba=pad_rgba, **kw)
    else:
        head_x = 1.25 * rh  # a block, longer along the spout
        b.box("head", (head_x, rh, p["head_height"] / 2), pos=(0, 0, zc), rgba=pump_rgba, **kw)
        b.box("pressing_lid", (head_x - 0.001, rh - 0.001, (p["pad_rise"] + PAD_SUNK) / 2),
              pos=(0, 0, top - (p["pad_rise"] + PAD_SUNK) / 2), rgba=pad_rgba, **kw)
    z_spout = head_bot + 0.45 * p["head_height"]
    b.capsule("head", (0.5 * head_x, 0, z_spout),
              (head_x + p["spout_length"], 0, z_spout - p["spout_drop"]), p["spout_radius"],
              rgba=pump_rgba, **kw)

    b.body(pump, pos=(0.0, 0.0, height + cap_h - STEM_SUNK), slide_axis=(0, 0, 1),
           range=(-PRESS_DEPTH, 0.0), damping=PUMP_DAMPING, frictionloss=PUMP_FRICTION)
    b.extra.update(shape=float(b.spec["shapes"].index(shape)), handle=float(has_handle),
                   head_shape=float(head_shape == "square"))
    return b.finish(scale=float(height + cap_h + p["pump_height"]))

