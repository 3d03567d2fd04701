"""Surface discs that stop at a mesh's creases and open edges.

A disc centred near a sharp edge (a thin plate's rim, a box's corner line) spreads its
Gaussian tail past the edge; stacked along a line of sight, those tails saturate and a
silhouette comes out about a standard deviation or two too wide, which is most of a thin
part's mask. Here such a disc is squeezed across the edge: its standard deviation towards
the edge is the distance to it over `reach_sigmas`, and it keeps its size along the edge.
"""

from __future__ import annotations

import numpy as np


def crease_segments(mesh, crease_deg: float) -> np.ndarray:
    """(E, 2, 3) the edges of `mesh` (a trimesh.Trimesh) whose two faces meet at more than
    `crease_deg` degrees, and its open edges (one face). Vertices are merged on a copy first,
    so a mesh stored with split vertices (flat shading) is not all open edges."""
    merged = mesh.copy()
    merged.merge_vertices()
    angles = merged.face_adjacency_angles
    sharp = merged.face_adjacency_edges[angles > np.radians(crease_deg)]
    edges = merged.edges_sorted
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = unique[counts == 1]
    index = np.concatenate([sharp.reshape(-1, 2), open_edges.reshape(-1, 2)])
    return np.asarray(merged.vertices)[index]


def crease_frames(points: np.ndarray, normals: np.ndarray, segments: np.ndarray, sigma: float,
                  reach_sigmas: float, min_fraction: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which discs lie within `reach_sigmas` * `sigma` of a crease, and for those the unit
    in-plane direction away from the nearest crease point (M, 3) and the standard deviation
    along it (M,): the distance over `reach_sigmas`, at least `min_fraction` * `sigma`.
    Returns (near (N,) bool, direction, sigma_across)."""
    from scipy.spatial import cKDTree

    near = np.zeros(len(points), bool)
    if len(segments) == 0 or len(points) == 0:
        return near, np.zeros((0, 3)), np.zeros(0)
    probe, probe_segment = _points_along(segments, sigma / 4.0)
    dist, idx = cKDTree(probe).query(points, distance_upper_bound=reach_sigmas * sigma)
    near = np.isfinite(dist)
    # the exact nearest point of the nearest probe's segment: a probe's own offset along the
    # edge would tilt the squeeze of a disc right at the edge by up to 45 degrees
    a, b = segments[probe_segment[idx[near]], 0], segments[probe_segment[idx[near]], 1]
    ab = b - a
    t = np.clip(((points[near] - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-30), 0.0, 1.0)
    away = points[near] - (a + t[:, None] * ab)
    dist = np.linalg.norm(away, axis=1)
    n = normals[near] / np.linalg.norm(normals[near], axis=1, keepdims=True)
    away -= (away * n).sum(1, keepdims=True) * n  # in the disc's plane
    length = np.linalg.norm(away, axis=1)
    flat = length < 1e-9 * max(sigma, 1e-12)
    # a disc right on the crease: across it, in the disc's plane (or any direction there when
    # the crease pierces the plane)
    across_edge = np.cross(n[flat], ab[flat])
    fallback = np.linalg.norm(across_edge, axis=1) < 1e-12
    across_edge[fallback] = _any_tangent(n[flat][fallback])
    away[flat] = across_edge
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    across = np.maximum(dist / reach_sigmas, min_fraction * sigma)
    return near, away, across


def _points_along(segments: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every `spacing` (or closer) along each segment (E, 2, 3), ends included, and the
    segment of each."""
    a, b = segments[:, 0], segments[:, 1]
    counts = np.maximum(1, np.ceil(np.linalg.norm(b - a, axis=1) / spacing).astype(int))
    seg = np.repeat(np.arange(len(segments)), counts + 1)
    t = np.concatenate([np.linspace(0.0, 1.0, c + 1) for c in counts])
    return a[seg] + t[:, None] * (b - a)[seg], seg


def _any_tangent(n: np.ndarray) -> np.ndarray:
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    t = np.cross(n, helper)
    return t / np.linalg.norm(t, axis=1, keepdims=True)
