"""Point-set helpers of the env's observations: farthest-point subsampling, principal axes, and
the object point cloud of a depth image."""

from __future__ import annotations

import numpy as np


def farthest_point_indices(points: np.ndarray, n: int) -> np.ndarray:
    """`n` indices into `points` (M, 3) spread by farthest-point sampling from point 0 (no
    randomness: the same cloud always gives the same choice); all of them, repeated in order,
    when M <= n."""
    m = len(points)
    if m <= n:
        return np.arange(n) % m
    xyz = [np.ascontiguousarray(points[:, k], np.float64) for k in range(3)]
    idx = np.zeros(n, np.int64)
    dist, d2, tmp = np.full(m, np.inf), np.empty(m), np.empty(m)
    for i in range(1, n):  # a loop over the n samples; each step is vectorised over the M points
        d2.fill(0.0)
        for c in xyz:  # squared distance to the last pick, in preallocated buffers (~5x faster)
            np.subtract(c, c[idx[i - 1]], out=tmp)
            d2 += tmp * tmp
        np.minimum(dist, d2, out=dist)
        idx[i] = np.argmax(dist)
    return idx


def principal_axis(points: np.ndarray) -> np.ndarray:
    """Unit principal axis of a point set, sign fixed so its largest component is positive."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis


def depth_cloud(origin: np.ndarray, rays: np.ndarray, depth_m: np.ndarray, keep: np.ndarray,
                flag: np.ndarray, n_points: int,
                workspace: tuple[tuple[float, float], ...]) -> np.ndarray:
    """(n_points, 4) float32: the pixels in `keep` back-projected (``origin + depth * ray``, with
    `rays` from `sims.core.camera.pixel_rays`), those inside `workspace` ((lo, hi) per axis)
    subsampled by farthest points, each with its `flag` (the target-part mask) as a 4th value.
    Fewer points than `n_points` are repeated; none gives zeros."""
    pts = origin + depth_m.reshape(-1, 1) * rays
    keep = keep.reshape(-1).copy()
    for axis, (lo, hi) in enumerate(workspace):
        keep &= (pts[:, axis] >= lo) & (pts[:, axis] <= hi)
    cloud = np.concatenate([pts, flag.reshape(-1, 1)], axis=1)[keep]
    if len(cloud) == 0:
        return np.zeros((n_points, 4), np.float32)
    return cloud[farthest_point_indices(cloud[:, :3], n_points)].astype(np.float32)
