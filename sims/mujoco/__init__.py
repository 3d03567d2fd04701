"""MuJoCo backend. Importing this package picks a headless GL backend before mujoco loads.

If MUJOCO_GL is unset we choose EGL when libEGL is present, else OSMesa, so rendering works
with no display; set MUJOCO_GL yourself to override (e.g. `glfw` on a desktop).
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import logging
import os
import sys
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


def _load_triton_first() -> None:
    """Mesa's software rasterizer (EGL or OSMesa on a CPU) and Triton (imported by torch
    compile paths, e.g. via diffusers) each carry their own LLVM; importing Triton *after*
    Mesa has loaded its LLVM segfaults the process, the other order is safe. mujoco (4.x)
    loads the GL library named by MUJOCO_GL as it is imported, so when Triton is installed it
    is loaded before mujoco (~0.3 s, once per process)."""
    if os.environ.get("MUJOCO_GL", "").lower() not in ("egl", "osmesa"):
        return
    if "triton" not in sys.modules and importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


_choose_gl_backend()
_load_triton_first()
# The Panda's visual .obj files (from pybullet_data) lack some texture coordinates; harmless.
warnings.filterwarnings("ignore", message="obj_decoder: invalid or missing face texture")
logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL logs "no accelerate module"

from sims.mujoco.backend import MujocoBackend  # noqa: E402  (after the GL choice)

__all__ = ["MujocoBackend"]
