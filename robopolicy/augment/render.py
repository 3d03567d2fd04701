"""Render a GaussianScene: gsplat's CUDA rasterizer when torch sees a GPU, else the torch one.

The choice is made by `torch.cuda.is_available()`, never by trying gsplat: on a CPU-only
machine gsplat imports but its rasterization fails.
"""

from __future__ import annotations

import torch

from robopolicy.augment.camera import GaussianRender, PinholeCamera, RasterParams
from robopolicy.augment.rasterize import render_torch
from robopolicy.augment.scene import GaussianScene


def render(scene: GaussianScene, camera: PinholeCamera,
           background: tuple[float, float, float] = (0.0, 0.0, 0.0),
           params: RasterParams | None = None, segments: bool = True) -> GaussianRender:
    """Render `scene` from `camera`: gsplat on CUDA when torch sees a GPU, else the torch
    rasterizer. Outputs lie on the device of the renderer used."""
    params = params or RasterParams()
    if torch.cuda.is_available():
        from robopolicy.augment.gsplat_render import render_gsplat

        return render_gsplat(scene, camera, background, params, segments)
    return render_torch(scene, camera, background, params, segments)
