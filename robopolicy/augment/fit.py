"""Fit a simulated scene's Gaussians to MuJoCo's own renders, so they look like the simulator.

Views are sampled around the object (a seeded set for training plus the env's cameras, and a
separately seeded held-out set); MuJoCo renders each once (RGB and segmentation); Adam then
fits the Gaussians' colours (SH degree 0, optionally 1; opacities and scales if asked) through
the differentiable renderer, one view per iteration. The held-out views measure the result:
PSNR against MuJoCo's image and, per object part, the IoU of the rendered segment ids with
MuJoCo's segmentation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from robopolicy.augment.camera import PinholeCamera, RasterParams
from robopolicy.augment.from_sim import (
    BACKGROUND,
    CARRIER_CAMERA,
    SimSampling,
    mujoco_camera,
    render_mujoco,
    scene_from_backend,
)
from robopolicy.augment.render import render
from robopolicy.augment.scene import GaussianScene, MeshSampling
from robopolicy.augment.sh import C0, dc_to_rgb, rgb_to_dc


@dataclass(frozen=True)
class FitConfig:
    """What a fit renders and how long it optimises (all of it keys the fit cache)."""

    iterations: int = 150
    train_views: int = 24
    """Seeded random views, plus the env's cameras in `env_views`."""
    env_views: tuple[str, ...] = (CARRIER_CAMERA, "wrist")
    """The env's cameras added to the training views: the wrist one (at the robot's home pose)
    sees the hand from centimetres, which no orbit view does."""
    heldout_views: int = 6
    size: int = 128
    """Image side, pixels (square views)."""
    seed: int = 0
    fovy_deg: float = 50.0
    distance_m: tuple[float, float] = (0.35, 0.7)
    """Camera distance from its look-at point."""
    elevation_deg: tuple[float, float] = (20.0, 65.0)
    azimuth_deg: tuple[float, float] = (-135.0, 135.0)
    """About the look-at point, from +x (the side facing the robot)."""
    lookat_jitter_m: float = 0.08
    """Look-at points scatter this much (std) around the object's centre."""
    lr_color: float = 0.02
    lr_opacity: float = 0.05
    lr_scale: float = 0.03
    final_lr_fraction: float = 0.1
    """Learning rates decay exponentially to this fraction of their start."""
    fit_opacity: bool = True
    fit_scales: bool = True
    mask_weight: float = 3.0
    """Weight of the part-mask loss (used when opacities or scales are fitted)."""
    sh_degree: int = 0
    """0: one colour per Gaussian; 1: plus a linear view dependence (MuJoCo's headlight)."""
    per_m2: float = 20_000.0
    """Gaussians per square metre on robot and table surfaces."""
    object_per_m2: float = 150_000.0
    """... and on the objects'."""
    near_camera_per_m2: float = 600_000.0
    """... and on the links a camera rides on (`SimSampling.near_camera_per_m2`)."""
    sigma_per_spacing: float = 0.6
    """Disc size in units of the sample spacing (`MeshSampling`)."""
    crease_deg: float | None = 60.0
    """Discs end at edges sharper than this (`MeshSampling.crease_deg`; None: round discs)."""
    reach_sigmas: float = 2.0
    """... reaching them at this many standard deviations (`MeshSampling.reach_sigmas`)."""
    eps2d_px2: float = 0.002
    """The renderer's low-pass (`RasterParams.eps2d_px2`) for the fit and for renders of the
    fitted scene. It widens every edge-on disc of a silhouette, and the tens of such discs
    stacked along a line of sight saturate their widened tails into a dilated mask: gsplat's
    0.3 px^2 dilates part masks by about a pixel, 0.03 px^2 by a third of one. MuJoCo samples
    each pixel at its centre, which a near-zero low-pass imitates."""

    def __post_init__(self):
        if self.sh_degree not in (0, 1):
            raise ValueError(f"FitConfig.sh_degree: {self.sh_degree} (0 or 1)")
        if self.iterations < 0 or self.train_views < 1 or self.heldout_views < 1:
            raise ValueError(f"FitConfig: iterations {self.iterations}, train_views "
                             f"{self.train_views}, heldout_views {self.heldout_views}")

    def raster_params(self) -> RasterParams:
        return RasterParams(eps2d_px2=self.eps2d_px2)

    def sampling(self) -> SimSampling:
        return SimSampling(MeshSampling(per_m2=self.per_m2, seed=self.seed,
                                        sigma_per_spacing=self.sigma_per_spacing,
                                        crease_deg=self.crease_deg,
                                        reach_sigmas=self.reach_sigmas),
                           object_per_m2=self.object_per_m2,
                           near_camera_per_m2=self.near_camera_per_m2)


@dataclass
class View:
    """A camera and MuJoCo's render from it."""

    camera: PinholeCamera
    rgb: torch.Tensor
    """(H, W, 3) float in [0, 1]."""
    labels: torch.Tensor
    """(H, W) int64 indices into the backend's segmentation labels."""


@dataclass
class FitMetrics:
    """Held-out agreement with MuJoCo."""

    psnr_db: float
    """Mean over held-out views of each view's PSNR."""
    iou: float
    """Mean over the object's parts of each part's mask IoU (pixels summed over the views)."""
    part_iou: dict[str, float] = field(default_factory=dict)
    psnr_views_db: list[float] = field(default_factory=list)


@dataclass
class FitResult:
    scene: GaussianScene
    metrics: FitMetrics
    initial: FitMetrics
    """The same metrics before fitting (geom colours, unlit)."""
    seconds: float
    """Wall time of the optimisation (not the MuJoCo renders or the evaluation)."""
    cached: bool = False

    def summary(self) -> dict:
        return {"gaussians": len(self.scene), "fit_seconds": round(self.seconds, 2),
                "metrics": asdict(self.metrics), "initial": asdict(self.initial)}


def sample_cameras(n: int, lookat: np.ndarray, config: FitConfig, stream: int) -> list[PinholeCamera]:
    """`n` look-at cameras around `lookat`, a pure function of (config.seed, stream)."""
    rng = np.random.default_rng([config.seed, stream])
    cams = []
    for _ in range(n):
        az, el = np.radians(rng.uniform(*config.azimuth_deg)), np.radians(rng.uniform(*config.elevation_deg))
        r = rng.uniform(*config.distance_m)
        target = np.asarray(lookat, float) + rng.normal(0.0, config.lookat_jitter_m, 3) * [1, 1, 0.5]
        pos = target + r * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        cams.append(PinholeCamera.look_at(pos, target, config.fovy_deg, config.size, config.size))
    return cams


def mujoco_views(backend, cameras: list[PinholeCamera]) -> list[View]:
    views = []
    for cam in cameras:
        rgb, seg = render_mujoco(backend, cam)
        views.append(View(cam, torch.from_numpy(rgb.astype(np.float32) / 255.0),
                          torch.from_numpy(seg.astype(np.int64))))
    return views


def segment_label_lut(scene: GaussianScene, labels: list[str]) -> torch.Tensor:
    """(max segment id + 2,) the segmentation label of each segment id (index id + 1; -1, the
    renderer's background, maps to `labels`' background): ``robot/<link>`` -> ``robot``."""
    lut = torch.zeros(max(scene.segments, default=0) + 2, dtype=torch.int64)
    bg = labels.index(BACKGROUND)
    lut[0] = bg
    for sid, name in scene.segments.items():
        key = "robot" if name.startswith("robot/") else name
        lut[sid + 1] = labels.index(key) if key in labels else bg
    return lut


def evaluate(scene: GaussianScene, views: list[View], labels: list[str],
             parts: list[str], params: RasterParams | None = None) -> FitMetrics:
    """PSNR and per-part mask IoU of `scene` against MuJoCo's `views`."""
    lut = segment_label_lut(scene, labels)
    psnrs = []
    inter = dict.fromkeys(parts, 0)
    union = dict.fromkeys(parts, 0)
    with torch.no_grad():
        for view in views:
            out = render(scene, view.camera, params=params)
            rgb = out.rgb.cpu().clamp(0, 1)
            mse = float(((rgb - view.rgb) ** 2).mean())
            psnrs.append(10 * math.log10(1.0 / max(mse, 1e-12)))
            ours = lut[out.segment.cpu() + 1]
            for part in parts:
                k = labels.index(part)
                a, b = ours == k, view.labels == k
                inter[part] += int((a & b).sum())
                union[part] += int((a | b).sum())
    part_iou = {p: inter[p] / union[p] for p in parts if union[p] > 0}
    iou = float(np.mean(list(part_iou.values()))) if part_iou else float("nan")
    return FitMetrics(float(np.mean(psnrs)), iou, part_iou, [round(p, 3) for p in psnrs])


def backproject_colors(scene: GaussianScene, views: list[View],
                       params: RasterParams | None = None) -> torch.Tensor:
    """(N, 3) degree-0 coefficients: each Gaussian's colour is the mean of the target pixels
    it contributes to, weighted by its compositing weight, over all `views` (the least-squares
    colour where one Gaussian dominates each pixel: a start that Adam only refines). Gaussians
    no view sees keep theirs. The weights come from the gradients of two linear functions of
    the render."""
    probe = torch.zeros_like(scene.sh_dc, requires_grad=True)  # rgb 0.5: no clamping
    weighted = torch.zeros_like(scene.sh_dc)
    total = torch.zeros_like(scene.sh_dc)
    for view in views:
        s = GaussianScene(scene.means, scene.quats_wxyz, scene.log_scales, scene.opacity_logits,
                          probe, scene.segment_ids, dict(scene.segments))
        out = render(s, view.camera, params=params, segments=False)
        target = view.rgb.to(out.rgb.device)
        g_target, g_one = _weight_sums(out.rgb, target, probe)
        weighted += g_target.cpu()
        total += g_one.cpu()
    seen = total > 1e-3 * C0
    rgb = torch.where(seen, weighted / total.clamp_min(1e-12), dc_to_rgb(scene.sh_dc.detach()))
    return rgb_to_dc(rgb)


def _weight_sums(rgb: torch.Tensor, target: torch.Tensor,
                 probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_p w_ip t_p, sum_p w_ip) per Gaussian and channel, both times C0."""
    g_target = torch.autograd.grad((rgb * target).sum(), probe, retain_graph=True)[0]
    g_one = torch.autograd.grad(rgb.sum(), probe)[0]
    return g_target, g_one


def fit_scene(scene: GaussianScene, views: list[View], config: FitConfig,
              gaussian_label: torch.Tensor | None = None,
              mask_labels: list[int] | None = None) -> GaussianScene:
    """`scene` with its colours (and opacities, scales if the config says so) fitted to
    `views`: back-projected, then refined by Adam, one view per iteration in a seeded order.
    With opacities or scales fitted and `mask_labels` given (label indices, e.g. the object's
    parts; `gaussian_label` (N,) is each Gaussian's), each iteration also renders up to three
    of those labels' soft masks (one-hot colours) against the view's segmentation, weighted
    by `config.mask_weight`: the colour loss alone barely sees a part's edge dilated by a
    pixel, and thin parts' masks are mostly edge."""
    dc = backproject_colors(scene, views, config.raster_params()).requires_grad_(True)
    groups = [{"params": [dc], "lr": config.lr_color}]
    rest = None
    if config.sh_degree == 1:
        rest = torch.zeros(len(scene), 3, 3, requires_grad=True)
        groups.append({"params": [rest], "lr": config.lr_color})
    opacity = scene.opacity_logits.detach().clone().requires_grad_(config.fit_opacity)
    if config.fit_opacity:
        groups.append({"params": [opacity], "lr": config.lr_opacity})
    scales = scene.log_scales.detach().clone().requires_grad_(config.fit_scales)
    if config.fit_scales:
        groups.append({"params": [scales], "lr": config.lr_scale})
    opt = torch.optim.Adam(groups)
    gamma = config.final_lr_fraction ** (1.0 / max(config.iterations, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    rng = np.random.default_rng([config.seed, 2])
    order: list[int] = []

    def current() -> GaussianScene:
        return GaussianScene(scene.means, scene.quats_wxyz, scales, opacity, dc,
                             scene.segment_ids, dict(scene.segments), rest)

    masks = bool(mask_labels) and (config.fit_opacity or config.fit_scales) \
        and config.mask_weight > 0
    for _ in range(config.iterations):
        if not order:
            order = rng.permutation(len(views)).tolist()
        view = views[order.pop()]
        out = render(current(), view.camera, params=config.raster_params(), segments=False)
        loss = ((out.rgb - view.rgb.to(out.rgb.device)) ** 2).mean()
        if masks:
            group = rng.permutation(mask_labels)[:3].tolist()
            loss = loss + config.mask_weight * _mask_loss(
                scene, scales, opacity, gaussian_label, group, view, config.raster_params())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    fitted = current()
    return GaussianScene(
        fitted.means.detach(), fitted.quats_wxyz.detach(), fitted.log_scales.detach(),
        fitted.opacity_logits.detach(), fitted.sh_dc.detach(), fitted.segment_ids,
        dict(fitted.segments), None if rest is None else rest.detach())


def _mask_loss(scene: GaussianScene, scales: torch.Tensor, opacity: torch.Tensor,
               gaussian_label: torch.Tensor, group: list[int], view: View,
               params: RasterParams) -> torch.Tensor:
    """Mean squared error of the soft masks of labels `group` (rendered as one-hot colours
    over black) against the view's segmentation."""
    onehot = torch.stack([gaussian_label == k for k in group], -1).float()
    onehot = torch.cat([onehot, onehot.new_zeros(len(scene), 3 - len(group))], -1)
    s = GaussianScene(scene.means, scene.quats_wxyz, scales, opacity, rgb_to_dc(onehot),
                      scene.segment_ids, dict(scene.segments))
    out = render(s, view.camera, params=params, segments=False).rgb[..., : len(group)]
    target = torch.stack([view.labels == k for k in group], -1).float().to(out.device)
    return ((out - target) ** 2).mean()


def object_parts(backend) -> list[str]:
    """The segmentation labels of the objects' parts (``<object>/<part>``)."""
    names = {p.asset.name for p in backend.scene.objects}
    return [lab for lab in backend.segmentation_labels if lab.split("/")[0] in names]


def fit_backend(backend, config: FitConfig | None = None) -> FitResult:
    """Build the Gaussians of `backend`'s current scene, fit them to MuJoCo renders from the
    config's training views and measure them on its held-out views."""
    config = config or FitConfig()
    scene = scene_from_backend(backend, config.sampling())
    obj = backend.scene.objects[0].asset.name
    lookat = backend.object_com(obj)
    train = sample_cameras(config.train_views, lookat, config, stream=0)
    train += [mujoco_camera(backend, c, (config.size, config.size)) for c in config.env_views]
    heldout = sample_cameras(config.heldout_views, lookat, config, stream=1)
    train_views, heldout_views = mujoco_views(backend, train), mujoco_views(backend, heldout)
    labels, parts = list(backend.segmentation_labels), object_parts(backend)
    params = config.raster_params()
    initial = evaluate(scene, heldout_views, labels, parts, params)
    t0 = time.perf_counter()
    lut = segment_label_lut(scene, labels)
    fitted = fit_scene(scene, train_views, config, lut[scene.segment_ids + 1],
                       [labels.index(p) for p in parts])
    seconds = time.perf_counter() - t0
    return FitResult(fitted, evaluate(fitted, heldout_views, labels, parts, params), initial, seconds)
