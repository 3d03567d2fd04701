"""Headless Chromium driven through its DevTools protocol: open a page, take screenshots.

Used to look at the rerun web viewer as a person does (a software WebGL renderer draws it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium on PATH, or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class HeadlessPage:
    """One page in a fresh headless Chromium (a context manager) of `width` x `height` px."""

    def __init__(self, binary: str, width: int = 1600, height: int = 1000):
        self.binary, self.width, self.height = binary, width, height
        self._profile = tempfile.TemporaryDirectory()
        self._proc: subprocess.Popen | None = None
        self._stack = contextlib.ExitStack()
        self._ws = None
        self._id = 0

    def __enter__(self) -> HeadlessPage:
        from websockets.sync.client import connect

        self._proc = subprocess.Popen(
            [self.binary, "--headless", "--remote-debugging-port=0", "--no-sandbox",
             f"--user-data-dir={self._profile.name}", "--use-angle=swiftshader",
             "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its GPU and renderer processes go with it at exit
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError(f"{self.binary} did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self._ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"],
                                                     max_size=2 ** 28))
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._profile.cleanup()

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result."""
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self):
        """The page as an (H, W, 3) uint8 array."""
        import io

        import numpy as np
        from PIL import Image

        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
