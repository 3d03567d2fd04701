"""`robopolicy view --native` in a real window: MuJoCo's viewer on an Xvfb display (Mesa's GL
through GLFW), driven with xdotool key presses, watched through screenshots of the display."""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.viewer.signals import sigint_as_from_a_terminal

TOOLS = ("Xvfb", "xdotool")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason="needs Xvfb and xdotool (apt: xvfb xdotool)"),
]


@pytest.fixture
def display():
    """A fresh Xvfb display (":N"); Xvfb picks a free N and writes it to -displayfd."""
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20)
        assert ready, "Xvfb did not start within 20 s"
        yield ":" + os.read(r, 32).decode().strip()
    finally:
        os.close(r)
        xvfb.terminate()
        xvfb.wait(10)


class NativeView:
    """`robopolicy view --native` running on `display`, with a user's hands on it."""

    def __init__(self, display: str, run, tmp_path) -> None:
        self.display = display
        self.env = {**os.environ, "DISPLAY": display}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robopolicy.cli", "view", f"path={run}", "episode=3",
             "--native", "fps=5", f"hydra.run.dir={tmp_path / 'hr'}"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_as_from_a_terminal)
        self.window = self._wait_for_window(60)

    def _xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def _wait_for_window(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self._xdotool("search", "--onlyvisible", "--name", "MuJoCo")
            if found:
                time.sleep(1.0)  # the first frames of the scene
                return int(found.split()[0])
            if self.proc.poll() is not None:
                pytest.fail(f"view --native exited {self.proc.returncode} before its window "
                            f"opened:\n{self.proc.stderr.read()[-3000:]}")
            time.sleep(0.2)
        pytest.fail(f"no MuJoCo window on {self.display} after {timeout} s")

    def key(self, name: str) -> None:
        """A key press into the window (the pointer on it gives it the focus, as no window
        manager runs)."""
        self._xdotool("mousemove", "--window", str(self.window), "200", "200", "key", name)

    def screenshot(self) -> np.ndarray:
        from PIL import ImageGrab

        return np.asarray(ImageGrab.grab(xdisplay=self.display))

    def close_window(self) -> None:
        """What a window manager sends when the user clicks the close button: a
        WM_DELETE_WINDOW message (Xlib through ctypes; xdotool can only destroy a window)."""
        x11 = ctypes.CDLL("libX11.so.6")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                   ctypes.c_void_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

        class ClientMessage(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                        ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                        ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                        ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

        class XEvent(ctypes.Union):
            _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

        dpy = x11.XOpenDisplay(self.display.encode())
        assert dpy, f"cannot open {self.display}"
        event = XEvent()
        event.xclient.type, event.xclient.window, event.xclient.format = 33, self.window, 32
        event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(dpy, self.window, 0, 0, ctypes.byref(event))
        x11.XCloseDisplay(dpy)  # flushes the event

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def _frames_change(view: NativeView, gap: float) -> bool:
    a = view.screenshot()
    time.sleep(gap)
    return bool((view.screenshot() != a).any())


@pytest.fixture
def native(display, eval_run, tmp_path):
    view = NativeView(display, eval_run[0], tmp_path)
    yield view
    if view.proc.poll() is None:  # a failed test leaves no viewer behind
        view.proc.kill()
        view.proc.wait()


def quiet_exit(view: NativeView) -> None:
    code, out, err = view.finish()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "native viewer closed" in out, err[-3000:]


def test_native_pauses_on_space_and_exits_quietly_on_ctrl_c(native):
    assert _frames_change(native, 0.6)  # playing: the scene and the step counter move
    native.key("space")
    time.sleep(0.4)
    assert not _frames_change(native, 1.0)  # paused: nothing moves
    native.proc.send_signal(signal.SIGINT)
    quiet_exit(native)


def test_native_exits_quietly_when_its_window_is_closed(native):
    native.close_window()
    quiet_exit(native)
