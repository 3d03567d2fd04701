"""Reusable shape pieces for the category generators: revolved visual meshes, rings of wall
boxes that make hollow containers collide like hollow containers, convex hulls and slabs,
loops of boxes (finger rings, eyeglass rims), and centring an object on its footprint."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import trimesh

from sims.core.rotations import mat_to_quat, quat_to_mat
from sims.objects.builder import ObjectBuilder
from sims.objects.geometry import geom_mesh


def revolve(profile, sections: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of the surface swept by an (r, z) profile about +z. List the profile
    counter-clockwise in the (r, z) plane (outside going up) so the faces point outwards."""
    mesh = trimesh.creation.revolve(np.asarray(profile, float)[::-1], sections=sections)
    return mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32)


def ring_of_boxes(builder, part: str, radius: float, wall: float, z0: float, z1: float,
                  segments: int = 20, body: str = "base", z_axis_offset=(0.0, 0.0), **kw) -> None:
    """A cylindrical wall of `segments` boxes, outer radius `radius`, thickness `wall`, from
    height z0 to z1 (convex pieces, so a gripper can reach into the container)."""
    half_w = radius * np.tan(np.pi / segments) * 1.05  # slight overlap closes the gaps
    rc = radius - wall / 2
    for i in range(segments):
        a = 2 * np.pi * i / segments
        builder.box(part, (wall / 2, half_w, (z1 - z0) / 2),
                    pos=(z_axis_offset[0] + rc * np.cos(a), z_axis_offset[1] + rc * np.sin(a),
                         (z0 + z1) / 2),
                    quat=(np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)), body=body, **kw)



def frustum_of_boxes(builder, part: str, r_bottom: float, r_top: float, wall: float, z0: float,
                     z1: float, segments: int = 20, **kw) -> None:
    """A conical wall of `segments` boxes whose outer faces follow the cone from radius r_bottom
    at z0 to r_top at z1 (each box leaning about its tangent): tapered buckets and kettles."""
    tilt = np.arctan2(r_top - r_bottom, z1 - z0)  # outward lean
    half_w = max(r_bottom, r_top) * np.tan(np.pi / segments) * 1.05  # overlap closes the gaps
    half_len = np.hypot(z1 - z0, r_top - r_bottom) / 2
    rc = (r_bottom + r_top) / 2 - wall / 2 * np.cos(tilt)
    zc = (z0 + z1) / 2 + wall / 2 * np.sin(tilt)
    lean = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0], [-np.sin(tilt), 0, np.cos(tilt)]])
    for i in range(segments):
        a = 2 * np.pi * i / segments
        spin = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        builder.box(part, (wall / 2, half_w, half_len), pos=(rc * np.cos(a), rc * np.sin(a), zc),
                    quat=mat_to_quat(spin @ lean), **kw)

def hull(points) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and outward faces of the convex hull of 3-D points."""
    m = trimesh.Trimesh(np.asarray(points, float)).convex_hull
    return m.vertices.astype(np.float32), m.faces.astype(np.int32)


def slab(outline, z0: float, z1: float, bevel: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Convex slab over a 2-D outline (xy) from z0 to z1; `bevel` rounds its top edge with that
    radius (shrinking the outline towards its centroid), so flat parts do not look cut out of
    sheet while their sides stay vertical for a gripper."""
    o = np.asarray(outline, float)
    c = o.mean(axis=0)
    d = o - c
    dist = np.maximum(np.linalg.norm(d, axis=1), 1e-9)[:, None]
    layers = [np.c_[o, np.full(len(o), z0)]]
    for t in np.linspace(0.0, np.pi / 2, 4 if bevel > 0 else 1):
        inset = bevel * (1 - np.cos(t))
        z = z1 - bevel * (1 - np.sin(t))
        layers.append(np.c_[c + d * np.maximum(0.0, 1 - inset / dist), np.full(len(o), z)])
    return hull(np.concatenate(layers))


def superellipse(a: float, c: float, power: float, n: int, start: float = 0.0) -> np.ndarray:
    """(n, 2) counter-clockwise points of |u/a|^p + |v/c|^p = 1 (p = 2: an ellipse), starting at
    angle `start`."""
    t = start + 2 * np.pi * np.arange(n) / n
    cs, sn = np.cos(t), np.sin(t)
    e = 2.0 / power
    return np.c_[a * np.sign(cs) * np.abs(cs) ** e, c * np.sign(sn) * np.abs(sn) ** e]


def loop_boxes(b: ObjectBuilder, part: str, path, wall: float, depth: float, origin, e1, e2,
               **kw) -> None:
    """A closed loop of boxes along the counter-clockwise 2-D centre line `path`, drawn in the
    plane through `origin` spanned by the unit vectors e1, e2: `wall` thick in the plane,
    `depth` thick across it. Convex pieces, so a finger can reach through the loop."""
    path = np.asarray(path, float)
    o, e1, e2 = (np.asarray(v, float) for v in (origin, e1, e2))
    normal = np.cross(e1, e2)
    for p0, p1 in zip(path, np.roll(path, -1, axis=0), strict=True):
        d = p1 - p0
        length = float(np.linalg.norm(d))
        a1 = (d[0] * e1 + d[1] * e2) / length
        rot = np.stack([a1, np.cross(normal, a1), normal], axis=1)
        mid = (p0 + p1) / 2
        # lengthened by half the wall so neighbours overlap and the outer corners close
        b.box(part, (length / 2 + wall / 2, wall / 2, depth / 2), pos=o + mid[0] * e1 + mid[1] * e2,
              quat=mat_to_quat(rot), **kw)


def loop_mesh(path, wall: float, depth: float, origin, e1, e2) -> tuple[np.ndarray, np.ndarray]:
    """A smooth visual tube of rectangular section along a closed counter-clockwise 2-D path
    (same conventions as `loop_boxes`)."""
    path = np.asarray(path, float)
    tangent = np.roll(path, -1, axis=0) - np.roll(path, 1, axis=0)
    out = np.c_[tangent[:, 1], -tangent[:, 0]] / np.linalg.norm(tangent, axis=1)[:, None]
    o, e1, e2 = (np.asarray(v, float) for v in (origin, e1, e2))
    normal = np.cross(e1, e2)
    rings = []
    for r, h in ((wall / 2, -depth / 2), (wall / 2, depth / 2), (-wall / 2, depth / 2),
                 (-wall / 2, -depth / 2)):
        q = path + r * out
        rings.append(o + q[:, :1] * e1 + q[:, 1:] * e2 + h * normal)
    n = len(path)
    verts = np.concatenate(rings)
    faces = []
    for k in range(4):
        a, c = k * n, ((k + 1) % 4) * n
        for i in range(n):
            j = (i + 1) % n
            faces += [(a + i, a + j, c + j), (a + i, c + j, c + i)]
    m = trimesh.Trimesh(verts, np.asarray(faces), process=True)
    m.fix_normals()
    return m.vertices.astype(np.float32), m.faces.astype(np.int32)


def centre_footprint(b: ObjectBuilder) -> None:
    """Shift the object (joints at 0) so the origin is the centre of its xy bounding box, bottom
    at z = 0 unchanged: the root body's geoms move, and so do the bodies attached to the root."""
    root = b.bodies[0].name
    frames = {}
    for body in b.bodies:  # a parent always precedes its children
        tf = np.eye(4)
        tf[:3, :3] = quat_to_mat(np.asarray(body.quat))
        tf[:3, 3] = body.pos
        frames[body.name] = tf if body.parent is None else frames[body.parent] @ tf
    bounds = np.array([geom_mesh(g, b.meshes).apply_transform(frames[g.body]).bounds for g in b.geoms])
    lo, hi = bounds[:, 0].min(axis=0), bounds[:, 1].max(axis=0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, 0.0])
    for i, g in enumerate(b.geoms):
        if g.body != root:
            continue
        if g.type == "mesh":
            verts, faces = b.meshes[g.mesh]
            b.meshes[g.mesh] = ((verts + shift).astype(np.float32), faces)
        else:
            b.geoms[i] = replace(g, pos=tuple(float(v) for v in np.asarray(g.pos) + shift))
    for i, body in enumerate(b.bodies):
        if body.parent == root:
            b.bodies[i] = replace(body, pos=tuple(float(v) for v in np.asarray(body.pos) + shift))


def handle_arc(root: float, tip: float, zc: float, half_span: float, n: int = 7
               ) -> list[tuple[float, float]]:
    """(x, z) points of a D-shaped handle's centre line: a half ellipse from its upper root
    (x=root, z=zc+half_span) out to x=tip and back to its lower root."""
    phis = np.linspace(np.pi / 2, -np.pi / 2, n)
    return [(root + (tip - root) * np.cos(f), zc + half_span * np.sin(f)) for f in phis]
