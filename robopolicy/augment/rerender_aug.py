"""The `lighting` and `camera` augmenters: a source demo's camera images re-rendered from its
instance's fitted Gaussian scene (`frames`), with the Gaussians recoloured (lighting) or the
agentview camera moved (camera). The actions, proprio and object states are the source's, so
no simulator replay is needed and every variant is kept. The object's point cloud (``pcd``,
``skill_pcd``: what the agentview sees, in the robot base frame) is re-rendered when the camera
moves the agentview, and copied from the source otherwise (the simulator's is exact).

Each is a ``render`` stage (`compose`): its `edit` changes the scene or the cameras, so several
compose into one render. Each variant's draw is in its provenance (``params``). A camera variant also records the camera
it was rendered from in the episode's ``cameras`` metadata (`frames.camera_to_dict`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robopolicy.augment.camera import PinholeCamera
from robopolicy.augment.frames import (
    FrameCache,
    FrameParams,
    GaussianFrames,
    camera_to_dict,
    image_keys,
)
from robopolicy.augment.pose_aug import Variant
from robopolicy.augment.registry import register_augmenter
from robopolicy.augment.scene import GaussianScene
from robopolicy.augment.sh import dc_to_rgb, rgb_to_dc
from robopolicy.errors import RobopolicyError


@dataclass
class LightingParams:
    """RoboSplat's visual attribute editing (its ranges are the defaults)."""

    scale: tuple[float, float] = (0.3, 1.8)
    """Per-channel colour scale, drawn uniformly per episode."""
    offset: tuple[float, float] = (-0.3, 0.3)
    """Per-channel colour offset, drawn uniformly per episode."""
    noise_std: float = 0.1
    """Per-Gaussian, per-channel normal noise on the base colour (before scale and offset)."""
    fit: dict[str, Any] | None = None
    """`FitConfig` overrides of the instance's colour fit (None: the defaults)."""
    fit_cache_dir: str | None = None


@dataclass
class CameraParams:
    """Spherical jitter of one world-fixed camera about its look-at point (RoboSplat's main-view
    ranges are the defaults; each is a half-width of a uniform draw)."""

    camera: str = "agentview"
    lookat_m: float = 0.1
    """The look-at point moves this much along each world axis."""
    radius_m: float = 0.2
    """The distance to the look-at point changes this much."""
    azimuth_deg: float = 30.0
    elevation_deg: float = 30.0
    roll_deg: float = 30.0
    """Rotation about the optical axis."""
    elevation_limits_deg: tuple[float, float] = (5.0, 85.0)
    """The jittered elevation is clamped here: the camera stays above the table."""
    min_radius_m: float = 0.2
    fit: dict[str, Any] | None = None
    """`FitConfig` overrides of the instance's colour fit (None: the defaults)."""
    fit_cache_dir: str | None = None


@dataclass
class SceneEdit:
    """A render stage's change to one copy: a new scene (None: unchanged), cameras that replace
    the env's ({name: camera}) and the draw (for the provenance)."""

    scene: GaussianScene | None
    cameras: dict[str, PinholeCamera]
    drawn: dict


class _Rerender:
    """Shared by the render augmenters (`compose`'s ``render`` stages): per-instance Gaussian
    frames, and variants made of one `edit` each, rendered."""

    image_source = "gaussians"
    needs_env = False
    stage = "render"

    def __init__(self, params, frame_params: FrameParams) -> None:
        self.params = params
        self.frames = FrameCache(frame_params)

    def edit(self, frames: GaussianFrames, scene: GaussianScene, source: dict[str, np.ndarray],
             image_size: tuple[int, int], rng: np.random.Generator) -> SceneEdit:
        raise NotImplementedError

    def variants(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                 rng: np.random.Generator, n: int) -> list[Variant]:
        """`n` variants of one source episode, each one `edit` of the fitted scene, rendered."""
        if not image_keys(source):
            raise RobopolicyError("augment: the source store has no image keys (rgb.<cam>, "
                                  "depth.<cam>, part_mask.<cam>) to re-render")
        frames = self.frames.get(source_meta["category"], source_meta["instance_id"])
        size = _image_size(env, source)
        out = []
        for _ in range(n):
            e = self.edit(frames, frames.scene, source, size, rng)
            images = frames.render_episode(source, source_meta, list(source), size,
                                           scene=e.scene, cameras=e.cameras or None)
            data = {k: images.get(k, v) for k, v in source.items()}
            meta = {"completion": source_meta["completion"],
                    "skill_starts": source_meta["skill_starts"], "params": e.drawn,
                    "cameras": json.dumps({k: camera_to_dict(c) for k, c in e.cameras.items()})
                    if e.cameras else ""}
            out.append(Variant(None, True, "", data, meta))
        return out


def _image_size(env, source: dict[str, np.ndarray]) -> tuple[int, int]:
    from robopolicy.augment.compose import image_size

    return image_size(env, source)


def recolor(scene: GaussianScene, scale: np.ndarray, offset: np.ndarray,
            noise: np.ndarray) -> GaussianScene:
    """`scene` with every Gaussian's base colour c -> clamp(scale * (c + noise) + offset, 0, 1)
    (`scale`, `offset` (3,); `noise` (N, 3)); higher SH degrees are scaled alike."""
    rgb = dc_to_rgb(scene.sh_dc)
    s = torch.as_tensor(scale, dtype=rgb.dtype)
    new = (s * (rgb + torch.as_tensor(noise, dtype=rgb.dtype))
           + torch.as_tensor(offset, dtype=rgb.dtype)).clamp(0.0, 1.0)
    rest = None if scene.sh_rest is None else scene.sh_rest * s
    return GaussianScene(scene.means, scene.quats_wxyz, scene.log_scales, scene.opacity_logits,
                         rgb_to_dc(new), scene.segment_ids, dict(scene.segments), rest)


@register_augmenter()
class LightingAugmenter(_Rerender):
    """Per-episode colour scale and offset per channel and per-Gaussian colour noise."""

    def __init__(self, params: dict | None = None) -> None:
        p = LightingParams(**(params or {}))
        super().__init__(p, FrameParams(p.fit, p.fit_cache_dir))

    def edit(self, frames: GaussianFrames, scene: GaussianScene, source: dict[str, np.ndarray],
             image_size: tuple[int, int], rng: np.random.Generator) -> SceneEdit:
        p = self.params
        scale = rng.uniform(*p.scale, size=3)
        offset = rng.uniform(*p.offset, size=3)
        noise_seed = int(rng.integers(2**31))
        noise = np.random.default_rng(noise_seed).normal(0.0, p.noise_std, (len(scene), 3))
        drawn = {"scale": scale.tolist(), "offset": offset.tolist(),
                 "noise_std": p.noise_std, "noise_seed": noise_seed}
        return SceneEdit(recolor(scene, scale, offset, noise), {}, drawn)


def jitter_camera(spec, p: CameraParams, rng: np.random.Generator) -> tuple[PinholeCamera, dict]:
    """A world-fixed CameraSpec's camera moved on a sphere about its (jittered) look-at point,
    and the draw."""
    from sims.core.camera import lookat_rotation

    pos, lookat = np.asarray(spec.pos, float), np.asarray(spec.lookat, float)
    v = pos - lookat
    r = float(np.linalg.norm(v))
    az, el = np.arctan2(v[1], v[0]), np.arcsin(v[2] / r)
    d_look = rng.uniform(-p.lookat_m, p.lookat_m, 3)
    d_r = float(rng.uniform(-p.radius_m, p.radius_m))
    d_az, d_el, roll = np.radians(rng.uniform(-1, 1, 3)
                                  * [p.azimuth_deg, p.elevation_deg, p.roll_deg])
    lo, hi = np.radians(p.elevation_limits_deg)
    r2, az2, el2 = max(r + d_r, p.min_radius_m), az + d_az, float(np.clip(el + d_el, lo, hi))
    target = lookat + d_look
    new_pos = target + r2 * np.array([np.cos(el2) * np.cos(az2), np.cos(el2) * np.sin(az2),
                                      np.sin(el2)])
    rot = lookat_rotation(new_pos, target, spec.up)
    c, s = np.cos(roll), np.sin(roll)
    rot = rot @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about the optical axis
    drawn = {"lookat": target.tolist(), "radius_m": r2, "azimuth_deg": float(np.degrees(az2)),
             "elevation_deg": float(np.degrees(el2)), "roll_deg": float(np.degrees(roll))}
    return PinholeCamera(new_pos, rot, float(spec.fovy_deg), int(spec.width),
                         int(spec.height)), drawn


@register_augmenter()
class CameraAugmenter(_Rerender):
    """Per-episode spherical jitter of the agentview camera (see `CameraParams`)."""

    def __init__(self, params: dict | None = None) -> None:
        p = CameraParams(**(params or {}))
        super().__init__(p, FrameParams(p.fit, p.fit_cache_dir))

    def edit(self, frames: GaussianFrames, scene: GaussianScene, source: dict[str, np.ndarray],
             image_size: tuple[int, int], rng: np.random.Generator) -> SceneEdit:
        from robopolicy.augment.frames import env_cameras

        p = self.params
        spec = env_cameras(image_size).get(p.camera)
        if spec is None or spec.body is not None or spec.lookat is None:
            raise RobopolicyError(f"augment camera: params.camera={p.camera!r} is not a "
                                  "world-fixed look-at camera of the env")
        if p.camera not in image_keys(source):
            raise RobopolicyError(f"augment camera: the source store has no image of camera "
                                  f"{p.camera!r} (keys rgb.{p.camera}, ...)")
        camera, drawn = jitter_camera(spec, p, rng)
        return SceneEdit(None, {p.camera: camera}, {"camera": p.camera, **drawn})
