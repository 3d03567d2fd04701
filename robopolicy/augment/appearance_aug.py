"""The `appearance` augmenter: the table and the background (the floor) re-textured, frames
re-rendered from the Gaussians (`frames`); a ``render`` stage (`compose`), so it composes with
lighting and camera into one render.

Each surface's Gaussians are recoloured by sampling a texture at their position on the surface:
a flat one (the table top, the floor) at its world (x, y), a vertical one (the table's sides) at
(x, z) or (y, z), the axis picked by the Gaussian's thin axis (its normal), the texture tiling
every ``tile_m`` metres. The fit's shading is kept by default (each Gaussian's brightness
relative to its surface's median scales the texture), so the table keeps the object's and the
arm's shadows as the fit saw them.

Textures are procedural (checker, stripes, value noise, linear gradients, in random colours;
this module's own generator and seed family, `TEXTURE_FAMILY`) or image files the user points
to (``params.texture_dir``: PNG/JPG; nothing is downloaded). The test-time
``perturb=appearance`` split uses `sims.partmanip.perturb_textures`, another generator and seed
family: no training texture is one of its test textures (WAVE2 requires them disjoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from robopolicy.augment.frames import FrameParams, GaussianFrames
from robopolicy.augment.registry import register_augmenter
from robopolicy.augment.rerender_aug import SceneEdit, _Rerender
from robopolicy.augment.scene import GaussianScene, quat_to_mat
from robopolicy.augment.sh import dc_to_rgb, rgb_to_dc
from robopolicy.errors import RobopolicyError

# the training textures' seed family: not `sims.partmanip.perturb.PERTURB_SEED_FAMILY`, whose
# textures are the test-time appearance split's
TEXTURE_FAMILY = 0x41505041  # "APPA"
KINDS = ("checker", "stripes", "noise", "gradient")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class AppearanceParams:
    surfaces: list[str] = field(default_factory=lambda: ["table", "background"])
    """Segments re-textured, each with its own draw."""
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    """Procedural kinds drawn from (uniformly)."""
    texture_dir: str | None = None
    """A folder of PNG/JPG images drawn from instead of procedural textures (None: procedural)."""
    tile_m: tuple[float, float] = (0.2, 0.8)
    """The texture's period on the surface, metres, uniform per surface."""
    keep_shading: bool = True
    """Scale the texture by each Gaussian's fitted brightness relative to its surface's."""
    size: int = 128
    """Procedural textures' side, pixels."""
    fit: dict | None = None
    fit_cache_dir: str | None = None


def _colours(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.05, 0.95, size=(n, 3))


def procedural_texture(kind: str, rng: np.random.Generator, size: int = 128
                       ) -> tuple[np.ndarray, dict]:
    """A (size, size, 3) float texture in [0, 1] that tiles, and its parameters."""
    u, v = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size)
    a, b = _colours(rng, 2)
    if kind == "checker":
        cells = int(rng.integers(2, 9))
        w = ((np.floor(u * cells) + np.floor(v * cells)) % 2)[..., None]
        info = {"cells": cells}
    elif kind == "stripes":
        # integer frequencies along u and v keep it tiling; the pair sets the angle
        fu, fv = (int(f) for f in rng.integers(0, 6, size=2))
        fu = fu or (0 if fv else 1)
        duty = float(rng.uniform(0.3, 0.7))
        w = ((u * fu + v * fv) % 1.0 < duty)[..., None].astype(float)
        info = {"freq": [fu, fv], "duty": duty}
    elif kind == "noise":
        cells = int(rng.integers(3, 12))
        grid = rng.random((cells, cells))
        x, y = u * cells, v * cells  # bilinear value noise on a wrapping grid
        i0, j0 = np.floor(x).astype(int) % cells, np.floor(y).astype(int) % cells
        i1, j1, fx, fy = (i0 + 1) % cells, (j0 + 1) % cells, x % 1.0, y % 1.0
        sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
        w = ((grid[j0, i0] * (1 - sx) + grid[j0, i1] * sx) * (1 - sy)
             + (grid[j1, i0] * (1 - sx) + grid[j1, i1] * sx) * sy)[..., None]
        info = {"cells": cells}
    elif kind == "gradient":
        # a triangle wave along an integer direction: it tiles without a seam
        fu, fv = (int(f) for f in rng.integers(0, 4, size=2))
        fu = fu or (0 if fv else 1)
        t = (u * fu + v * fv) % 1.0
        w = (1 - np.abs(2 * t - 1))[..., None]
        info = {"freq": [fu, fv]}
    else:
        raise RobopolicyError(f"augment appearance: params.kinds has {kind!r} "
                              f"(known: {', '.join(KINDS)})")
    tex = a * (1 - w) + b * w
    return tex.astype(np.float32), {"kind": kind, **info,
                                    "colors": [a.round(4).tolist(), b.round(4).tolist()]}


def read_texture(path: Path) -> np.ndarray:
    """An image file as a (H, W, 3) float texture in [0, 1]."""
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(path))
    except Exception as e:  # imageio raises many kinds for unreadable files
        raise RobopolicyError(f"augment appearance: cannot read texture {path} "
                              f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                              ) from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32)
    return img / (255.0 if img.max() > 1.0 else 1.0)


def texture_files(texture_dir: str) -> list[Path]:
    d = Path(texture_dir).expanduser()
    if not d.is_dir():
        raise RobopolicyError(f"augment appearance: params.texture_dir={texture_dir} is not a "
                              "folder")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise RobopolicyError(f"augment appearance: params.texture_dir={texture_dir} holds no "
                              "PNG or JPG images")
    return files


def surface_coords(scene: GaussianScene, index: torch.Tensor) -> torch.Tensor:
    """(M, 2) coordinates of Gaussians `index` on their surface: the world axes across each
    one's normal (its thinnest axis): (x, y) on a flat surface, (x, z) or (y, z) on a wall."""
    rot = quat_to_mat(torch.nn.functional.normalize(scene.quats_wxyz[index], dim=1))
    thin = scene.log_scales[index].argmin(1)
    normal = rot[torch.arange(len(index)), :, thin]  # (M, 3): the thin axis's column
    axis = normal.abs().argmax(1)  # the world axis the surface faces
    keep = torch.tensor([[1, 2], [0, 2], [0, 1]])[axis]  # the other two
    return torch.gather(scene.means[index], 1, keep)


def retexture(scene: GaussianScene, segment: str, texture: np.ndarray, tile_m: float,
              keep_shading: bool = True) -> GaussianScene:
    """`scene` with segment `segment`'s colours sampled from `texture` (H, W, 3) tiled every
    `tile_m` metres (nearest texel); view-dependent colour of those Gaussians cleared."""
    index = torch.nonzero(scene.mask(segment))[:, 0]
    if len(index) == 0:
        return scene
    uv = surface_coords(scene, index) / tile_m % 1.0
    h, w = texture.shape[:2]
    cols = (uv[:, 0] * w).long().clamp(0, w - 1)
    rows = ((1.0 - uv[:, 1]) * h).long().clamp(0, h - 1)  # image rows run down
    rgb = torch.as_tensor(texture, dtype=scene.sh_dc.dtype)[rows, cols]
    if keep_shading:
        lum = dc_to_rgb(scene.sh_dc[index]).mean(1).clamp(min=1e-3)
        rgb = (rgb * (lum / lum.median()).clamp(0.3, 1.5)[:, None]).clamp(0.0, 1.0)
    dc = scene.sh_dc.clone()
    dc[index] = rgb_to_dc(rgb)
    rest = None
    if scene.sh_rest is not None:
        rest = scene.sh_rest.clone()
        rest[index] = 0.0
    return GaussianScene(scene.means, scene.quats_wxyz, scene.log_scales, scene.opacity_logits,
                         dc, scene.segment_ids, dict(scene.segments), rest)


@register_augmenter()
class AppearanceAugmenter(_Rerender):
    """Table and background re-textured per copy (see the module docstring)."""

    def __init__(self, params: dict | None = None) -> None:
        p = AppearanceParams(**(params or {}))
        for kind in p.kinds:
            if kind not in KINDS:
                raise RobopolicyError(f"augment appearance: params.kinds has {kind!r} "
                                      f"(known: {', '.join(KINDS)})")
        self.files = texture_files(p.texture_dir) if p.texture_dir else []
        super().__init__(p, FrameParams(p.fit, p.fit_cache_dir))

    def draw_texture(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """One texture and its parameters: an image file's, or a procedural one drawn in this
        module's seed family."""
        if self.files:
            path = self.files[int(rng.integers(len(self.files)))]
            return read_texture(path), {"kind": "file", "file": str(path)}
        seed = int(rng.integers(2**31))
        kind = self.params.kinds[int(rng.integers(len(self.params.kinds)))]
        tex, info = procedural_texture(kind, np.random.default_rng([TEXTURE_FAMILY, seed]),
                                       self.params.size)
        return tex, {**info, "seed": seed}

    def edit(self, frames: GaussianFrames, scene: GaussianScene, source: dict[str, np.ndarray],
             image_size: tuple[int, int], rng: np.random.Generator) -> SceneEdit:
        p = self.params
        drawn = {}
        names = set(scene.segments.values())
        for surface in p.surfaces:
            if surface not in names:
                raise RobopolicyError(f"augment appearance: params.surfaces has {surface!r}, "
                                      "not a segment of the scene (table, background)")
            tex, info = self.draw_texture(rng)
            tile = float(rng.uniform(*p.tile_m))
            scene = retexture(scene, surface, tex, tile, p.keep_shading)
            drawn[surface] = {**info, "tile_m": tile}
        return SceneEdit(scene, {}, drawn)
