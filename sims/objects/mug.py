"""Procedural mugs: a hollow cup (body) with a round or square handle on its +x side, and in
some instances a drink inside (contents, visual only).

Collision geometry is convex primitives (a ring of wall boxes, a bottom disc, handle capsules);
the cup's visual is a revolved mesh.
"""

from __future__ import annotations

from sims.core.types import ObjectAsset
from sims.objects.builder import ObjectBuilder
from sims.objects.shapes import handle_arc, revolve, ring_of_boxes

WALL_SEGMENTS = 20


def _handle_path(shape: str, radius: float, height: float, p: dict) -> list[tuple[float, float]]:
    """(x, z) corners of the handle's centre line, from its upper root to its lower root."""
    zc = p["handle_center"] * height
    half_span = p["handle_span"] * height / 2
    # the end caps reach into the wall (attached) but not through it into the cup
    root = radius - p["wall"] + p["handle_radius"] + 0.0005
    tip = radius + p["handle_reach"]
    if shape == "square":
        return [(root, zc + half_span), (tip, zc + half_span), (tip, zc - half_span),
                (root, zc - half_span)]
    return handle_arc(root, tip, zc, half_span)


def generate(instance_id: int) -> ObjectAsset:
    """Mug `instance_id`, from the spec in assets/categories/mug.yaml."""
    b = ObjectBuilder("mug", instance_id)
    p = b.p
    shape = b.choice("handle_shapes")
    rgba = b.rgba()
    radius, height, wall, bottom = p["radius"], p["height"], p["wall"], p["bottom"]

    profile = [(0, 0), (radius, 0), (radius, height), (radius - wall, height),
               (radius - wall, bottom), (0, bottom)]
    b.mesh("body", *revolve(profile), rgba=rgba)
    ring_of_boxes(b, "body", radius, wall, bottom, height, WALL_SEGMENTS, rgba=rgba, visible=False)
    b.cylinder("body", radius, bottom / 2, pos=(0, 0, bottom / 2), rgba=rgba, visible=False)
    path = _handle_path(shape, radius, height, p)
    for (x0, z0), (x1, z1) in zip(path[:-1], path[1:], strict=False):
        b.capsule("handle", (x0, 0, z0), (x1, 0, z1), p["handle_radius"], rgba=rgba)
    has_drink = b.rng.uniform() < b.spec["contents_probability"]
    if has_drink:
        level = bottom + p["fill"] * (height - bottom)
        inner = radius - wall - 0.0005
        b.cylinder("contents", inner, (level - bottom) / 2, pos=(0, 0, (level + bottom) / 2),
                   rgba=b.rgba("drink_colors"), collide=False)
    b.extra.update(handle_shape=float(shape == "square"), contents=float(has_drink))
    return b.finish(scale=height)
