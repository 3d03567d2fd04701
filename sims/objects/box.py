"""Procedural storage boxes: a hollow rectangular body (bottom plate and four wall plates) with a
grip sticking out of each end (+-y), and a lid hinged along the body's back (+x) top edge.

The lid is its own body whose origin is on the hinge line (hinge axis +y, q = 0 closed,
q = 1.9 rad folded back past vertical); gravity holds it shut against its lower limit. Styles:
a plastic tote (skirted lid with a front pull tab; moulded end grips: a ledge with a down-turned
lip and side ribs), a wooden chest (lid overhanging front and back with a knob near the front;
solid end cleats) and a case (skirted lid with a carry bar on top; moulded end grips).

Why the grips look as they do: with the lid shut, a top-down grasp can only take the body by
something that sticks out past the lid, and the grasp planner tries centres spread over the
part's surface, so a grip needs reach (the fingers' 2.5 cm column must clear the lid) and
surface out there (the lip, ribs and full-height cleats). The knob, bar and tab likewise rise or
reach far enough that the fingers clear the rest of the lid.
"""

from __future__ import annotations

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder

STYLES = ("tote", "chest", "case")
OPEN_LIMIT = 1.9  # rad; a little past vertical, where real lid stays stop it
SKIRT_THICK = 0.003
SKIRT_GAP = 0.0008  # the skirt clears the walls it hangs over
LIP_THICK = 0.004  # lips and ribs of moulded grips and the pull tab
DENSITY = {"tote": 700.0, "chest": 550.0, "case": 800.0}  # kg/m^3 of the plates


def _slab(b: ObjectBuilder, part: str, lo, hi, **kw):
    """A box spanning the corners `lo` and `hi` (body frame)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return b.box(part, (hi - lo) / 2, pos=(hi + lo) / 2, **kw)


def _channel(b: ObjectBuilder, part: str, across: int, x0: float, x1: float, half_w: float,
             top: float, thick: float, lip: float, **kw) -> None:
    """A moulded grip: a plate reaching from `x0` to `x1` along axis `across` (0 = x, 1 = y),
    `2 * half_w` wide, with a lip `lip` deep down its outer edge (at `x1`) and a rib under each
    side edge. The rib faces are where the fingers close."""
    def box(a0, a1, w0, w1, z0, z1):
        lo, hi = [0.0, 0.0, z0], [0.0, 0.0, z1]
        lo[across], hi[across] = sorted((a0, a1))
        lo[1 - across], hi[1 - across] = w0, w1
        _slab(b, part, lo, hi, **kw)

    out = np.sign(x1 - x0)
    box(x0, x1, -half_w, half_w, top - thick, top)
    box(x1 - out * LIP_THICK, x1, -half_w, half_w, top - thick - lip, top - thick + 0.001)
    for s in (-1, 1):
        w0, w1 = sorted((s * half_w, s * (half_w - LIP_THICK)))
        box(x0, x1 - out * LIP_THICK, w0, w1, top - thick - lip, top - thick + 0.001)


def _body(b: ObjectBuilder, style: str, rgba, p: dict) -> None:
    """Bottom, walls and end grips."""
    hx, hy, h, w = p["depth"] / 2, p["length"] / 2, p["height"], p["wall"]
    kw = dict(rgba=rgba, density=DENSITY[style])
    _slab(b, "body", (-hx, -hy, 0), (hx, hy, w), **kw)
    for s in (-1, 1):  # end walls over the full depth, front/back walls between them
        y0, y1 = sorted((s * hy, s * (hy - w)))
        _slab(b, "body", (-hx, y0, w), (hx, y1, h), **kw)
        x0, x1 = sorted((s * hx, s * (hx - w)))
        _slab(b, "body", (x0, -hy + w, w), (x1, hy - w, h), **kw)
    half_w, reach = p["grip_width"] / 2, p["grip_reach"]
    for s in (-1, 1):
        if style == "chest":  # solid cleats from the bottom to just under the lid
            y0, y1 = sorted((s * (hy - 0.002), s * (hy + reach)))
            _slab(b, "body", (-half_w, y0, 0.004), (half_w, y1, h - 0.004), **kw)
        else:  # just under the lid skirt, the lip kept clear of the table
            top = h - p["skirt"] - 0.002
            lip = min(p["grip_lip"], top - p["grip_thick"] - 0.004)
            _channel(b, "body", 1, s * (hy - 0.002), s * (hy + reach), half_w, top, p["grip_thick"],
                     lip, **kw)


def _lid(b: ObjectBuilder, style: str, rgba, fitting, p: dict) -> None:
    hx, hy, h, t = p["depth"] / 2, p["length"] / 2, p["height"], p["lid_thick"]
    skirted = style != "chest"
    over = SKIRT_THICK + SKIRT_GAP if skirted else p["lid_overhang"]
    sk = p["skirt"] if skirted else 0.0
    # Frame: origin on the hinge line, at the back of the seam between lid and body (the skirt's
    # bottom edge), so the whole lid lies above its frame's z = 0; the lid spans -x from there.
    lid = b.body("lid", pos=(hx + over, 0.0, h - sk), hinge_axis=(0, 1, 0),
                 range=(0.0, OPEN_LIMIT), damping=0.05, frictionloss=0.01)
    # A chest lid overhangs front and back only, so it does not hang over the end cleats.
    lx, ly = 2 * hx + 2 * over, hy + (over if skirted else 0.0)
    top = sk + t
    kw = dict(body=lid, rgba=rgba, density=DENSITY[style])
    _slab(b, "lid", (-lx, -ly, sk), (0, ly, top), **kw)
    if skirted:
        for s in (-1, 1):  # front/back skirts, then the end ones between them
            x0 = -SKIRT_THICK if s > 0 else -lx
            _slab(b, "lid", (x0, -ly, 0.0), (x0 + SKIRT_THICK, ly, sk + 0.0005), **kw)
            y0 = ly - SKIRT_THICK if s > 0 else -ly
            _slab(b, "lid", (-lx + SKIRT_THICK, y0, 0.0),
                  (-SKIRT_THICK, y0 + SKIRT_THICK, sk + 0.0005), **kw)
    b.cylinder("lid", 0.004, 0.9 * hy, pos=(0, 0, 0.004), axis=(0, 1, 0), body=lid, collide=False,
               rgba=fitting)  # hinge barrel
    fit = dict(body=lid, rgba=fitting, density=1500.0)
    if style == "chest":  # a knob near the front edge
        r, z1 = p["knob_radius"], top + p["knob_height"]
        head = 0.45 * r + 0.003
        x = -lx + max(0.03, 1.8 * r)
        b.cylinder("lid", 0.45 * r, (z1 - head - top) / 2 + 0.001,
                   pos=(x, 0, (z1 - head + top) / 2), **fit)
        b.cylinder("lid", r, head / 2, pos=(x, 0, z1 - head / 2), **fit)
    elif style == "case":  # a carry bar across the middle
        r, z1, half = p["bar_radius"], top + p["bar_height"], p["bar_half_len"]
        x = -lx / 2
        for s in (-1, 1):
            b.capsule("lid", (x, s * half, top), (x, s * half, z1 - r), 1.2 * r, **fit)
        b.capsule("lid", (x, -half, z1 - r), (x, half, z1 - r), r, **fit)
    else:  # a pull tab in front, level with the lid's top, its lip down to the skirt's edge
        _channel(b, "lid", 0, -lx + 0.004, -lx - p["tab_reach"], p["tab_width"] / 2, top, t, sk,
                 **kw)


def generate(instance_id: int) -> ObjectAsset:
    """Box `instance_id`, from the spec in assets/categories/box.yaml."""
    b = ObjectBuilder("box", instance_id)
    p = b.p
    style = b.choice("styles")
    pairs = b.spec["colors"][style]
    body_rgb, lid_rgb = pairs[int(b.rng.integers(len(pairs)))]
    fitting = b.rgba("fittings")
    _body(b, style, (*body_rgb, 1.0), p)
    _lid(b, style, (*lid_rgb, 1.0), fitting, p)
    b.extra.update(style=float(STYLES.index(style)))
    return b.finish(scale=float(max(p["length"], p["depth"], p["height"])))
