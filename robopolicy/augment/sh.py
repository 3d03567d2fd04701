"""Spherical-harmonic colour of Gaussians (degrees 0-3), with 3DGS's and gsplat's convention:
colour = SH(direction) + 0.5, clamped at 0, where direction points from the camera centre to
the Gaussian. Degree 0 is a constant: rgb = C0 * f_dc + 0.5."""

from __future__ import annotations

import torch

C0 = 0.28209479177387814  # Y_0^0
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
       0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
       -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def rgb_to_dc(rgb: torch.Tensor) -> torch.Tensor:
    """Degree-0 coefficients (..., 3) that render as `rgb` (..., 3) in [0, 1]."""
    return (rgb - 0.5) / C0


def dc_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    """The view-independent colour (..., 3) of degree-0 coefficients (not clamped)."""
    return dc * C0 + 0.5


def sh_degree(rest: torch.Tensor | None) -> int:
    """The SH degree of rest coefficients (N, K, 3): K = 3, 8 or 15 for degrees 1-3."""
    if rest is None or rest.shape[1] == 0:
        return 0
    degree = {3: 1, 8: 2, 15: 3}.get(int(rest.shape[1]))
    if degree is None:
        raise ValueError(f"{rest.shape[1]} SH rest coefficients per channel (want 3, 8 or 15)")
    return degree


def eval_colors(dc: torch.Tensor, rest: torch.Tensor | None, dirs: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3) of Gaussians with degree-0 coefficients `dc` (N, 3) and rest (N, K, 3) seen
    along `dirs` (N, 3) (camera to Gaussian, any length), clamped at 0 like gsplat."""
    out = dc * C0
    degree = sh_degree(rest)
    if degree > 0:
        d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        x, y, z = d[:, 0:1], d[:, 1:2], d[:, 2:3]
        out = out + _C1 * (-y * rest[:, 0] + z * rest[:, 1] - x * rest[:, 2])
        if degree > 1:
            xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
            out = (out + _C2[0] * xy * rest[:, 3] + _C2[1] * yz * rest[:, 4]
                   + _C2[2] * (2 * zz - xx - yy) * rest[:, 5] + _C2[3] * xz * rest[:, 6]
                   + _C2[4] * (xx - yy) * rest[:, 7])
            if degree > 2:
                out = (out + _C3[0] * y * (3 * xx - yy) * rest[:, 8]
                       + _C3[1] * xy * z * rest[:, 9]
                       + _C3[2] * y * (4 * zz - xx - yy) * rest[:, 10]
                       + _C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * rest[:, 11]
                       + _C3[4] * x * (4 * zz - xx - yy) * rest[:, 12]
                       + _C3[5] * z * (xx - yy) * rest[:, 13]
                       + _C3[6] * x * (xx - 3 * yy) * rest[:, 14])
    return (out + 0.5).clamp_min(0.0)
