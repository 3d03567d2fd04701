"""The `image2d` augmenter, the 2-D baseline: a source demo's own frames randomly cropped (and
resized back) and colour-jittered, one draw per episode and camera; everything else copied.
Depth and part masks get the same crop (nearest neighbour); only RGB gets the colour jitter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robopolicy.augment.frames import image_keys
from robopolicy.augment.pose_aug import Variant
from robopolicy.augment.registry import register_augmenter
from robopolicy.errors import RobopolicyError


@dataclass
class Image2dParams:
    crop_scale: tuple[float, float] = (0.8, 1.0)
    """Side of the crop as a fraction of the image's, uniform; its position uniform too."""
    brightness: float = 0.3
    """RGB multiplied by U(1 - b, 1 + b)."""
    contrast: float = 0.3
    """Deviation from the image mean scaled by U(1 - c, 1 + c)."""
    saturation: float = 0.3
    """Deviation from the grey value scaled by U(1 - s, 1 + s)."""


def _resize_index(lo: int, size: int, out: int) -> np.ndarray:
    """Source indices (nearest pixel centre) of `out` pixels spanning [lo, lo + size)."""
    return np.clip(lo + ((np.arange(out) + 0.5) * size / out).astype(int), lo, lo + size - 1)


@register_augmenter()
class Image2dAugmenter:
    """See the module docstring."""

    image_source = "image2d"
    needs_env = False

    def __init__(self, params: dict | None = None) -> None:
        self.params = Image2dParams(**(params or {}))

    def variants(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                 rng: np.random.Generator, n: int) -> list[Variant]:
        cams = image_keys(source)
        if not cams:
            raise RobopolicyError("augment image2d: the source store has no image keys")
        p = self.params
        out = []
        for _ in range(n):
            data, drawn = dict(source), {}
            for cam, kinds in sorted(cams.items()):
                h, w = source[f"{kinds[0]}.{cam}"].shape[1:3]
                side = float(rng.uniform(*p.crop_scale))
                ch, cw = max(1, round(h * side)), max(1, round(w * side))
                y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                jitter = rng.uniform(-1, 1, 3) * [p.brightness, p.contrast, p.saturation] + 1
                rows, cols = _resize_index(y0, ch, h), _resize_index(x0, cw, w)
                for kind in kinds:
                    key = f"{kind}.{cam}"
                    img = source[key][:, rows][:, :, cols]
                    data[key] = _color(img, *jitter) if kind == "rgb" else img
                drawn[cam] = {"crop": [x0, y0, cw, ch], "brightness": jitter[0],
                              "contrast": jitter[1], "saturation": jitter[2]}
            drawn = {c: {k: (float(v) if not isinstance(v, list) else v) for k, v in d.items()}
                     for c, d in drawn.items()}
            meta = {"completion": source_meta["completion"],
                    "skill_starts": source_meta["skill_starts"], "params": drawn}
            out.append(Variant(None, True, "", data, meta))
        return out


def _color(rgb: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    x = rgb.astype(np.float32) * brightness
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = mean + (x - mean) * contrast
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * saturation
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
