"""The current skill's target part drawn over camera frames (videos; rerun draws its own)."""

from __future__ import annotations

import numpy as np

TARGET_RGB = (230, 60, 50)  # the target part, in masks, overlays and point clouds


def overlay_mask(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`frame` (H, W, 3) uint8 with `mask` (h, w) bool blended in TARGET_RGB; a mask of another
    size is scaled to the frame (nearest pixel)."""
    h, w = frame.shape[:2]
    if mask.shape != (h, w):
        rows = np.arange(h) * mask.shape[0] // h
        cols = np.arange(w) * mask.shape[1] // w
        mask = mask[rows[:, None], cols[None, :]]
    out = frame.copy()
    out[mask] = (1 - alpha) * frame[mask] + alpha * np.asarray(TARGET_RGB)
    return out
