"""MuJoCo backend. Importing this package picks a headless GL backend before mujoco loads.

If MUJOCO_GL is unset we choose EGL when libEGL is present, else OSMesa, so rendering works
with no display; set MUJOCO_GL yourself to override (e.g. `glfw` on a desktop).
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import warnings


def _choose_gl_backend() -> None:
    if os.environ.get("MUJOCO_GL"):
        return
    if ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
    if os.environ.get("MUJOCO_GL") and not os.environ.get("PYOPENGL_PLATFORM"):
        os.environ["PYOPENGL_PLATFORM"] = os.environ["MUJOCO_GL"]


_choose_gl_backend()
# The Panda's visual .obj files (from pybullet_data) lack some texture coordinates; harmless.
warnings.filterwarnings("ignore", message="obj_decoder: invalid or missing face texture")
logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL logs "no accelerate module"

from sims.mujoco.backend import MujocoBackend  # noqa: E402  (after the GL choice)

__all__ = ["MujocoBackend"]
