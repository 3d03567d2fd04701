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


@torch.no_grad()
def bin_tiles(proj: Projected, camera: PinholeCamera, params: RasterParams) -> _Bins:
    """(tile, Gaussian) pairs for every tile with a pixel centre where the Gaussian's alpha can
    reach `alpha_min`, sorted by tile then depth (the Gaussians are already in depth order)."""
    ts = params.tile_px
    tiles_x = -(-camera.width // ts)
    tiles_y = -(-camera.height // ts)
    box = proj.pixel_box // ts
    nx = box[:, 1] - box[:, 0] + 1
    counts = nx * (box[:, 3] - box[:, 2] + 1)
    n_pairs = int(counts.sum())
    # per pair, its Gaussian's tile box and (u, v, conic, k^2), expanded without gathers
    device = box.device
    g = torch.repeat_interleave(torch.arange(len(counts), device=device), counts,
                                output_size=n_pairs)
    box_g = torch.repeat_interleave(torch.cat([box, nx[:, None]], 1), counts, dim=0,
                                    output_size=n_pairs)
    k2 = 2 * (proj.log_opacity - math.log(params.alpha_min))
    shape_g = torch.repeat_interleave(torch.cat([proj.mean2d, proj.conic, k2[:, None]], 1),
                                      counts, dim=0, output_size=n_pairs)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts,
                                    output_size=n_pairs)
    offset = torch.arange(n_pairs, device=device) - first
    tx = box_g[:, 0] + offset % box_g[:, 4]
    ty = box_g[:, 2] + torch.div(offset, box_g[:, 4], rounding_mode="floor")
    # a tilted ellipse's box holds tiles the ellipse misses: drop those pairs
    hit = _ellipse_meets_tile(shape_g, tx, ty, camera, ts).nonzero()[:, 0]
    g = g.index_select(0, hit)
    tile = (ty * tiles_x + tx).index_select(0, hit)
    tile_sorted, perm = torch.sort(tile, stable=True)
    count = torch.bincount(tile_sorted, minlength=tiles_x * tiles_y)
    return _Bins(g.index_select(0, perm), torch.cumsum(count, 0) - count, count, tiles_x,
                 tiles_y)


def _ellipse_meets_tile(shape: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor,
                        camera: PinholeCamera, ts: int) -> torch.Tensor:
    """(P,) bool: whether the rectangle of tile (tx, ty)'s pixel centres holds a point where
    a Gaussian of `shape` (P, 6: u, v, conic xx, xy, yy, k^2) reaches `alpha_min`, i.e. where
    its conic's quadratic form is at most k^2. The form is convex: 0 when the centre is inside,
    else minimal on an edge, at the stationary point along the edge clamped to its ends."""
    dtype = shape.dtype
    mx, my, a, b, c, k2 = shape.unbind(-1)
    x0 = (tx * ts).to(dtype) + 0.5 - mx
    x1 = (tx * ts + ts).clamp_max(camera.width).to(dtype) - 0.5 - mx
    y0 = (ty * ts).to(dtype) + 0.5 - my
    y1 = (ty * ts + ts).clamp_max(camera.height).to(dtype) - 0.5 - my

    def edge(d, lo, hi, p, r):  # min over t in [lo, hi] of p d^2 + 2 b d t + r t^2
        t = torch.minimum(torch.maximum(-b * d / r, lo), hi)
        return p * d * d + 2 * b * d * t + r * t * t

    best = torch.minimum(torch.minimum(edge(x0, y0, y1, a, c), edge(x1, y0, y1, a, c)),
                         torch.minimum(edge(y0, x0, x1, c, a), edge(y1, x0, x1, c, a)))
    inside = (x0 <= 0) & (x1 >= 0) & (y0 <= 0) & (y1 >= 0)
    return inside | (best <= k2 * (1 + 1e-5) + 1e-6)


def _chunks(counts: torch.Tensor, pixels_per_tile: int, budget: int) -> list[torch.Tensor]:
    """Non-empty tiles grouped, in ascending pair count, so that tiles x largest count x pixels
    stays within `budget` and a chunk's counts differ by at most a quarter (plus 4), which
    bounds the padding (a tile over budget on its own is a chunk of one)."""
    active = counts.nonzero()[:, 0]
    active = active[torch.argsort(counts[active], stable=True)]
    sizes = counts[active].tolist()
    groups, begin = [], 0
    for i, c in enumerate(sizes):
        if i > begin and ((i - begin + 1) * c * pixels_per_tile > budget
                          or c > 1.25 * sizes[begin] + 4):
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
    bins = bin_tiles(proj, camera, params)
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
    gauss = bins.pair_gaussian.index_select(0, pair.reshape(-1)).reshape(pair.shape)  # (T, K)
    p = packed.index_select(0, gauss.reshape(-1)).reshape(*pair.shape, packed.shape[1])
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
    out, weight = _Blend.apply(feats, coef, values, params.alpha_min, params.alpha_max,
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
    """Front-to-back compositing of (T, P, K) log-alphas = pixel features (P, F) @ per-Gaussian
    coefficients (T, F, K) (Gaussians in depth order along K) into (T, P, C) weighted sums of
    per-Gaussian values (T, K, C), with an analytic backward: fewer and in-place tensor passes
    than autograd's, which matters at millions of elements."""

    @staticmethod
    def forward(ctx, feats, coef, values, alpha_min, alpha_max, transmittance_min):
        # in place where possible: each pass over a fresh million-element tensor costs
        alpha = torch.nn.functional.threshold_(feats @ coef, math.log(alpha_min), -math.inf)
        alpha.clamp_max_(math.log(alpha_max)).exp_()
        log_t = torch.rsub(alpha, 1.0).log_()
        log_t_incl = torch.cumsum(log_t, -1)
        # transmittance in front of each Gaussian, zero from the one that ends the pixel on
        torch.nn.functional.threshold_(log_t_incl, math.log(transmittance_min), -math.inf)
        t_excl = torch.sub(log_t_incl, log_t, out=log_t).exp_()
        weight = alpha * t_excl
        ctx.save_for_backward(feats, alpha, t_excl, weight, values)
        ctx.alpha_max = alpha_max
        ctx.mark_non_differentiable(weight)
        return weight @ values, weight

    @staticmethod
    def backward(ctx, grad_out, _grad_weight):
        feats, alpha, t_excl, weight, values = ctx.saved_tensors
        grad_values = weight.transpose(1, 2) @ grad_out
        # dL/dw_k = g . v_k;  w_k = alpha_k T_k, and every later w_i holds a factor (1 - alpha_k)
        grad_w = grad_out @ values.transpose(1, 2)
        later = torch.cumsum(grad_w * weight, -1)
        torch.sub(later[..., -1:], later, out=later)  # sum over i > k of dL/dw_i w_i
        grad_alpha = grad_w.mul_(t_excl).sub_(later.div_(torch.rsub(alpha, 1.0)))
        # d alpha / d log_alpha = alpha, zero where clamped or skipped
        grad_alpha.mul_(alpha).masked_fill_(alpha >= ctx.alpha_max * (1 - 1e-6), 0.0)
        return None, feats.T @ grad_alpha, grad_values, None, None, None


def _untile(full: torch.Tensor, bins: _Bins, ts: int, camera: PinholeCamera) -> torch.Tensor:
    """(tiles, ts*ts, C) -> (H, W, C)."""
    c = full.shape[-1]
    image = full.reshape(bins.tiles_y, bins.tiles_x, ts, ts, c).permute(0, 2, 1, 3, 4)
    return image.reshape(bins.tiles_y * ts, bins.tiles_x * ts, c)[: camera.height, : camera.width]
