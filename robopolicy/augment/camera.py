"""The camera, the settings and the output shared by the torch and the gsplat renderers.

The camera convention is `sims.core.camera`'s: rotation columns = camera x right, y up, z
backwards; pixel centres at half-integers; depth along the optical axis (-z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sims.core.camera import focal_px, lookat_rotation


@dataclass(frozen=True)
class PinholeCamera:
    """A camera pose in the world frame (`sims.core.camera` convention) and its image."""

    pos: np.ndarray
    """(3,) centre, metres."""
    rot: np.ndarray
    """(3, 3) rotation; columns = camera x (right), y (up), z (backwards)."""
    fovy_deg: float
    width: int
    height: int

    @staticmethod
    def look_at(pos, lookat, fovy_deg: float, width: int, height: int,
                up=(0.0, 0.0, 1.0)) -> PinholeCamera:
        return PinholeCamera(np.asarray(pos, float), lookat_rotation(pos, lookat, up),
                             float(fovy_deg), int(width), int(height))

    @property
    def focal_px(self) -> float:
        return float(focal_px(self.height, self.fovy_deg))


@dataclass(frozen=True)
class RasterParams:
    """Settings of both renderers (the torch one uses all; gsplat the first three)."""

    near_m: float = 0.01
    """Gaussians whose centre is nearer than this along the optical axis are culled."""
    eps2d_px2: float = 0.3
    """Added to the 2-D covariance's diagonal (px^2): every splat covers about a pixel."""
    alpha_max: float = 0.999
    """Per-Gaussian alpha clamp; gsplat's kernels hard-code 0.999 (the INRIA code uses 0.99)."""
    alpha_min: float = 1.0 / 255.0
    """Contributions below this alpha are skipped."""
    transmittance_min: float = 1e-4
    """A pixel stops at the Gaussian that would bring its transmittance to this or below."""
    tile_px: int = 4
    """Tile side in pixels (torch renderer)."""
    chunk_elements: int = 1 << 20
    """Pixel x Gaussian elements composited per dense chunk (torch renderer)."""

    def __post_init__(self):
        if not 0 < self.alpha_min < self.alpha_max < 1:
            raise ValueError(f"RasterParams: want 0 < alpha_min ({self.alpha_min}) < alpha_max "
                             f"({self.alpha_max}) < 1")


@dataclass
class GaussianRender:
    """One rendered view."""

    rgb: torch.Tensor
    """(H, W, 3) colour, composited over the background."""
    depth: torch.Tensor
    """(H, W) expected depth along the optical axis, metres: the alpha-weighted mean depth of
    the Gaussian centres that contribute (0 where nothing does)."""
    alpha: torch.Tensor
    """(H, W) accumulated opacity."""
    segment: torch.Tensor | None
    """(H, W) int64 segment id with the largest total weight at the pixel, -1 where the
    background's weight (the final transmittance) is larger; None when not asked for."""
