"""The differentiable torch rasterizer of Gaussian scenes (the CPU path; gsplat has none).

It follows 3DGS: EWA projection of each Gaussian to a 2-D conic (plus a 0.3 px^2 low-pass),
front-to-back alpha compositing in depth order, alpha = opacity * exp(-0.5 d^T Sigma^-1 d)
clamped at `alpha_max`, contributions under 1/255 skipped, a pixel done once its transmittance
would fall to 1e-4; camera convention of `sims.core.camera` (see `camera.py`).

Gaussians are binned into small tiles (the pixel box where each one's alpha can reach 1/255),
the (tile, Gaussian) pairs sorted by tile then depth, and tiles composited in chunks of similar
pair counts with dense tensor ops: a chunk pads its tiles only to its own largest count, which
keeps the tensors small (padding every tile to the image's largest count wastes most of the
work on zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robopolicy.augment.camera import GaussianRender, PinholeCamera, RasterParams
from robopolicy.augment.scene import GaussianScene, quat_to_mat
from robopolicy.augment.sh import eval_colors


@dataclass
class Projected:
    """The Gaussians that survive culling, sorted front to back, in pixel space."""

    index: torch.Tensor
    """(M,) their index in the scene."""
    mean2d: torch.Tensor
    """(M, 2) pixel (u, v)."""
    conic: torch.Tensor
    """(M, 3) inverse 2-D covariance (xx, xy, yy), 1/px^2."""
    depth: torch.Tensor
    """(M,) metres along the optical axis."""
    log_opacity: torch.Tensor
    color: torch.Tensor
    """(M, 3) RGB from the SH coefficients seen from the camera."""
    pixel_box: torch.Tensor
    """(M, 4) int64 first and last pixel column and row (inclusive) a splat can reach."""


def project_gaussians(scene: GaussianScene, camera: PinholeCamera, params: RasterParams) -> Projected:
    """EWA projection (local affine approximation of the perspective at each centre), culling
    behind the near plane, off-screen and below `alpha_min` everywhere, and a depth sort."""
    dtype, device = scene.means.dtype, scene.means.device
    rot = torch.as_tensor(camera.rot, dtype=dtype, device=device)
    pos = torch.as_tensor(camera.pos, dtype=dtype, device=device)
    width, height, f = camera.width, camera.height, camera.focal_px

    with torch.no_grad():
        keep = -((scene.means - pos) @ rot[:, 2]) > params.near_m
        keep &= scene.opacity_logits > math.log(params.alpha_min / (1 - params.alpha_min))
    index = keep.nonzero()[:, 0]
    cam = (scene.means[index] - pos) @ rot
    depth = -cam[:, 2]
    u = width / 2 + f * cam[:, 0] / depth
    v = height / 2 - f * cam[:, 1] / depth

    # Jacobian of (u, v) w.r.t. the camera-frame point; the lateral offset is clamped to 1.3x
    # the field of view, as in gsplat, so splats far off-screen stay bounded
    lim_x, lim_y = 1.3 * 0.5 * width / f, 1.3 * 0.5 * height / f
    tx = (cam[:, 0] / depth).clamp(-lim_x, lim_x)
    ty = (cam[:, 1] / depth).clamp(-lim_y, lim_y)
    zero = torch.zeros_like(depth)
    jac = torch.stack([torch.stack([f / depth, zero, f * tx / depth], -1),
                       torch.stack([zero, -f / depth, -f * ty / depth], -1)], -2)  # (M, 2, 3)
    axes = rot.T @ quat_to_mat(scene.quats_wxyz[index]) * scene.log_scales[index].exp()[:, None]
    t = jac @ axes
    cov = t @ t.transpose(1, 2)
    cxx = cov[:, 0, 0] + params.eps2d_px2
    cxy = cov[:, 0, 1]
    cyy = cov[:, 1, 1] + params.eps2d_px2
    det = cxx * cyy - cxy * cxy
    conic = torch.stack([cyy / det, -cxy / det, cxx / det], -1)
    log_opacity = torch.nn.functional.logsigmoid(scene.opacity_logits[index])

    with torch.no_grad():
        # beyond k sigma, with opacity * exp(-k^2 / 2) = alpha_min, no pixel reaches alpha_min
        k = torch.sqrt(2 * (log_opacity - math.log(params.alpha_min)).clamp_min(0))
        rx, ry = k * cxx.sqrt(), k * cyy.sqrt()
        # pixels whose centre (j + 0.5) lies within the box
        box = torch.stack([torch.ceil(u - rx - 0.5), torch.floor(u + rx - 0.5),
                           torch.ceil(v - ry - 0.5), torch.floor(v + ry - 0.5)], -1)
        box = torch.nan_to_num(box, nan=-1.0, posinf=1e9, neginf=-1e9)
        box[:, 0:2] = box[:, 0:2].clamp(-1, width)
        box[:, 2:4] = box[:, 2:4].clamp(-1, height)
        box = box.long()
        seen = ((det > 0) & (box[:, 0] <= box[:, 1]) & (box[:, 2] <= box[:, 3])
                & (box[:, 1] >= 0) & (box[:, 0] < width) & (box[:, 3] >= 0) & (box[:, 2] < height))
        box[:, 0:2] = box[:, 0:2].clamp(0, width - 1)
        box[:, 2:4] = box[:, 2:4].clamp(0, height - 1)
        order = seen.nonzero()[:, 0]
        order = order[torch.argsort(depth[order].detach(), stable=True)]

    sel = index[order]
    rest = None if scene.sh_rest is None else scene.sh_rest[sel]
    color = eval_colors(scene.sh_dc[sel], rest, scene.means[sel] - pos)
    return Projected(sel, torch.stack([u, v], -1)[order], conic[order], depth[order],
                     log_opacity[order], color, box[order])


@dataclass
class _Bins:
    pair_gaussian: torch.Tensor  # (P,) projected-Gaussian index of each pair, by tile then depth
    tile_start: torch.Tensor  # (n_tiles,) first pair of each tile
    tile_count: torch.Tensor  # (n_tiles,) pairs of each tile
    tiles_x: int
    tiles_y: int


def bin_tiles(proj: Projected, camera: PinholeCamera, tile_px: int) -> _Bins:
    """(tile, Gaussian) pairs for every tile a splat's pixel box touches, sorted by tile then
    depth (the Gaussians are already in depth order)."""
    tiles_x = -(-camera.width // tile_px)
    tiles_y = -(-camera.height // tile_px)
    n_tiles = tiles_x * tiles_y
    box = proj.pixel_box // tile_px
    nx = box[:, 1] - box[:, 0] + 1
    counts = nx * (box[:, 3] - box[:, 2] + 1)
    g = torch.repeat_interleave(torch.arange(len(counts)), counts)
    first = torch.cumsum(counts, 0) - counts
    offset = torch.arange(len(g)) - first[g]
    tile = (box[g, 2] + offset // nx[g]) * tiles_x + box[g, 0] + offset % nx[g]
    tile_sorted, perm = torch.sort(tile, stable=True)
    count = torch.bincount(tile_sorted, minlength=n_tiles)
    return _Bins(g[perm], torch.cumsum(count, 0) - count, count, tiles_x, tiles_y)


def _chunks(counts: torch.Tensor, pixels_per_tile: int, budget: int) -> list[torch.Tensor]:
    """Non-empty tiles grouped, in ascending pair count, so that tiles x largest count x pixels
    stays within `budget` (a tile over budget on its own is a chunk of one)."""
    active = counts.nonzero()[:, 0]
    active = active[torch.argsort(counts[active], stable=True)]
    sizes = counts[active].tolist()
    groups, begin = [], 0
    for i, c in enumerate(sizes):
        if i > begin and (i - begin + 1) * c * pixels_per_tile > budget:
            groups.append(active[begin:i])
            begin = i
    if begin < len(sizes):
        groups.append(active[begin:])
    return groups


def render_torch(scene: GaussianScene, camera: PinholeCamera,
                 background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 params: RasterParams | None = None, segments: bool = True) -> GaussianRender:
    """The differentiable torch rasterizer (any device; written for the CPU)."""
    params = params or RasterParams()
    proj = project_gaussians(scene, camera, params)
    ts = params.tile_px
    bins = bin_tiles(proj, camera, ts)
    n_tiles = bins.tiles_x * bins.tiles_y
    device, dtype = scene.means.device, scene.means.dtype

    # per pair: u, v, conic (3), log opacity, r, g, b, depth
    packed = torch.cat([proj.mean2d, proj.conic, proj.log_opacity[:, None], proj.color,
                        proj.depth[:, None]], -1)
    seg_table, seg_local = torch.unique(scene.segment_ids[proj.index], return_inverse=True)
    # pixel centres relative to the tile centre, as the quadratic features of the exponent
    local = torch.arange(ts, dtype=dtype, device=device) + 0.5 - ts / 2
    py, px = torch.meshgrid(local, local, indexing="ij")
    px, py = px.reshape(-1), py.reshape(-1)
    feats = torch.stack([px * px, px * py, py * py, px, py, torch.ones_like(px)], -1)

    values, seg_out, tile_ids = [], [], []
    for tiles in _chunks(bins.tile_count, ts * ts, params.chunk_elements):
        out, seg = _composite(tiles, bins, packed, seg_local, len(seg_table), feats, ts, params,
                              segments)
        values.append(out)
        seg_out.append(seg)
        tile_ids.append(tiles)
    n_ch = 5
    full = torch.zeros(n_tiles, ts * ts, n_ch, dtype=dtype, device=device)
    if values:
        full = full.index_copy(0, torch.cat(tile_ids), torch.cat(values))
    image = _untile(full, bins, ts, camera)
    alpha = image[..., 4]
    rgb = image[..., :3] + (1 - alpha)[..., None] * torch.as_tensor(background, dtype=dtype,
                                                                     device=device)
    depth = image[..., 3] / alpha.clamp_min(1e-10)
    segment = None
    if segments:
        seg_full = torch.full((n_tiles, ts * ts, 1), -1, dtype=torch.int64, device=device)
        if values:
            local_ids = torch.cat(seg_out)
            ids = torch.where(local_ids >= 0, seg_table[local_ids.clamp_min(0)], -1)
            seg_full[torch.cat(tile_ids)] = ids[..., None]
        segment = _untile(seg_full, bins, ts, camera)[..., 0]
    return GaussianRender(rgb, depth, alpha, segment)


def _composite(tiles: torch.Tensor, bins: _Bins, packed: torch.Tensor, seg_local: torch.Tensor,
               n_seg: int, feats: torch.Tensor, ts: int, params: RasterParams,
               segments: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Composite one chunk of tiles: (tiles, pixels, 5) of premultiplied RGB, weighted depth
    and alpha, and (tiles, pixels) local segment index (-1 background) when asked."""
    counts = bins.tile_count[tiles]
    k = int(counts.max())
    slot = torch.arange(k, device=tiles.device)
    valid = slot[None, :] < counts[:, None]
    pair = torch.where(valid, bins.tile_start[tiles][:, None] + slot, 0)
    gauss = bins.pair_gaussian[pair]  # (T, K)
    p = packed[gauss]  # (T, K, 10)
    centre_x = (tiles % bins.tiles_x).to(packed.dtype) * ts + ts / 2
    centre_y = (tiles // bins.tiles_x).to(packed.dtype) * ts + ts / 2
    mx = p[..., 0] - centre_x[:, None]
    my = p[..., 1] - centre_y[:, None]
    a, b, c, log_op = p[..., 2], p[..., 3], p[..., 4], p[..., 5]
    # the exponent -0.5 (x - m)^T conic (x - m) + log(opacity), as a quadratic in the pixel's
    # offset x from the tile centre: one batched matmul for all pixels of the tile
    const = -0.5 * a * mx * mx - b * mx * my - 0.5 * c * my * my + log_op
    const = torch.where(valid, const, torch.full_like(const, -1e4))
    coef = torch.stack([-0.5 * a, -b, -0.5 * c, a * mx + b * my, b * mx + c * my, const], 1)
    values = torch.cat([p[..., 6:10], torch.ones_like(p[..., :1])], -1)
    out, weight = _Blend.apply(feats @ coef, values, params.alpha_min, params.alpha_max,
                               params.transmittance_min)
    seg = None
    if segments:
        with torch.no_grad():
            w = weight
            per_seg = torch.zeros(*w.shape[:2], n_seg + 1, dtype=w.dtype, device=w.device)
            per_seg[..., n_seg] = 1 - w.sum(-1)  # the background's share
            per_seg.scatter_add_(2, seg_local[gauss][:, None, :].expand_as(w), w)
            seg = per_seg.argmax(-1)
            seg = torch.where(seg == n_seg, -1, seg)
    return out, seg


class _Blend(torch.autograd.Function):
    """Front-to-back compositing of (T, P, K) log-alphas (Gaussians in depth order along K) into
    (T, P, C) weighted sums of per-Gaussian values (T, K, C), with an analytic backward: fewer
    and in-place tensor passes than autograd's, which matters at millions of elements."""

    @staticmethod
    def forward(ctx, log_alpha, values, alpha_min, alpha_max, transmittance_min):
        alpha = log_alpha.exp().clamp_max_(alpha_max)
        alpha.mul_(alpha >= alpha_min)
        log_t = alpha.neg().log1p_()
        log_t_incl = torch.cumsum(log_t, -1)
        # transmittance in front of each Gaussian, zero from the one that ends the pixel on
        t_excl = log_t.neg_().add_(log_t_incl).exp_()
        t_excl.mul_(log_t_incl > math.log(transmittance_min))
        weight = alpha * t_excl
        ctx.save_for_backward(alpha, t_excl, weight, values)
        ctx.alpha_max = alpha_max
        ctx.mark_non_differentiable(weight)
        return weight @ values, weight

    @staticmethod
    def backward(ctx, grad_out, _grad_weight):
        alpha, t_excl, weight, values = ctx.saved_tensors
        grad_values = weight.transpose(1, 2) @ grad_out
        # dL/dw_k = g . v_k;  w_k = alpha_k T_k, and every later w_i holds a factor (1 - alpha_k)
        grad_w = grad_out @ values.transpose(1, 2)
        later = torch.cumsum(grad_w * weight, -1)
        later.neg_().add_(-later[..., -1:])  # sum over i > k of dL/dw_i w_i
        grad_alpha = (grad_w.mul_(t_excl)).sub_(later.div_(alpha.neg().add_(1)))
        # d alpha / d log_alpha = alpha, zero where clamped or skipped
        grad_alpha.mul_(alpha).mul_(alpha < ctx.alpha_max)
        return grad_alpha, grad_values, None, None, None


def _untile(full: torch.Tensor, bins: _Bins, ts: int, camera: PinholeCamera) -> torch.Tensor:
    """(tiles, ts*ts, C) -> (H, W, C)."""
    c = full.shape[-1]
    image = full.reshape(bins.tiles_y, bins.tiles_x, ts, ts, c).permute(0, 2, 1, 3, 4)
    return image.reshape(bins.tiles_y * ts, bins.tiles_x * ts, c)[: camera.height, : camera.width]
