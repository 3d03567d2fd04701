"""Procedural kitchen knives lying flat on their side, blade towards +x, handle towards -x,
spine towards +y.

`handle`: a chunky rounded handle (a convex hull of rounded-rectangle sections, flaring a
little at the butt), 2.1-2.5 cm thick so it stands tall enough for a top-down grasp across it;
chef knives get three visual rivets. `blade`: a thin steel slab lying on the table, its spine
near the top edge of the handle. Styles: `chef` (wide, curved belly rising to the tip),
`utility` (short and narrow, pointed), `bread` (long, straight, round tip).

Rigid, one body. The blade lies flat on the table with the handle beside it on the same plane
(a real knife tilts a few degrees, its blade resting on the edge of the handle).
"""

from __future__ import annotations

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import centre_footprint, hull, slab, superellipse

STEEL_DENSITY = 7850.0
STYLES = ("chef", "utility", "bread")
SPINE = {"chef": 0.42, "utility": 0.25, "bread": 0.38}  # spine y, as a fraction of handle width


def _blade_outline(style: str, length: float, width: float, spine: float) -> np.ndarray:
    """Blade outline from the bolster (x = -2 mm, inside the handle) to the tip."""
    x0, edge = -0.002, spine - width
    if style == "chef":
        belly = [(0.55 * length + 0.45 * length * np.sin(t), spine - 0.12 * width - 0.88 * width * np.cos(t))
                 for t in np.linspace(0.0, np.pi / 2, 8)]
        pts = [(x0, spine), (x0, edge), *belly, (0.75 * length, spine)]
    elif style == "utility":
        pts = [(x0, spine), (x0, edge), (0.7 * length, edge), (length, spine - 0.6 * width),
               (0.55 * length, spine)]
    else:
        r = width / 2
        tip = [(length - r + r * np.cos(t), spine - r + r * np.sin(t))
               for t in np.linspace(-np.pi / 2, np.pi / 2, 9)]
        pts = [(x0, spine), (x0, edge), *tip]
    return np.asarray(pts, float)


def generate(instance_id: int) -> ObjectAsset:
    """Knife `instance_id`, from the spec in assets/categories/knife.yaml."""
    b = ObjectBuilder("knife", instance_id)
    p = b.p
    style = b.choice("styles")
    lo, hi = b.spec["blade_lengths"][style]
    length = lo + p["blade_length"] * (hi - lo)  # blade_length is a fraction of the style's range
    lo, hi = b.spec["blade_widths"][style]
    width = lo + p["blade_width"] * (hi - lo)
    hl, hw, ht = p["handle_length"], p["handle_width"], p["handle_thick"]
    rgba = b.rgba("colors")
    steel = b.rgba("blade_colors")

    # Handle: rounded-rectangle sections (flat sides for the fingers), wider at the butt.
    sections = []
    for x, sw, st in ((-hl, p["butt_flare"], 1.0), (-0.75 * hl, 1.0, 0.96), (0.0, 0.94, 0.9)):
        yz = superellipse(hw * sw / 2, ht * st / 2, 4.0, 20)
        sections.append(np.c_[np.full(len(yz), x), yz[:, 0], yz[:, 1] + ht / 2])
    b.mesh("handle", *hull(np.concatenate(sections)), collide=True, rgba=rgba,
           density=p["handle_density"])
    if style == "chef":
        for f in (0.2, 0.5, 0.8):  # the handle's top height falls linearly between sections
            top = ht * (0.9 + 0.08 * f if f < 0.75 else 0.96 + 0.16 * (f - 0.75))
            b.cylinder("handle", 0.0025, 0.0003, pos=(-f * hl, 0.0, top + 0.0001),
                       rgba=(0.75, 0.76, 0.78, 1.0), collide=False)

    spine = SPINE[style] * hw
    verts, faces = slab(_blade_outline(style, length, width, spine), 0.0, p["blade_thick"])
    b.mesh("blade", verts, faces, collide=True, rgba=steel, density=STEEL_DENSITY)

    centre_footprint(b)
    b.extra.update(style=float(STYLES.index(style)), blade_length_m=float(length),
                   blade_width_m=float(width))
    return b.finish()
