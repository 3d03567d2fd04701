"""Fit a simulated scene's Gaussians to MuJoCo's own renders, so they look like the simulator.

Views are sampled around the object (a seeded set for training plus the env's agentview, and a
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


@dataclass(frozen=True)
class FitConfig:
    """What a fit renders and how long it optimises (all of it keys the fit cache)."""

    iterations: int = 300
    train_views: int = 24
    """Seeded random views, plus the env's agentview camera."""
    heldout_views: int = 6
    size: int = 128
    """Image side, pixels (square views)."""
    seed: int = 0
    fovy_deg: float = 50.0
    distance_m: tuple[float, float] = (0.45, 1.0)
    """Camera distance from its look-at point."""
    elevation_deg: tuple[float, float] = (20.0, 65.0)
    azimuth_deg: tuple[float, float] = (-135.0, 135.0)
    """About the look-at point, from +x (the side facing the robot)."""
    lookat_jitter_m: float = 0.08
    """Look-at points scatter this much (std) around the object's centre."""
    lr_color: float = 0.1
    lr_opacity: float = 0.05
    lr_scale: float = 0.01
    final_lr_fraction: float = 0.1
    """Learning rates decay exponentially to this fraction of their start."""
    fit_opacity: bool = False
    fit_scales: bool = False
    sh_degree: int = 0
    """0: one colour per Gaussian; 1: plus a linear view dependence (MuJoCo's headlight)."""
    per_m2: float = 20_000.0
    """Gaussians per square metre on robot and table surfaces."""
    object_per_m2: float = 150_000.0
    """... and on the objects'."""
    sigma_per_spacing: float = 0.6
    """Disc size in units of the sample spacing (`MeshSampling`)."""
    eps2d_px2: float = 0.03
    """The renderer's low-pass (`RasterParams.eps2d_px2`) for the fit and for renders of the
    fitted scene: gsplat's 0.3 px^2 widens every edge-on disc of a silhouette to about a pixel,
    and the tens of discs stacked along such a line of sight dilate part masks by a pixel."""

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
                                        sigma_per_spacing=self.sigma_per_spacing),
                           object_per_m2=self.object_per_m2)


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


def fit_scene(scene: GaussianScene, views: list[View], config: FitConfig) -> GaussianScene:
    """`scene` with its colours (and opacities, scales if the config says so) fitted by Adam
    to `views`, one view per iteration in a seeded order."""
    dc = scene.sh_dc.detach().clone().requires_grad_(True)
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

    for _ in range(config.iterations):
        if not order:
            order = rng.permutation(len(views)).tolist()
        view = views[order.pop()]
        out = render(current(), view.camera, params=config.raster_params(), segments=False)
        loss = ((out.rgb - view.rgb.to(out.rgb.device)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    fitted = current()
    return GaussianScene(
        fitted.means.detach(), fitted.quats_wxyz.detach(), fitted.log_scales.detach(),
        fitted.opacity_logits.detach(), fitted.sh_dc.detach(), fitted.segment_ids,
        dict(fitted.segments), None if rest is None else rest.detach())


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
    train.append(mujoco_camera(backend, CARRIER_CAMERA, (config.size, config.size)))
    heldout = sample_cameras(config.heldout_views, lookat, config, stream=1)
    train_views, heldout_views = mujoco_views(backend, train), mujoco_views(backend, heldout)
    labels, parts = list(backend.segmentation_labels), object_parts(backend)
    params = config.raster_params()
    initial = evaluate(scene, heldout_views, labels, parts, params)
    t0 = time.perf_counter()
    fitted = fit_scene(scene, train_views, config)
    seconds = time.perf_counter() - t0
    return FitResult(fitted, evaluate(fitted, heldout_views, labels, parts, params), initial, seconds)
