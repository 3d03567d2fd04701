"""Procedural buckets: a hollow body that widens towards the rim (a ring of tilted wall boxes on
a bottom disc, with a finer revolved visual mesh including the rolled rim) and a bail handle.

The bail is an arc of capsules (a semicircle or a taller half ellipse) in the y-z
plane, hinged in two ears on the body's +-y sides: its body's origin is the pivot point between
the ears, hinge axis +y, q = 0 upright, +-1.4 rad folded down outside the rim towards +-x.
Joint friction and damping hold it where it is left, upright included. Styles: a plastic sand pail
(thick plastic bail), a metal paint tin (wire bail with a grip sleeve) and a plastic utility
bucket (bail with a moulded grip).
"""

from __future__ import annotations

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import frustum_of_boxes, revolve

FOLD_LIMIT = 1.4  # rad each way; further and the bail would swing into the rim
HANDLE_DENSITY = 1100.0  # plastic; a steel wire is thin enough that this is close too
ARC_SEGMENTS = 10


def _draw(b: ObjectBuilder, style_spec: dict) -> dict:
    """The style's own ranges, drawn from the instance's stream in sorted key order."""
    out = {}
    for k in sorted(style_spec):
        v = style_spec[k]
        if isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
            out[k] = float(b.rng.uniform(*v))
    return out


def _pick(b: ObjectBuilder, options) -> tuple[float, float, float, float]:
    return (*map(float, options[int(b.rng.integers(len(options)))]), 1.0)


def generate(instance_id: int) -> ObjectAsset:
    """Bucket `instance_id`, from the spec in assets/categories/bucket.yaml."""
    b = ObjectBuilder("bucket", instance_id)
    p = b.p
    names = list(b.spec["styles"])
    style = names[int(b.rng.integers(len(names)))]
    ss = b.spec["styles"][style]
    q = _draw(b, ss)
    rgba = _pick(b, ss["colors"])
    handle_rgba = _pick(b, ss["handle_colors"])
    sleeve_rgba = _pick(b, ss["sleeve_colors"]) if ss["sleeve_radius"] else None

    r_top = p["top_radius"]
    r_bot = q["taper"] * r_top
    height = p["height_ratio"] * 2 * r_top
    wall, bottom = p["wall"], p["bottom"]

    def radius_at(z):
        return r_bot + (r_top - r_bot) * z / height

    lip = 0.004 if style == "pail" else 0.0025  # the rolled rim, visual only
    lip_h = 0.008 if style == "pail" else 0.005
    profile = [(0, 0), (r_bot, 0), (radius_at(height - lip_h), height - lip_h),
               (radius_at(height - lip_h) + lip, height - lip_h), (r_top + lip, height),
               (r_top - wall, height), (r_bot - wall, bottom), (0, bottom)]
    b.mesh("body", *revolve(profile, 48), rgba=rgba)
    kw = dict(rgba=rgba, visible=False, density=ss["density"])
    segments = 20 if r_top < 0.08 else 24
    frustum_of_boxes(b, "body", radius_at(bottom), r_top, wall, bottom, height, segments, **kw)
    b.cylinder("body", r_bot, bottom / 2, pos=(0, 0, bottom / 2), **kw)

    # Ears: lugs on the outside of the wall at +-y, the bail's ends pivot in them.
    z_ear = height - p["ear_drop"]
    r_ear = radius_at(z_ear)
    ear_t = 0.003
    for s in (-1, 1):
        b.box("body", (0.009, ear_t / 2 + 0.001, 0.009),
              pos=(0, s * (r_ear + ear_t / 2 - 0.001), z_ear), rgba=rgba, density=ss["density"])

    hr = q["handle_radius"]
    span = r_ear + ear_t + hr  # the bail's ends sit against the ears' outer faces
    rise = p["handle_rise"] * span
    mass, lever = _bail_mass(span, rise, hr, q.get("sleeve_radius"), p["sleeve_half_len"])
    # Friction above the largest gravity torque. MuJoCo's joint friction still yields under a
    # steady load, so damping in proportion to the bail's weight makes a tilted bail sink slowly
    # (about 0.02 rad/s at 0.5 rad); upright, it stays put for minutes.
    handle = b.body("handle", pos=(0.0, 0.0, z_ear), hinge_axis=(0, 1, 0),
                    range=(-FOLD_LIMIT, FOLD_LIMIT), damping=float(max(0.3, 20.0 * mass)),
                    frictionloss=float(max(0.02, 2.0 * mass * 9.81 * lever)))
    # The arc's ends are raised by its radius so the handle lies above its own frame's z = 0.
    phis = np.linspace(0.0, np.pi, ARC_SEGMENTS + 1)
    pts = [(0.0, span * np.cos(f), hr + rise * np.sin(f)) for f in phis]
    for p0, p1 in zip(pts[:-1], pts[1:], strict=True):
        b.capsule("handle", p0, p1, hr, body=handle, rgba=handle_rgba, density=HANDLE_DENSITY)
    if sleeve_rgba is not None:
        half = p["sleeve_half_len"]
        z_end = hr + rise * np.sqrt(max(0.0, 1 - (half / span) ** 2))
        z_mid = (hr + rise + z_end) / 2  # the wire stays inside the straight sleeve
        b.capsule("handle", (0, -half, z_mid), (0, half, z_mid), q["sleeve_radius"], body=handle,
                  rgba=sleeve_rgba, density=HANDLE_DENSITY)
    b.extra.update(style=float(names.index(style)), **q)
    return b.finish(scale=float(height))


def _bail_mass(span: float, rise: float, wire_r: float, sleeve_r: float | None,
               sleeve_half: float) -> tuple[float, float]:
    """Mass of the bail (kg) and the height of its centre of mass above the pivots (m)."""
    length = np.pi * np.sqrt((span**2 + rise**2) / 2)  # half an ellipse's perimeter
    mass = HANDLE_DENSITY * np.pi * wire_r**2 * length
    lever = 2 * rise / np.pi
    if sleeve_r:
        sleeve = HANDLE_DENSITY * np.pi * sleeve_r**2 * 2 * sleeve_half
        lever = (mass * lever + sleeve * rise) / (mass + sleeve)
        mass += sleeve
    return float(mass), float(lever)
