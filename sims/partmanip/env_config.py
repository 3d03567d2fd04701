"""The env's configuration (`EnvConfig`, mirroring `configs/suite/partmanip.yaml`), its cameras
and where an episode places the object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.core.config import ConfigMixin
from sims.core.registry import check_backend
from sims.core.types import CameraSpec

PCD_CAMERA = "agentview"  # the fixed camera whose depth gives the `pcd` observation


def default_cameras(width: int = 128, height: int = 128) -> tuple[CameraSpec, ...]:
    """`agentview`: fixed, looking at the workspace from the front left; `wrist`: on the hand,
    looking along the fingers."""
    return (
        CameraSpec("agentview", width, height, fovy_deg=50.0, pos=(0.9, 0.4, 0.55),
                   lookat=(0.42, 0.0, 0.08)),
        CameraSpec("wrist", width, height, fovy_deg=75.0, body="panda_hand",
                   pos=(-0.07, 0.0, 0.02), lookat=(0.0, 0.0, 0.16), up=(-1.0, 0.0, 0.0)),
    )


@dataclass
class EnvConfig(ConfigMixin):
    """Configuration of PartManipEnv (mirrors `configs/suite/partmanip.yaml`)."""

    obs_keys: tuple[str, ...] = ("proprio", "state", "skill_state")
    image_size: tuple[int, int] = (128, 128)  # width, height of every camera
    action_mode: str = "absolute"  # or "delta"
    articulation_dim: int = 2  # articulation entries in `state`
    x_range: tuple[float, float] = (0.45, 0.60)  # object placement, metres
    y_range: tuple[float, float] = (-0.12, 0.12)
    yaw_range: tuple[float, float] = (-3.1416, 3.1416)  # object yaw, radians (as the yaml writes pi)
    settle_steps: int = 50  # physics steps to let the object come to rest after placement
    render_size: tuple[int, int] = (256, 256)  # env.render() frames (videos)
    pcd_points: int = 512  # points in the `pcd` observation (subsampled or repeated to this)
    backend: str = "mujoco"  # a name registered in sims.core.registry
    # a perturbation test split (sims.partmanip.perturb): lighting, camera, appearance or
    # pose_wide, or a mapping of `kind` and its ranges; None renders and places as trained
    perturb: str | dict | None = None

    def __post_init__(self) -> None:
        from sims.partmanip.perturb import make_perturbation

        check_backend(self.backend)  # in the process that reads the config, not in a worker
        if self.backend == "pybullet":
            from sims.pybullet.renderer import wanted_renderer

            wanted_renderer()  # an unknown renderer, or EGL without its plugin: said here too
        make_perturbation(self.perturb)  # an unknown kind or range: said here too


def initial_pose(init_seed: int, config: EnvConfig) -> tuple[np.ndarray, float]:
    """Where an episode places the object: position (3,) and yaw, a pure function of its seed."""
    rng = np.random.default_rng(init_seed)
    pos = np.array([rng.uniform(*config.x_range), rng.uniform(*config.y_range), 0.002])
    return pos, float(rng.uniform(*config.yaw_range))
