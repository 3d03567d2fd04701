"""The torch rasterizer: camera convention, ellipse shape, depth order, segment masks,
gradients and a small fit."""

from __future__ import annotations

import numpy as np
import torch

from robopolicy.augment.camera import PinholeCamera, RasterParams
from robopolicy.augment.rasterize import project_gaussians, render_torch
from robopolicy.augment.render import render
from robopolicy.augment.scene import GaussianScene, mat_to_quat
from robopolicy.augment.sh import rgb_to_dc
from sims.core.camera import project

CAM = PinholeCamera.look_at((0.9, -0.3, 0.6), (0.0, 0.0, 0.1), fovy_deg=45, width=64, height=48)


def _gaussians(means, sigmas, rgbs, opacity=0.999, segments=None, quats=None) -> GaussianScene:
    means = torch.as_tensor(np.asarray(means, float), dtype=torch.float32)
    n = len(means)
    sigmas = torch.as_tensor(np.asarray(sigmas, float), dtype=torch.float32).reshape(n, -1)
    seg = torch.as_tensor(segments if segments is not None else [0] * n, dtype=torch.int64)
    return GaussianScene(
        means=means,
        quats_wxyz=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1) if quats is None else quats,
        log_scales=sigmas.expand(n, 3).log(),
        opacity_logits=torch.full((n,), float(np.log(opacity / (1 - opacity)))),
        sh_dc=rgb_to_dc(torch.as_tensor(np.asarray(rgbs, float), dtype=torch.float32)),
        segment_ids=seg, segments={int(s): f"part{int(s)}" for s in set(seg.tolist())})


def _moments(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (u, v) and 2x2 covariance of an image-shaped weight, pixel centres at +0.5."""
    v, u = np.mgrid[: weight.shape[0], : weight.shape[1]] + 0.5
    w = weight / weight.sum()
    mean = np.array([(w * u).sum(), (w * v).sum()])
    du, dv = u - mean[0], v - mean[1]
    cov = np.array([[(w * du * du).sum(), (w * du * dv).sum()],
                    [(w * du * dv).sum(), (w * dv * dv).sum()]])
    return mean, cov


def test_a_gaussian_lands_where_the_camera_projects_its_centre_as_the_right_ellipse():
    centre = np.array([0.05, -0.04, 0.12])
    # axes along the camera's right (long) and up (short): an axis-aligned ellipse on screen
    quat = mat_to_quat(torch.as_tensor(CAM.rot, dtype=torch.float32))[None]
    sigmas = np.array([[0.012, 0.004, 0.004]])
    scene = _gaussians([centre], sigmas, [[1.0, 1.0, 1.0]], opacity=0.5, quats=quat)
    out = render_torch(scene, CAM)
    uv, depth = project(centre[None], CAM.pos, CAM.rot, CAM.fovy_deg, CAM.width, CAM.height)
    (u, v) = uv[0]
    mean, cov = _moments(out.alpha.numpy())
    assert np.allclose(mean, [u, v], atol=0.1)  # sub-pixel; the bar is +-1 px
    row, col = np.unravel_index(out.alpha.numpy().argmax(), out.alpha.shape)
    assert abs(col + 0.5 - u) <= 1 and abs(row + 0.5 - v) <= 1
    # the screen covariance is (f sigma / depth)^2 plus the 0.3 px^2 low-pass
    expect = (CAM.focal_px * sigmas[0, :2] / depth[0]) ** 2 + 0.3
    assert np.allclose(np.diag(cov), expect, rtol=0.1) and abs(cov[0, 1]) < 0.05 * expect[0]
    assert abs(out.depth.numpy()[row, col] - depth[0]) < 1e-4


def test_the_nearer_gaussian_wins_where_it_is_opaque_whatever_the_input_order():
    ahead = np.array([0.0, 0.0, 0.1])
    towards_camera = (CAM.pos - ahead) / np.linalg.norm(CAM.pos - ahead)
    near = ahead + 0.1 * towards_camera
    # the far (blue) Gaussian is listed first
    scene = _gaussians([ahead, near], [0.2, 0.03], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
                       segments=[1, 2])
    out = render_torch(scene, CAM, background=(0.0, 1.0, 0.0))
    uv, _ = project(near[None], CAM.pos, CAM.rot, CAM.fovy_deg, CAM.width, CAM.height)
    col, row = uv[0].astype(int)
    # within a pixel of its centre the red one is over 90% opaque and hides the blue one
    assert out.rgb[row, col, 0] > 0.9 and out.rgb[row, col, 2] < 0.1
    assert out.segment[row, col] == 2
    # a few pixels out, past the small red one's edge, the big blue one shows
    assert out.rgb[row, col + 7, 2] > 0.7 and out.rgb[row, col + 7, 0] < 0.01
    assert out.segment[row, col + 7] == 1
    assert np.allclose(out.rgb[0, 0].numpy(), [0.0, 1.0, 0.0]) and out.segment[0, 0] == -1


def test_segment_ids_give_each_parts_mask():
    left, right = np.array([0.0, -0.08, 0.1]), np.array([0.0, 0.08, 0.1])
    # two segments made of several Gaussians each
    offsets = np.array([[0, 0, 0], [0, 0.02, 0], [0, 0, 0.02], [0, -0.02, 0.0]])
    means = np.concatenate([left + offsets, right + offsets])
    scene = _gaussians(means, [0.012] * 8, [[0.5, 0.5, 0.5]] * 8, opacity=0.95,
                       segments=[3] * 4 + [8] * 4)
    out = render_torch(scene, CAM)
    for sid, part in ((3, scene.select("part3")), (8, scene.select("part8"))):
        alone = render_torch(part, CAM).alpha > 0.5
        mask = out.segment == sid
        iou = (alone & mask).sum() / (alone | mask).sum()
        assert iou > 0.95, (sid, float(iou))
    assert set(out.segment.unique().tolist()) == {-1, 3, 8}


def test_gradients_reach_means_colours_and_opacities_and_a_fit_reduces_the_error():
    g = torch.Generator().manual_seed(0)
    n = 300
    means = torch.randn(n, 3, generator=g) * 0.06 + torch.tensor([0.0, 0.0, 0.1])
    base = GaussianScene(means, torch.randn(n, 4, generator=g),
                         torch.full((n, 3), np.log(0.01)), torch.full((n,), 1.0),
                         torch.randn(n, 3, generator=g), torch.zeros(n, dtype=torch.int64),
                         {0: "blob"})
    target = render_torch(base, CAM).rgb.detach()
    means = base.means.clone().requires_grad_(True)
    dc = torch.zeros(n, 3, requires_grad=True)
    opacity = base.opacity_logits.clone().requires_grad_(True)

    def loss_of() -> torch.Tensor:
        scene = GaussianScene(means, base.quats_wxyz, base.log_scales, opacity, dc,
                              base.segment_ids, base.segments)
        return ((render_torch(scene, CAM, segments=False).rgb - target) ** 2).mean()

    loss = loss_of()
    loss.backward()
    for name, t in (("means", means), ("colours", dc), ("opacities", opacity)):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, name
    first = loss.item()
    adam = torch.optim.Adam([dc], lr=0.2)
    for _ in range(15):
        adam.zero_grad()
        loss = loss_of()
        loss.backward()
        adam.step()
    assert loss_of().item() < 0.3 * first


def test_culling_behind_the_camera_and_the_cpu_dispatch():
    behind = CAM.pos + 0.2 * CAM.rot[:, 2]  # 0.2 m behind the camera, on its axis
    scene = _gaussians([behind], [0.05], [[1.0, 0.0, 0.0]])
    out = render(scene, CAM, background=(0.2, 0.3, 0.4))  # no GPU here: the torch renderer
    assert out.alpha.abs().max() == 0 and (out.segment == -1).all()
    assert torch.allclose(out.rgb, torch.tensor([0.2, 0.3, 0.4]).expand(48, 64, 3))
    assert out.rgb.shape == (48, 64, 3) and out.depth.shape == (48, 64)


def _dense_reference(scene: GaussianScene, params: RasterParams) -> torch.Tensor:
    """(H, W, 4) premultiplied RGB and alpha composited per pixel over every projected
    Gaussian, one by one, as the CUDA kernels do."""
    proj = project_gaussians(scene, CAM, params)
    v, u = torch.meshgrid(torch.arange(CAM.height) + 0.5, torch.arange(CAM.width) + 0.5,
                          indexing="ij")
    out = torch.zeros(CAM.height, CAM.width, 4)
    t = torch.ones(CAM.height, CAM.width)
    done = torch.zeros(CAM.height, CAM.width, dtype=torch.bool)
    for i in range(len(proj.index)):  # front to back
        dx, dy = u - proj.mean2d[i, 0], v - proj.mean2d[i, 1]
        a, b, c = proj.conic[i]
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        alpha = (proj.log_opacity[i].exp() * torch.exp(-sigma)).clamp_max(params.alpha_max)
        use = (alpha >= params.alpha_min) & ~done
        next_t = t * (1 - alpha)
        done |= use & (next_t <= params.transmittance_min)
        use &= ~done
        w = torch.where(use, alpha * t, 0.0)
        out += w[..., None] * torch.cat([proj.color[i], torch.ones(1)])
        t = torch.where(use, next_t, t)
    return out


def test_tiles_and_chunks_composite_like_a_per_pixel_reference():
    g = torch.Generator().manual_seed(5)
    n = 150
    scene = GaussianScene(torch.randn(n, 3, generator=g) * 0.08 + torch.tensor([0.0, 0.0, 0.1]),
                          torch.randn(n, 4, generator=g),
                          torch.randn(n, 3, generator=g) * 0.5 + np.log(0.012),
                          torch.randn(n, generator=g) + 2, torch.randn(n, 3, generator=g),
                          torch.zeros(n, dtype=torch.int64), {0: "blob"})
    for params in (RasterParams(), RasterParams(tile_px=3, chunk_elements=2000)):
        ref = _dense_reference(scene, params)
        out = render_torch(scene, CAM, params=params)
        assert torch.allclose(out.alpha, ref[..., 3], atol=1e-5)
        assert torch.allclose(out.rgb, ref[..., :3], atol=1e-5)
        assert ref[..., 3].max() > 0.99  # opaque enough for the early stop to matter


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(2)
    n = 6
    cam = PinholeCamera.look_at((0.9, -0.3, 0.6), (0.0, 0.0, 0.1), fovy_deg=45, width=16,
                                height=12)
    means = (torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.05
             + torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64))
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    log_scales = torch.full((n, 3), np.log(0.04), dtype=torch.float64)
    target = torch.rand(12, 16, 3, generator=g, dtype=torch.float64)

    def loss(means, log_scales, opacity, dc):
        scene = GaussianScene(means, quats, log_scales, opacity, dc,
                              torch.zeros(n, dtype=torch.int64), {0: "blob"})
        out = render_torch(scene, cam, background=(0.3, 0.2, 0.1), segments=False)
        return ((out.rgb - target) ** 2).sum() + out.depth.sum() * 0.1

    inputs = (means, log_scales, torch.randn(n, generator=g, dtype=torch.float64) + 1.5,
              torch.randn(n, 3, generator=g, dtype=torch.float64))
    inputs = tuple(t.clone().requires_grad_(True) for t in inputs)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
