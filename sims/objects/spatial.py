"""Spatial parts (left/right/front/back/top/bottom/middle of an object), computed from the
object's point cloud in its current world pose, so they change when the object turns.

Following PartInstruct, a side is the slab of the object's points nearest that side: the
points within `SIDE_FRACTION` of the object's extent from its extreme along the direction
(robot base frame, see `sims.core.directions`). `middle` is the central slab along the
object's longest horizontal axis.
"""

from __future__ import annotations

import numpy as np

from sims.core.directions import DIRECTIONS

SPATIAL_PARTS: tuple[str, ...] = ("left", "right", "front", "back", "top", "bottom", "middle")
SIDE_FRACTION = 1.0 / 3.0


def spatial_part_masks(points: np.ndarray, fraction: float = SIDE_FRACTION) -> dict[str, np.ndarray]:
    """{spatial part: boolean mask over `points` (N, 3), world frame}."""
    pts = np.asarray(points, float)
    masks = {}
    for name, d in DIRECTIONS.items():
        s = pts @ d
        masks[name] = s >= s.max() - fraction * (s.max() - s.min())
    horizontal = pts[:, :2] - pts[:, :2].mean(axis=0)
    _, _, vt = np.linalg.svd(horizontal, full_matrices=False)
    s = horizontal @ vt[0]
    lo, hi = s.min(), s.max()
    centre, half = (lo + hi) / 2, fraction * (hi - lo) / 2
    masks["middle"] = np.abs(s - centre) <= half
    return masks
