"""Visual changes a backend applies on top of its scene's nominal look (`Backend.apply_visual`).

Each value is absolute (the look to render, not a step from the current one), so applying
one after another never accumulates, and None restores the nominal look. The per-episode
values are drawn by `sims.partmanip.perturb`; backends only apply them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SURFACE_TEXTURE_PX = 128  # side of the table's and the floor's square textures (pixels)


@dataclass(frozen=True)
class LightingChange:
    """The scene's main light and the camera headlight.

    direction: unit vector the (directional) main light shines along, world frame.
    diffuse, specular: the main light's RGB intensities.
    ambient, headlight_diffuse: the headlight's RGB intensities (it lights what a camera sees
        from the camera itself, so it sets the overall brightness and tint).
    """

    direction: tuple[float, float, float]
    diffuse: tuple[float, float, float]
    specular: tuple[float, float, float]
    ambient: tuple[float, float, float]
    headlight_diffuse: tuple[float, float, float]

    kind = "lighting"


@dataclass(frozen=True)
class CameraChange:
    """A fixed (world-frame) camera moved to `pos` (3,) with rotation `rot` (3, 3) in
    `sims.core.camera`'s convention; its intrinsics stay."""

    camera: str
    pos: tuple[float, float, float]
    rot: tuple[tuple[float, float, float], ...]

    kind = "camera"


@dataclass(frozen=True, eq=False)
class AppearanceChange:
    """The table's and the floor's colour and texture: each surface shows its RGB texture
    (`SURFACE_TEXTURE_PX`, `SURFACE_TEXTURE_PX`, 3) uint8, tiled every `tile_m` metres,
    multiplied by its rgba."""

    table_rgba: tuple[float, float, float, float]
    floor_rgba: tuple[float, float, float, float]
    table_texture: np.ndarray
    floor_texture: np.ndarray
    tile_m: float = 0.5

    kind = "appearance"


VisualChange = LightingChange | CameraChange | AppearanceChange
