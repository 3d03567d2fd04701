"""`view --web`: rerun's web viewer and its data server, listening on one chosen address.

rerun's Python `serve_grpc` and `serve_web_viewer` listen on every interface and take no
address, so the rerun CLI that ships with rerun-sdk serves both (`--serve-web --bind`) and the
recording is sent to it like to any remote viewer.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from robopolicy.errors import RobopolicyError

ALL_INTERFACES = ("0.0.0.0", "::")


class WebViewer:
    """A rerun CLI process serving the web viewer on `host:web_port` and its gRPC proxy on
    `host:grpc_port`; its output goes to `log_path`. A context manager: leaving it stops the
    server."""

    def __init__(self, host: str, grpc_port: int, web_port: int, log_path: Path,
                 start_timeout_s: float = 30.0):
        self.host, self.grpc_port, self.web_port = host, grpc_port, web_port
        self.log_path, self.start_timeout_s = Path(log_path), start_timeout_s
        self._proc: subprocess.Popen | None = None

    @property
    def _local_host(self) -> str:
        """The address this machine reaches the server at."""
        return "127.0.0.1" if self.host in ALL_INTERFACES else self.host

    @property
    def grpc_url(self) -> str:
        return f"rerun+http://{self._local_host}:{self.grpc_port}/proxy"

    @property
    def page_url(self) -> str:
        return f"http://{self._local_host}:{self.web_port}/?url={quote(self.grpc_url, safe='')}"

    def __enter__(self) -> WebViewer:
        for port, key in ((self.grpc_port, "grpc_port"), (self.web_port, "web_port")):
            self._check_free(port, key)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [*_rerun_cli(), "--serve-web", "--bind", self.host, "--port", str(self.grpc_port),
                 "--web-viewer-port", str(self.web_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the server
                preexec_fn=_die_with_parent)
        try:
            self._wait_until_listening()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _check_free(self, port: int, key: str) -> None:
        """A port already taken would connect us to whatever holds it."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                s.bind((self.host, port))
            except OSError as e:
                raise RobopolicyError(f"view --web: cannot listen on {self.host}:{port} "
                                      f"({e.strerror}); pass another {key}=") from None

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        ports = [self.grpc_port, self.web_port]
        while ports:
            if self._proc.poll() is not None:
                raise RobopolicyError(
                    f"view --web: the rerun server on {self.host} (ports {self.grpc_port}, "
                    f"{self.web_port}) exited: {self._last_log_line()} (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise RobopolicyError(
                    f"view --web: the rerun server did not listen on {self.host}:{ports[0]} "
                    f"within {self.start_timeout_s:.0f} s (log: {self.log_path})")
            try:
                with socket.create_connection((self._local_host, ports[0]), timeout=0.5):
                    ports.pop(0)
            except OSError:
                time.sleep(0.1)

    def _last_log_line(self) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"


def _rerun_cli() -> list[str]:
    """The rerun viewer binary rerun-sdk ships (run directly, so stopping it stops the server;
    `python -m rerun` is a wrapper process around it)."""
    try:
        import rerun_cli
    except ImportError:
        return [sys.executable, "-m", "rerun"]
    binary = Path(rerun_cli.__file__).parent / "rerun"
    return [str(binary)] if binary.exists() else [sys.executable, "-m", "rerun"]


def _die_with_parent() -> None:
    """In the server before exec (Linux): stop it when `view` dies, even if killed outright."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
