"""Headless camera images from PyBullet: RGB, depth in metres and per-link segmentation.

The renderer is chosen once per process: TinyRenderer (CPU) by default, the EGL plugin where a
GPU is present or when asked (`SIMS_PYBULLET_RENDERER=egl`). On a machine without a GPU the EGL
plugin runs on Mesa's llvmpipe, slower than TinyRenderer, and once loaded it serves every camera
call whatever renderer flag is passed; hence the default.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pybullet as pb

from sims.pybullet.frames import invert

log = logging.getLogger(__name__)
RENDERER_ENV = "SIMS_PYBULLET_RENDERER"  # "auto" (default), "tiny" or "egl"
SHIFT_SIGN = -1.0
NEAR, FAR = 0.01, 10.0  # metres: the clip planes (depth precision is best near NEAR)


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0")


def wanted_renderer() -> str:
    """The renderer `SIMS_PYBULLET_RENDERER` asks for, "tiny" or "egl" (auto: EGL where a GPU
    is present); one-line ValueErrors for an unknown value and for EGL asked where PyBullet
    has no EGL plugin (checked again where the plugin loads)."""
    want = os.environ.get(RENDERER_ENV, "auto").lower()
    if want not in ("auto", "tiny", "egl"):
        raise ValueError(f"{RENDERER_ENV}={want!r}: known are auto, tiny, egl")
    if want == "auto":
        want = "egl" if _gpu_present() else "tiny"
    if want == "egl" and _egl_plugin() is None:
        raise ValueError(f"{RENDERER_ENV}=egl: PyBullet's EGL renderer plugin is not "
                         "available here (set it to 'tiny')")
    return want


def _egl_plugin() -> str | None:
    """The EGL plugin's shared library, or None where this PyBullet has none."""
    import importlib.util

    found = importlib.util.find_spec("eglRenderer")
    origin = found.origin if found is not None else None
    return origin if origin and origin.endswith((".so", ".pyd", ".dylib")) else None


def choose_renderer(client: int) -> int:
    """The PyBullet renderer flag for `client`, loading the EGL plugin if that is the choice."""
    if wanted_renderer() == "egl":
        plugin = pb.loadPlugin(_egl_plugin(), "_eglRendererPlugin", physicsClientId=client)
        if plugin < 0:
            raise RuntimeError(f"{RENDERER_ENV}: PyBullet's EGL renderer plugin is not available "
                               "here (set it to 'tiny')")
        log.info("pybullet renders with the EGL plugin")
        return pb.ER_BULLET_HARDWARE_OPENGL
    log.info("pybullet renders with TinyRenderer (CPU)")
    return pb.ER_TINY_RENDERER


def view_matrix(pos: np.ndarray, rot: np.ndarray) -> list[float]:
    """OpenGL view matrix (column-major, 16) of a camera at (pos, rot), `sims.core.camera`'s
    convention (which is OpenGL's: x right, y up, looking along -z)."""
    p, r = invert(pos, rot)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, p
    return m.T.reshape(-1).tolist()


def projection_matrix(fovy_deg: float, width: int, height: int) -> list[float]:
    """OpenGL projection (column-major, 16). PyBullet's image rows sample half a pixel below
    the pixel centres of `sims.core.camera` (measured on the table plane: unprojected depth is
    off it by 0.3% of the distance); the image is shifted back by half a row here."""
    m = list(pb.computeProjectionMatrixFOV(fovy_deg, width / height, NEAR, FAR))
    m[9] = 1.0 / height  # row 1, column 2: a constant offset of y in NDC (2 / height = 1 row)
    return m


def render(client: int, renderer: int, pos: np.ndarray, rot: np.ndarray, fovy_deg: float,
           width: int, height: int, segmentation: bool):
    """(rgb (H,W,3) uint8, depth metres (H,W) float32, segmentation mask (H,W) int32 or None);
    mask pixels are `body + ((link + 1) << 24)`, -1 where nothing is seen."""
    flags = pb.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if segmentation else pb.ER_NO_SEGMENTATION_MASK
    _, _, rgba, zbuf, seg = pb.getCameraImage(
        width, height, view_matrix(pos, rot), projection_matrix(fovy_deg, width, height),
        renderer=renderer, flags=flags, shadow=0, physicsClientId=client)
    rgba = np.asarray(rgba, np.uint8).reshape(height, width, 4)
    z = np.asarray(zbuf, np.float64).reshape(height, width)
    depth = (FAR * NEAR / (FAR - (FAR - NEAR) * z)).astype(np.float32)
    mask = np.asarray(seg, np.int32).reshape(height, width) if segmentation else None
    return rgba[..., :3].copy(), depth, mask
