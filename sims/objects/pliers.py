"""Procedural pliers lying flat on the table, jaws towards +x, handles towards -x.

`body`: the two closed steel jaws (a pair of convex slabs either side of the jaw line) and the
round pivot head with its rivet, at x = 0 before the instance is centred on its footprint.
`leg`: the two handles diverging backwards from the head, each a short steel neck and a chunky
plastic grip (2.1-2.5 cm tall, so a top-down grasp can close across both grips together).
Styles: `combination` (short, wide, blunt jaws), `needle` (long tapering nose), `cutter`
(short pointed diagonal-cutter jaws).

Two bodies, one per half as in real pliers, each a jaw and the handle on the other side: the
root holds the head, the -y jaw and the +y handle; the child `half` (the +y jaw and the -y
handle) is hinged about the vertical axis through the head's centre. q = 0 is closed (jaws
meeting, the natural stop); opening (q > 0) turns the child counter-clockwise seen from above,
its jaw tip towards +y and its handle away from the other one, up to 0.35 rad. `body` and `leg`
span both bodies. Each jaw collides with a slab whose root is tangent to the head's rim (under a
visual that reaches into the head), and each neck starts at the rim, so the halves never reach
into each other at any opening.
"""

from __future__ import annotations

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import centre_footprint, slab

STEEL_DENSITY = 7850.0
GRIP_DENSITY = 1100.0
STYLES = ("combination", "needle", "cutter")


def _jaw_outline(style: str, length: float, width: float, r: float, tangent: bool) -> np.ndarray:
    """Outline of the +y jaw (the -y jaw is its mirror image), from the head (radius r about the
    origin, width < 2 r) to the tip. The root is a chord of the head's rim (a jaw reaching into
    the head: the visual) or the tangent to the rim parallel to it (the jaw touching the head
    without entering it, even as it turns about the head's centre: the collision shape)."""
    gap = 0.0004  # a hairline between the closed jaws keeps the two slabs apart
    if style == "combination":
        tip = [(length, gap), (length, 0.32 * width), (0.8 * length, 0.42 * width)]
    elif style == "needle":
        tip = [(length, gap), (length - 0.002, 0.07 * width), (0.45 * length, 0.38 * width)]
    else:
        tip = [(length, gap), (0.55 * length, 0.4 * width)]
    ends = np.arcsin(np.array([width / 2, gap]) / r)
    if tangent:
        mid = ends.mean()
        ys = r * np.sin(ends)
        root = np.c_[(r - ys * np.sin(mid)) / np.cos(mid), ys]
    else:
        root = r * np.c_[np.cos(ends), np.sin(ends)]
    return np.asarray([*tip, *root], float)


def _grip_outline(start, u, v, g0: float, g_len: float, gw: float) -> np.ndarray:
    """xy outline of a grip `g_len` long from `g0` along the handle line start + s u (v across):
    flaring slightly, with a rounded butt."""
    along = [0.0, 0.6 * g_len, g_len - gw / 2]
    half = [0.4 * gw, 0.5 * gw, 0.5 * gw]
    local = [(s, h) for s, h in zip(along, half, strict=True)]
    local += [(g_len - gw / 2 + gw / 2 * np.cos(t), gw / 2 * np.sin(t))
              for t in np.linspace(-np.pi / 2, np.pi / 2, 9)]
    local += [(s, -h) for s, h in zip(along, half, strict=True)]
    return np.array([start + (g0 + s) * u + h * v for s, h in local])


def generate(instance_id: int) -> ObjectAsset:
    """Pliers `instance_id`, from the spec in assets/categories/pliers.yaml."""
    b = ObjectBuilder("pliers", instance_id)
    p = b.p
    style = b.choice("styles")
    steel, grip = b.rgba("steel_colors"), b.rgba("colors")
    lo, hi = b.spec["jaw_lengths"][style]
    jaw_len = lo + p["jaw_length"] * (hi - lo)  # jaw_length is a fraction of the style's range
    r, hh, jh = p["head_radius"], p["head_height"], p["jaw_height"]
    # the jaws' roots hug the head's rim, so the head must be a little wider than they are
    jaw_w = min(p["jaw_width"] * (0.8 if style == "needle" else 1.0), 1.9 * r)
    b.body("half", hinge_axis=(0, 0, 1), range=(0.0, b.spec["open_angle"]), damping=0.02,
           frictionloss=0.01)
    owner = {1.0: "half", -1.0: "base"}  # of each jaw; the handle on the same side is the other's

    for sign in (1.0, -1.0):
        for tangent in (False, True):
            outline = _jaw_outline(style, jaw_len, jaw_w, r, tangent) * [1.0, sign]
            b.mesh("body", *slab(outline, 0.0, jh, bevel=0.0015), collide=tangent, visible=not tangent,
                   body=owner[sign], rgba=steel, density=STEEL_DENSITY)
    b.cylinder("body", r, hh / 2, pos=(0, 0, hh / 2), rgba=steel, density=STEEL_DENSITY)
    b.cylinder("body", 0.35 * r, 0.0006, pos=(0, 0, hh + 0.0004), rgba=(0.5, 0.5, 0.52, 1.0),
               collide=False)

    length, spread = p["leg_length"], p["leg_spread"]
    gw, gh = p["grip_width"], p["grip_height"]
    for sign in (1.0, -1.0):
        # the two necks run side by side out of the head, just clear of each other
        start = np.array([-0.5 * r, sign * max(0.25 * r, p["neck_width"] / 2 + 0.0003)])
        end = np.array([-length, sign * spread / 2])
        u = (end - start) / np.linalg.norm(end - start)
        v = np.array([-u[1], u[0]])
        yaw = np.arctan2(u[1], u[0])
        kw = dict(body=owner[-sign], density=STEEL_DENSITY)
        # The neck starts where both its corners have left the head's rim, so the two halves
        # stay apart however far they turn about the head's centre.
        nw = p["neck_width"]
        s0 = 0.0
        for c in (-nw / 2, nw / 2):
            pu, pp = float((start + c * v) @ u), float((start + c * v) @ (start + c * v))
            if pu**2 - pp + r**2 > 0:
                s0 = max(s0, -pu + np.sqrt(pu**2 - pp + r**2))
        # A short neck only: every leg point keeps the tall grip within a finger's width, so
        # top-down grasp candidates on the leg always see something to close on. The grip
        # starts where it clears the other grip (the handles meet only at the head).
        g0 = max(r + p["neck_length"], s0)
        while True:
            outline = _grip_outline(start, u, v, g0, float(np.linalg.norm(end - start)) - g0, gw)
            if np.min(sign * outline[:, 1]) > 0.0003:
                break
            g0 += 0.001
        neck_mid = start + u * (s0 + g0 + 0.004) / 2
        nh = min(p["neck_height"], hh - 0.0022)  # lifted off the table, lower than the head
        b.box("leg", ((g0 + 0.004 - s0) / 2, nw / 2, nh / 2), pos=(*neck_mid, nh / 2 + 0.0012),
              quat=(np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)), rgba=steel, **kw)
        b.mesh("leg", *slab(outline, 0.0, gh, bevel=0.004), collide=True, body=owner[-sign], rgba=grip,
               density=GRIP_DENSITY)

    centre_footprint(b)
    b.extra.update(style=float(STYLES.index(style)), jaw_length_m=float(jaw_len))
    return b.finish()
