"""The CUDA renderer: gsplat's rasterizer with the torch rasterizer's camera, inputs and outputs.

gsplat is imported here only, when torch sees a GPU: on a CPU-only machine its rasterization
fails (no CUDA toolkit, or a CUDA build that cannot target a GPU), so it is never tried there.
Its first call JIT-compiles the CUDA extension (minutes); build it ahead with
``python -c "from gsplat.cuda._backend import _C"``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from robopolicy.augment.camera import GaussianRender, PinholeCamera, RasterParams
from robopolicy.augment.scene import GaussianScene
from robopolicy.augment.sh import sh_degree
from robopolicy.errors import RobopolicyError

log = logging.getLogger(__name__)
_warned = False


def camera_matrices(camera: PinholeCamera, device: torch.device) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """gsplat's (1, 4, 4) world-to-camera matrix (OpenCV axes: x right, y down, z forward) and
    (1, 3, 3) intrinsics for `camera` (principal point at the image centre, square pixels)."""
    rot_cv = np.asarray(camera.rot, float) @ np.diag([1.0, -1.0, -1.0])
    view = np.eye(4)
    view[:3, :3] = rot_cv.T
    view[:3, 3] = -rot_cv.T @ np.asarray(camera.pos, float)
    f = camera.focal_px
    k = np.array([[f, 0.0, camera.width / 2], [0.0, f, camera.height / 2], [0.0, 0.0, 1.0]])
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)[None]  # noqa: E731
    return as_t(view), as_t(k)


def render_gsplat(scene: GaussianScene, camera: PinholeCamera,
                  background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                  params: RasterParams | None = None, segments: bool = True) -> GaussianRender:
    """Render with `gsplat.rasterization` on the GPU (the scene is moved there)."""
    global _warned
    try:
        from gsplat import rasterization
    except ImportError as exc:
        raise RobopolicyError(f"gsplat is not installed ({exc}); `pip install gsplat` "
                              "for the CUDA renderer") from exc
    if not _warned:
        log.warning("gsplat: the first rasterization compiles its CUDA extension (minutes); "
                    "build it ahead with: python -c 'from gsplat.cuda._backend import _C'")
        _warned = True
    params = params or RasterParams()
    device = torch.device("cuda")
    scene = scene.to(device)
    view, k = camera_matrices(camera, device)
    degree = sh_degree(scene.sh_rest)
    coeffs = scene.sh_dc[:, None]
    if degree:
        coeffs = torch.cat([coeffs, scene.sh_rest], 1)
    common = dict(means=scene.means, quats=scene.quats_wxyz, scales=scene.log_scales.exp(),
                  opacities=torch.sigmoid(scene.opacity_logits), viewmats=view, Ks=k,
                  width=camera.width, height=camera.height, near_plane=params.near_m,
                  eps2d=params.eps2d_px2, rasterize_mode="classic")
    colors, alphas, _ = rasterization(colors=coeffs, sh_degree=degree, render_mode="RGB+ED",
                                      **common)
    alpha = alphas[0, ..., 0]
    bg = torch.as_tensor(background, dtype=torch.float32, device=device)
    rgb = colors[0, ..., :3] + (1 - alpha)[..., None] * bg
    segment = None
    if segments:
        segment = _segments(scene, rasterization, common, alpha)
    return GaussianRender(rgb, colors[0, ..., 3], alpha, segment)


def _segments(scene: GaussianScene, rasterization, common: dict,
              alpha: torch.Tensor) -> torch.Tensor:
    """The segment with the largest composited weight per pixel (-1 where the background's
    is larger): the segments' one-hot codes rendered as colour channels."""
    with torch.no_grad():
        table, local = torch.unique(scene.segment_ids, return_inverse=True)
        onehot = torch.nn.functional.one_hot(local, len(table)).float()
        args = {key: (value.detach() if torch.is_tensor(value) else value)
                for key, value in common.items()}
        weights, _, _ = rasterization(colors=onehot, sh_degree=None, render_mode="RGB", **args)
        weights = torch.cat([weights[0], (1 - alpha)[..., None]], -1)
        best = weights.argmax(-1)
        return torch.where(best == len(table), -1, table[best.clamp_max(len(table) - 1)])
