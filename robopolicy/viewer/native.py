"""Replay an episode in the simulator's own interactive viewer (`Backend.interactive_viewer`;
MuJoCo's passive viewer), in real time at the env's control rate; the window stays open after
the last step until closed. Needs a display."""

from __future__ import annotations

import os
import sys
import time

from robopolicy.errors import RobopolicyError
from robopolicy.viewer.sources import Episode
from sims.core.control import CONTROL_HZ

NO_DISPLAY = ("view --native: no display (DISPLAY is unset) for MuJoCo's viewer; use --save "
              "out.rrd, --video out.mp4 or --web instead")


def has_display() -> bool:
    """Whether a window can be opened (an X11/Wayland display, or macOS)."""
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or
                                            os.environ.get("WAYLAND_DISPLAY"))


def play_native(episode: Episode, fps: float = CONTROL_HZ) -> None:
    """Show `episode`'s replay in the MuJoCo viewer."""
    if not has_display():
        raise RobopolicyError(NO_DISPLAY)
    # before the backend loads: MuJoCo's window needs GLFW, not a headless GL
    os.environ.setdefault("MUJOCO_GL", "glfw")
    from robopolicy.viewer.replay import replay_steps

    viewer, start = None, time.perf_counter()
    try:
        for t, env, _, _ in replay_steps(episode):
            if viewer is None:  # the scene is built at reset
                viewer = env.backend.interactive_viewer()
            if not viewer.is_running():
                return
            viewer.sync()
            time.sleep(max(0.0, start + t / fps - time.perf_counter()))
        while viewer is not None and viewer.is_running():
            time.sleep(0.05)
    finally:
        if viewer is not None:
            viewer.close()
