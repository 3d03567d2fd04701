"""Perturbation test splits: the test episodes rendered with changed lighting, agentview pose,
table and floor appearance, or with the object placed beyond the training range.

`EnvConfig.perturb` names a kind (or a mapping: `kind` and its ranges, as in
`configs/perturb/<kind>.yaml`); the env draws each episode's perturbation at reset from a
generator seeded by the episode's identity (task, instance and initial-state seed), so an
episode is perturbed the same way every time and differently from its neighbours, and applies
it through the backend (`Backend.apply_visual`) or, for `pose_wide`, as the placement.
Nothing here changes the task, the instance or the physics.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sims.core.camera import lookat_rotation
from sims.core.config import ConfigMixin
from sims.core.perturb import (
    SURFACE_TEXTURE_PX,
    AppearanceChange,
    CameraChange,
    LightingChange,
    VisualChange,
)
from sims.partmanip.perturb_textures import surface_texture

if TYPE_CHECKING:
    from sims.core.types import CameraSpec
    from sims.partmanip.tasks import TaskSpec

# Seeds every perturbation draw (with the kind and the episode): a family of its own, distinct
# from the catalog's, the placements' and the training augmenters' seeds.
PERTURB_SEED_FAMILY = 0x50455254  # "PERT"
# the scene's nominal lights (sims.mujoco.scene): the lighting kind scales and tints these
NOMINAL_LIGHT_DIFFUSE, NOMINAL_LIGHT_SPECULAR = 0.6, 0.3
NOMINAL_HEAD_AMBIENT, NOMINAL_HEAD_DIFFUSE = 0.35, 0.45


class EnvRanges(Protocol):
    """What a draw reads of the env's config (`EnvConfig`): the training placement range."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]


@dataclass(frozen=True)
class EpisodePerturbation:
    """What one episode gets: a visual change for the backend and/or an object placement
    (x, y) replacing the training-range one (the yaw stays the episode's)."""

    kind: str
    visual: VisualChange | None = None
    placement: tuple[float, float] | None = None


def _either_side(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A magnitude in [lo, hi] with a random sign (never near zero when lo > 0)."""
    return float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))


@dataclass(frozen=True)
class Lighting(ConfigMixin):
    """The main light's direction, and every light's colour and intensity."""

    tilt_deg: tuple[float, float] = (25.0, 65.0)  # main light's angle from straight down (any azimuth)
    intensity: tuple[float, float] = (1.25, 1.6)  # every light x or / this factor (darker or brighter)
    tint: float = 0.2  # per-channel colour scale in [1 - tint, 1 + tint] (mean kept at 1)

    kind = "lighting"

    def draw(self, rng: np.random.Generator, config: EnvRanges, cameras) -> EpisodePerturbation:
        tilt = np.radians(rng.uniform(*self.tilt_deg))
        azimuth = rng.uniform(0.0, 2 * np.pi)
        direction = (np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), -np.cos(tilt))
        scale = float(np.exp(_either_side(rng, *np.log(self.intensity))))
        tint = rng.uniform(1 - self.tint, 1 + self.tint, size=3)
        colour = scale * tint / tint.mean()
        rgb = lambda v: tuple(float(c) for c in v * colour)  # noqa: E731
        return EpisodePerturbation(self.kind, visual=LightingChange(
            direction=tuple(float(v) for v in direction), diffuse=rgb(NOMINAL_LIGHT_DIFFUSE),
            specular=tuple([NOMINAL_LIGHT_SPECULAR * min(scale, 1.0)] * 3),
            ambient=rgb(NOMINAL_HEAD_AMBIENT), headlight_diffuse=rgb(NOMINAL_HEAD_DIFFUSE)))


@dataclass(frozen=True)
class Camera(ConfigMixin):
    """The agentview camera moved on a sphere around its look-at point, which shifts a little,
    and rolled; it still sees the table and the object."""

    camera: str = "agentview"
    azimuth_deg: tuple[float, float] = (6.0, 20.0)  # about the vertical through the look-at point, either way
    elevation_deg: tuple[float, float] = (-8.0, 10.0)  # added to the view's elevation
    distance: tuple[float, float] = (0.85, 1.15)  # x the nominal distance to the look-at point
    lookat_shift_m: float = 0.03  # look-at point moved by up to this in x and y
    roll_deg: float = 5.0  # about the optical axis, either way, up to this

    kind = "camera"

    def draw(self, rng: np.random.Generator, config: EnvRanges,
             cameras: tuple[CameraSpec, ...]) -> EpisodePerturbation:
        cam = next((c for c in cameras if c.name == self.camera), None)
        if cam is None or cam.body is not None or cam.lookat is None:
            raise ValueError(f"perturb camera: {self.camera!r} is not a fixed look-at camera of "
                             f"the env (cameras: {[c.name for c in cameras]})")
        lookat = np.asarray(cam.lookat, float)
        offset = np.asarray(cam.pos, float) - lookat
        r = np.linalg.norm(offset)
        az = np.arctan2(offset[1], offset[0]) + np.radians(_either_side(rng, *self.azimuth_deg))
        el = np.arcsin(offset[2] / r) + np.radians(rng.uniform(*self.elevation_deg))
        r *= rng.uniform(*self.distance)
        lookat = lookat + np.append(rng.uniform(-self.lookat_shift_m, self.lookat_shift_m, 2), 0.0)
        pos = lookat + r * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        roll = np.radians(rng.uniform(-self.roll_deg, self.roll_deg))
        c, s = np.cos(roll), np.sin(roll)
        rot = lookat_rotation(pos, lookat, cam.up) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        return EpisodePerturbation(self.kind, visual=CameraChange(
            self.camera, tuple(float(v) for v in pos), tuple(tuple(float(v) for v in row) for row in rot)))


@dataclass(frozen=True)
class Appearance(ConfigMixin):
    """New table and floor textures (`sims.partmanip.perturb_textures`: the evaluation's own
    generator and seed family, disjoint from the `appearance` augmenter's)."""

    tile_m: tuple[float, float] = (0.2, 0.6)  # one texture tile spans this many metres

    kind = "appearance"

    def draw(self, rng: np.random.Generator, config: EnvRanges, cameras) -> EpisodePerturbation:
        white = (1.0, 1.0, 1.0, 1.0)  # the texture carries the colour
        return EpisodePerturbation(self.kind, visual=AppearanceChange(
            white, white, surface_texture(rng, SURFACE_TEXTURE_PX),
            surface_texture(rng, SURFACE_TEXTURE_PX), float(rng.uniform(*self.tile_m))))


@dataclass(frozen=True)
class PoseWide(ConfigMixin):
    """The object placed beyond the training range (`EnvConfig.x_range`, `y_range`) but on the
    table within the arm's comfortable reach: drawn in the wide box, at least `margin` outside
    the training box in x or y."""

    x_range: tuple[float, float] = (0.36, 0.68)  # metres, robot base frame
    y_range: tuple[float, float] = (-0.22, 0.22)
    margin: float = 0.02

    kind = "pose_wide"

    def draw(self, rng: np.random.Generator, config: EnvRanges, cameras) -> EpisodePerturbation:
        (x0, x1), (y0, y1), m = config.x_range, config.y_range, self.margin
        for _ in range(1000):
            x, y = rng.uniform(*self.x_range), rng.uniform(*self.y_range)
            if not (x0 - m <= x <= x1 + m and y0 - m <= y <= y1 + m):
                return EpisodePerturbation(self.kind, placement=(float(x), float(y)))
        raise ValueError(f"perturb pose_wide: x_range {self.x_range} x y_range {self.y_range} "
                         f"has no room outside the training range plus margin {m}")


PERTURBATIONS: dict[str, type] = {"lighting": Lighting, "camera": Camera,
                                  "appearance": Appearance, "pose_wide": PoseWide}
Perturbation = Lighting | Camera | Appearance | PoseWide


def make_perturbation(cfg: str | Mapping[str, Any] | None) -> Perturbation | None:
    """A perturbation from its kind's name, or a mapping of `kind` and its ranges; None: none."""
    if cfg is None:
        return None
    params = {"kind": cfg} if isinstance(cfg, str) else dict(cfg)
    kind = params.pop("kind", None)
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturb {kind!r} (known: {', '.join(PERTURBATIONS)})")
    try:
        return PERTURBATIONS[kind].from_config(params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"perturb {kind}: {e}") from None


def episode_rng(kind: str, task: TaskSpec, init_seed: int) -> np.random.Generator:
    """The generator of one episode's perturbation: a function of the kind and the episode's
    identity (task, instance, initial-state seed) alone."""
    identity = f"{task.task_id}|{task.category}|{task.instance_id}|{init_seed}"
    return np.random.default_rng([PERTURB_SEED_FAMILY, list(PERTURBATIONS).index(kind),
                                  zlib.crc32(identity.encode())])


def episode_perturbation(p: Perturbation, task: TaskSpec, init_seed: int, config: EnvRanges,
                         cameras: tuple[CameraSpec, ...]) -> EpisodePerturbation:
    """Episode `task` (from `init_seed`)'s perturbation of kind `p`."""
    return p.draw(episode_rng(p.kind, task, init_seed), config, cameras)
