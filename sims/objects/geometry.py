"""Geometry helpers shared by the category generators: primitive placement, surface sampling
and category spec loading."""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np
import trimesh
import yaml

from sims.core.types import GeomSpec
from sims.paths import assets_dir

POINTS_PER_M2 = 60_000.0  # surface sampling density for part point clouds (~4 mm spacing)


@cache
def load_category_spec(category: str) -> dict:
    """Read `assets/categories/<category>.yaml`."""
    path = assets_dir() / "categories" / f"{category}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"category spec {path} not found (unknown category {category!r}?)")
    with open(path) as f:
        return yaml.safe_load(f)


def instance_rng(category: str, instance_id: int) -> np.random.Generator:
    """A generator seeded only by (category, instance_id): same instance on every machine."""
    return np.random.default_rng(zlib.crc32(f"{category}:{instance_id}".encode()))


def draw_params(spec: dict, rng: np.random.Generator) -> dict[str, float]:
    """Draw each `[low, high]` range of a category spec's `params` uniformly, in sorted key order."""
    return {k: float(rng.uniform(*spec["params"][k])) for k in sorted(spec["params"])}


def quat_from_z(direction: np.ndarray) -> tuple[float, float, float, float]:
    """wxyz quaternion rotating +z onto `direction` (used to orient capsules and cylinders)."""
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0])
    c = float(np.dot(z, d))
    if c > 1 - 1e-9:
        return (1.0, 0.0, 0.0, 0.0)
    if c < -1 + 1e-9:
        return (0.0, 1.0, 0.0, 0.0)
    axis = np.cross(z, d)
    axis /= np.linalg.norm(axis)
    half = np.arccos(c) / 2
    return (float(np.cos(half)), *(float(a) for a in axis * np.sin(half)))


def capsule_between(name: str, p0, p1, radius: float, part: str, **kw) -> GeomSpec:
    """A capsule whose segment runs from p0 to p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    half = np.linalg.norm(p1 - p0) / 2
    pos = tuple(float(v) for v in (p0 + p1) / 2)
    return GeomSpec(name, "capsule", (radius, half), part, pos=pos, quat=quat_from_z(p1 - p0), **kw)


def geom_mesh(g: GeomSpec, meshes: dict | None = None) -> trimesh.Trimesh:
    """A triangle mesh of a geom, posed in its body frame."""
    if g.type == "box":
        m = trimesh.creation.box(extents=2 * np.asarray(g.size))
    elif g.type == "sphere":
        m = trimesh.creation.icosphere(subdivisions=2, radius=g.size[0])
    elif g.type == "capsule":
        m = trimesh.creation.capsule(height=2 * g.size[1], radius=g.size[0], count=[12, 12])
    elif g.type == "cylinder":
        m = trimesh.creation.cylinder(radius=g.size[0], height=2 * g.size[1], sections=24)
    elif g.type == "ellipsoid":
        m = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        m.apply_scale(np.asarray(g.size))
    elif g.type == "mesh":
        verts, faces = (meshes or {})[g.mesh]
        m = trimesh.Trimesh(verts, faces, process=False)
    else:
        raise ValueError(f"geom {g.name}: unsupported type {g.type!r}")
    tf = trimesh.transformations.quaternion_matrix(g.quat)
    tf[:3, 3] = g.pos
    m.apply_transform(tf)
    return m


def sample_surface(geoms: list[GeomSpec], seed: int, meshes: dict | None = None,
                   density: float = POINTS_PER_M2) -> tuple[np.ndarray, np.ndarray]:
    """Sample surface points and normals from geoms (body frame), count proportional to area."""
    pts, nrm = [], []
    for i, g in enumerate(geoms):
        m = geom_mesh(g, meshes)
        n = max(16, int(round(m.area * density)))
        p, face = trimesh.sample.sample_surface(m, n, seed=seed + i)
        pts.append(p)
        nrm.append(m.face_normals[face])
    return np.concatenate(pts).astype(np.float32), np.concatenate(nrm).astype(np.float32)


def _to_local(g: GeomSpec, pts: np.ndarray) -> np.ndarray:
    rot = trimesh.transformations.quaternion_matrix(g.quat)[:3, :3]
    return (np.asarray(pts, float) - np.asarray(g.pos)) @ rot


def inside_geom(g: GeomSpec, pts: np.ndarray, margin: float = 0.0,
                meshes: dict | None = None) -> np.ndarray:
    """Which points (body frame) lie deeper than `margin` inside geom `g` (mesh geoms: inside
    their convex hull, which is what the simulators collide with)."""
    q = _to_local(g, pts)
    s = np.asarray(g.size, float)
    if g.type == "box":
        return np.all(np.abs(q) < s - margin, axis=1)
    if g.type == "sphere":
        return np.linalg.norm(q, axis=1) < s[0] - margin
    if g.type == "capsule":
        z = np.clip(q[:, 2], -s[1], s[1])
        return np.linalg.norm(q - np.c_[np.zeros((len(q), 2)), z], axis=1) < s[0] - margin
    if g.type == "cylinder":
        return (np.hypot(q[:, 0], q[:, 1]) < s[0] - margin) & (np.abs(q[:, 2]) < s[1] - margin)
    if g.type == "ellipsoid":
        shrunk = np.maximum(s - margin, 1e-9)
        return np.sum((q / shrunk) ** 2, axis=1) < 1.0
    if g.type == "mesh":
        from scipy.spatial import ConvexHull

        hull = ConvexHull((meshes or {})[g.mesh][0])
        return np.all(q @ hull.equations[:, :3].T + hull.equations[:, 3] < -margin, axis=1)
    raise ValueError(f"geom {g.name}: unsupported type {g.type!r}")
