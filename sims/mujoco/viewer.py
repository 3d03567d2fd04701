"""A live window on a MuJoCo simulation: MuJoCo's passive viewer with its keys reported by name,
text in the window's corners, and a `close()` that waits for the window's thread to finish."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import mujoco

# GLFW key codes of the non-printing keys reported by name; printing keys report their character
# (letters lowercase), e.g. "r", ".".
_NAMED_KEYS = {32: "space", 256: "escape", 257: "enter", 258: "tab", 259: "backspace",
               261: "delete", 262: "right", 263: "left", 264: "down", 265: "up",
               266: "page_up", 267: "page_down", 268: "home", 269: "end"}

CORNERS = {"top left": mujoco.mjtGridPos.mjGRID_TOPLEFT,
           "top right": mujoco.mjtGridPos.mjGRID_TOPRIGHT,
           "bottom left": mujoco.mjtGridPos.mjGRID_BOTTOMLEFT,
           "bottom right": mujoco.mjtGridPos.mjGRID_BOTTOMRIGHT}


def key_name(code: int) -> str:
    """The name of GLFW key `code`: "space", "right", "backspace", ... or its character."""
    if code in _NAMED_KEYS:
        return _NAMED_KEYS[code]
    return chr(code).lower() if 33 <= code < 127 else f"key{code}"


class PassiveViewer:
    """MuJoCo's passive viewer on (model, data), without its side panels (Tab / Shift-Tab show
    them). `on_key(name)` runs on the window's thread for each key press."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData,
                 on_key: Callable[[str], None] | None = None) -> None:
        import glfw
        import mujoco.viewer

        # launch_passive waits forever for a window whose thread failed to start GLFW (e.g. a
        # DISPLAY with no server behind it); failing here says why instead
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = glfw.init()
        if not started:
            why = str(caught[-1].message) if caught else "no X server or GL behind the display?"
            raise RuntimeError(f"GLFW cannot start ({why})")
        callback = None if on_key is None else (lambda code: on_key(key_name(code)))
        before = set(threading.enumerate())
        self._handle = mujoco.viewer.launch_passive(model, data, key_callback=callback,
                                                    show_left_ui=False, show_right_ui=False)
        # The window lives on threads launch_passive starts; exiting the process while they
        # still draw makes X fail (GLXBadDrawable) and crash, so close() joins them.
        self._threads = [t for t in threading.enumerate() if t not in before]

    def is_running(self) -> bool:
        return self._handle.is_running()

    def sync(self) -> None:
        """Draw the simulation's current state."""
        self._handle.sync()

    def set_overlay(self, texts: dict[str, tuple[str, str]]) -> None:
        """Text over the scene: corner ("top left", "bottom right", ...) -> (left column,
        right column), lines separated by newlines. Replaces the previous overlay."""
        for corner in texts:
            if corner not in CORNERS:
                raise ValueError(f"unknown corner {corner!r} (known: {', '.join(CORNERS)})")
        self._handle.set_texts([(mujoco.mjtFontScale.mjFONTSCALE_150, CORNERS[corner], left, right)
                                for corner, (left, right) in texts.items()])

    def close(self, timeout: float = 5.0) -> None:
        """Close the window and wait (up to `timeout` s) until its thread has let go of it."""
        self._handle.close()
        for thread in self._threads:
            thread.join(timeout)
