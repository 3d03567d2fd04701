"""Procedural mugs: a hollow cup (parts: body) with a round or square handle (part: handle).

The handle sticks out along the object's +x axis. Collision geometry is convex primitives (a ring
of wall boxes, a bottom disc, handle capsules); the cup's visual is a revolved mesh.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sims.core.types import BodySpec, GeomSpec, ObjectAsset, Part
from sims.objects.geometry import (
    capsule_between,
    draw_params,
    instance_rng,
    load_category_spec,
    sample_surface,
)

WALL_SEGMENTS = 20


def _cup_mesh(radius: float, height: float, wall: float, bottom: float):
    """A watertight hollow cup, revolved from its (r, z) profile."""
    profile = np.array([[0, 0], [radius, 0], [radius, height], [radius - wall, height],
                        [radius - wall, bottom], [0, bottom]], float)
    mesh = trimesh.creation.revolve(profile[::-1], sections=32)
    return mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32)


def _wall_boxes(radius: float, height: float, wall: float, bottom: float, rgba) -> list[GeomSpec]:
    geoms = []
    half_w = radius * np.tan(np.pi / WALL_SEGMENTS) * 1.05  # slight overlap closes the gaps
    rc = radius - wall / 2
    zc = (height + bottom) / 2
    for i in range(WALL_SEGMENTS):
        a = 2 * np.pi * i / WALL_SEGMENTS
        geoms.append(GeomSpec(
            f"body_wall{i:02d}", "box", (wall / 2, half_w, (height - bottom) / 2), "body",
            pos=(rc * np.cos(a), rc * np.sin(a), zc), quat=(np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)),
            rgba=rgba, visible=False))
    geoms.append(GeomSpec("body_bottom", "cylinder", (radius, bottom / 2), "body",
                          pos=(0.0, 0.0, bottom / 2), rgba=rgba, visible=False))
    return geoms


def _handle(shape: str, radius: float, height: float, p: dict, rgba) -> list[GeomSpec]:
    r = p["handle_radius"]
    zc = p["handle_center"] * height
    half_span = p["handle_span"] * height / 2
    root = radius - r  # handle ends are buried in the wall so they are attached
    tip = radius + p["handle_reach"]
    if shape == "square":
        corners = [(root, zc + half_span), (tip, zc + half_span), (tip, zc - half_span),
                   (root, zc - half_span)]
    else:
        phis = np.linspace(np.pi / 2, -np.pi / 2, 7)
        corners = [(root + (tip - root) * np.cos(f), zc + half_span * np.sin(f)) for f in phis]
    return [
        capsule_between(f"handle_{i}", (x0, 0.0, z0), (x1, 0.0, z1), r, "handle", rgba=rgba)
        for i, ((x0, z0), (x1, z1)) in enumerate(zip(corners[:-1], corners[1:], strict=False))
    ]


def make_mug(instance_id: int) -> ObjectAsset:
    """Generate mug `instance_id` deterministically from the spec in assets/categories/mug.yaml."""
    spec = load_category_spec("mug")
    rng = instance_rng("mug", instance_id)
    p = draw_params(spec, rng)
    shape = spec["handle_shapes"][int(rng.integers(len(spec["handle_shapes"])))]
    color = spec["colors"][int(rng.integers(len(spec["colors"])))]
    rgba = (*color, 1.0)
    radius, height = p["radius"], p["height"]

    verts, faces = _cup_mesh(radius, height, p["wall"], p["bottom"])
    visual = GeomSpec("body_visual", "mesh", (), "body", mesh="cup", rgba=rgba, collide=False)
    body_geoms = _wall_boxes(radius, height, p["wall"], p["bottom"], rgba)
    handle_geoms = _handle(shape, radius, height, p, rgba)

    seed = int(rng.integers(2**31))
    parts = {}
    for name, geoms in (("handle", handle_geoms), ("body", body_geoms)):
        pts, nrm = sample_surface(geoms, seed)
        if name == "handle":  # drop handle points buried inside the wall
            keep = np.hypot(pts[:, 0], pts[:, 1]) > radius
            pts, nrm = pts[keep], nrm[keep]
        parts[name] = Part(name, [g.name for g in geoms] + (["body_visual"] if name == "body" else []),
                           points=pts, normals=nrm)

    return ObjectAsset(
        category="mug", instance_id=instance_id, scale=height,
        bodies=[BodySpec("base")],
        geoms=[visual, *body_geoms, *handle_geoms],
        parts=parts,
        meshes={"cup": (verts, faces)},
        params={**p, "handle_shape": float(shape == "square")},
    )
