"""Procedural surface textures for the `appearance` perturbation (test splits only).

Seamless (they tile) square RGB textures of four pattern families: checker, stripes, wood
grain and blotches (smooth noise), in two colours of a random palette. This generator and its
seed family (`sims.partmanip.perturb.PERTURB_SEED_FAMILY`) belong to the evaluation splits:
the training-time `appearance` augmenter must use its own generator and seeds, so no test
texture is ever seen in training.
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("checker", "stripes", "grain", "blotches")


def _smooth_noise(rng: np.random.Generator, n: int, cutoff: float) -> np.ndarray:
    """(n, n) periodic noise in [0, 1]: white noise low-passed in Fourier space (so it tiles)."""
    spec = np.fft.rfft2(rng.standard_normal((n, n)))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    spec *= np.exp(-(fx**2 + fy**2) / (2 * cutoff**2))
    out = np.fft.irfft2(spec, s=(n, n))
    return (out - out.min()) / max(np.ptp(out), 1e-9)


def _pattern(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """(n, n) mix weights in [0, 1] between the texture's two colours."""
    yy, xx = np.mgrid[0:n, 0:n] / n  # one texture tile spans [0, 1)
    if kind == "checker":
        k = int(rng.integers(2, 9))
        return ((np.floor(xx * k) + np.floor(yy * k)) % 2).astype(float)
    if kind == "stripes":
        kx, ky = (int(v) for v in rng.integers(0, 7, size=2))
        kx = kx or 1  # integer frequencies keep the tile seamless
        return 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (kx * xx + ky * yy)))
    if kind == "grain":
        k = int(rng.integers(3, 12))
        warp = _smooth_noise(rng, n, 0.02) * rng.uniform(1.0, 3.0)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (k * yy + warp))
    return _smooth_noise(rng, n, rng.uniform(0.02, 0.08))


def _palette(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB colours in [0, 1]: a random base and a contrasting second colour."""
    a = rng.uniform(0.15, 0.95, size=3)
    b = np.clip(a * rng.uniform(0.3, 0.7) + rng.uniform(-0.15, 0.15, size=3), 0.0, 1.0)
    if rng.random() < 0.5:
        b = rng.uniform(0.05, 1.0, size=3)  # an unrelated second colour
    return a, b


def surface_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 texture of a random pattern and palette, with fine noise."""
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    w = _pattern(rng, kind, size)[..., None]
    a, b = _palette(rng)
    img = a * (1 - w) + b * w
    img *= 1 + rng.uniform(0.0, 0.12) * (_smooth_noise(rng, size, 0.25)[..., None] - 0.5)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
