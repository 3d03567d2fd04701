"""Process-pool workers that do not outlive their parent.

A `ProcessPoolExecutor` worker blocks on a queue whose write end it holds itself, so a parent
killed by a signal (which skips the pool's shutdown) never gives it EOF: without a watchdog it
finishes its queued items and then waits forever.
"""

from __future__ import annotations

import os
import threading
import time

PARENT_POLL_S = 1.0


def watch_parent(parent_pid: int) -> None:
    """Start a daemon thread that ends this process within `PARENT_POLL_S` seconds of its
    parent `parent_pid` going away; a pool's `initializer` (pass `os.getpid()` from the parent)."""
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True,
                     name="parent-watchdog").start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)
