"""Procedural bottles standing upright: a round, square or oval body (with a paper label band)
rising into a rounded shoulder. Capped bottles have a screw cap (lid) right on the shoulder, over
the neck finish; open bottles have a straight or flared neck ending in a lip around the opening
(mouth). Every part is rigid, on the base body.

Collision geometry is the body primitive (cylinder, box, or an extruded ellipse), convex hulls
for the shoulder and neck, and cylinders for the lip and the cap.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder

OUTLINE_POINTS = 32  # a multiple of 8, so square outlines include their corners
OVERLAP = 0.0015  # stacked pieces overlap so their touching faces are buried, not sampled
BODY_DENSITY = 600.0  # a partly filled bottle, averaged over its solid collision shape
LID_DENSITY = 400.0  # a hollow plastic cap


def _outline_radius(shape: str, r: float, ratio: float, theta: np.ndarray) -> np.ndarray:
    """Distance from the axis to the body's cross-section outline at angles `theta`."""
    c, s = np.cos(theta), np.sin(theta)
    if shape == "square":
        return r / np.maximum(np.abs(c), np.abs(s))
    if shape == "oval":
        a, b = r, r * ratio
        return a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)
    return np.full_like(theta, r)


def _prism(outline: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Convex mesh of a 2-D outline extruded from z0 to z1."""
    pts = np.concatenate([np.c_[outline, np.full(len(outline), z)] for z in (z0, z1)])
    hull = trimesh.convex.convex_hull(pts)
    return hull.vertices, hull.faces


def _frustum(r0: float, r1: float, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Convex mesh of a truncated cone, radius r0 at z0 to r1 at z1."""
    theta = np.linspace(0, 2 * np.pi, OUTLINE_POINTS, endpoint=False)
    ring = np.c_[np.cos(theta), np.sin(theta)]
    hull = trimesh.convex.convex_hull(np.concatenate([np.c_[r * ring, np.full(len(ring), z)]
                                                      for r, z in ((r0, z0), (r1, z1))]))
    return hull.vertices, hull.faces


def _shoulder(shape: str, r: float, ratio: float, r_top: float, z0: float, z1: float):
    """Convex hull of the body outline at z0 narrowing, rounded, to a circle of r_top at z1."""
    theta = np.linspace(0, 2 * np.pi, OUTLINE_POINTS, endpoint=False)
    base = _outline_radius(shape, r, ratio, theta)
    pts = []
    for t in np.linspace(0, 1, 6):
        f = 1 - np.cos(t * np.pi / 2)  # radius falls slowly at first: a rounded, convex shoulder
        rad = base + (r_top - base) * f
        pts.append(np.c_[rad * np.cos(theta), rad * np.sin(theta), np.full(len(theta), z0 + t * (z1 - z0))])
    hull = trimesh.convex.convex_hull(np.concatenate(pts))
    return hull.vertices, hull.faces


def generate(instance_id: int) -> ObjectAsset:
    """Bottle `instance_id`, from the spec in assets/categories/bottle.yaml."""
    b = ObjectBuilder("bottle", instance_id)
    p = b.p
    shape = b.choice("body_shapes")
    rgba = b.rgba()
    capped = bool(b.rng.uniform() < b.spec["cap_probability"])
    r, ratio, h_body = p["body_radius"], p["oval_ratio"], p["body_height"]
    half_min = r * ratio if shape == "oval" else r  # narrowest half-width of the body

    z_b = h_body
    if shape == "round":
        b.cylinder("body", r, h_body / 2, pos=(0, 0, h_body / 2), rgba=rgba, density=BODY_DENSITY)
    elif shape == "square":
        b.box("body", (r, r, h_body / 2), pos=(0, 0, h_body / 2), rgba=rgba, density=BODY_DENSITY)
    else:
        theta = np.linspace(0, 2 * np.pi, OUTLINE_POINTS, endpoint=False)
        rad = _outline_radius(shape, r, ratio, theta)
        b.mesh("body", *_prism(np.c_[rad * np.cos(theta), rad * np.sin(theta)], 0.0, h_body),
               collide=True, rgba=rgba, density=BODY_DENSITY)
    _label(b, shape, r, ratio, h_body, p["label_height"])

    if capped:
        r_lid = min(p["lid_radius"], 0.85 * half_min)
        r_top = r_lid - OVERLAP
    else:
        r_neck = min(p["neck_radius"], 0.6 * half_min)
        r_top = min(r_neck * p["neck_flare"], 0.8 * half_min)
    z_s = z_b + p["shoulder_height"]
    b.mesh("body", *_shoulder(shape, r, ratio, r_top, z_b - OVERLAP, z_s), collide=True, rgba=rgba,
           density=BODY_DENSITY)

    if capped:
        h_lid = p["lid_height"]
        z0 = z_s - OVERLAP
        b.cylinder("lid", r_lid, h_lid / 2, pos=(0, 0, z0 + h_lid / 2), rgba=b.rgba("lid_colors"),
                   density=LID_DENSITY)
        top = z0 + h_lid
    else:
        z1 = z_s + p["neck_height"]
        b.mesh("neck", *_frustum(r_top, r_neck, z_s - OVERLAP, z1), collide=True, rgba=rgba,
               density=BODY_DENSITY)
        # the lip is 1 mm proud of the neck and overlaps its top by 1 mm, so the neck's end
        # face is buried and a grasp on the neck finds the lip only as a thin bead
        r_lip, z0 = r_neck + 0.001, z1 - 0.001
        h_lip = p["lip_height"] + 0.001
        b.cylinder("mouth", r_lip, h_lip / 2, pos=(0, 0, z0 + h_lip / 2), rgba=rgba, density=BODY_DENSITY)
        top = z0 + h_lip
        b.cylinder("mouth", r_neck - 0.0015, 0.0002, pos=(0, 0, top + 0.0002),
                   rgba=(0.05, 0.05, 0.06, 1.0), collide=False)  # the dark opening
    b.extra.update(body_shape=float(b.spec["body_shapes"].index(shape)), capped=float(capped))
    return b.finish(scale=top)


def _label(b: ObjectBuilder, shape: str, r: float, ratio: float, h_body: float, frac: float) -> None:
    """A paper label band around the middle of the body (visual only, part of the body)."""
    half = frac * h_body / 2
    kw = dict(rgba=b.rgba("label_colors"), collide=False)
    if shape == "round":
        b.cylinder("body", r + 0.0005, half, pos=(0, 0, h_body / 2), **kw)
    elif shape == "square":
        b.box("body", (r + 0.0005, r + 0.0005, half), pos=(0, 0, h_body / 2), **kw)
    else:
        theta = np.linspace(0, 2 * np.pi, OUTLINE_POINTS, endpoint=False)
        rad = _outline_radius(shape, r, ratio, theta) + 0.0005
        b.mesh("body", *_prism(np.c_[rad * np.cos(theta), rad * np.sin(theta)],
                               h_body / 2 - half, h_body / 2 + half), **kw)
