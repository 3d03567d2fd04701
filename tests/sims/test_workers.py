"""The asset build's process pool: its workers do not outlive a killed parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_executors import _alive, kill_and_wait


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ")[-1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _is_pool_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_asset_build_workers_exit_when_their_parent_is_killed(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    # more instances than two workers build in the test's time, so both are busy when it kills
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "from sims.objects.library import build_library; "
         f"build_library({str(tmp_path)!r}, ['mug', 'kettle'], workers=2, max_instances=30, "
         "progress=False)"],
        cwd=repo)
    workers: set[int] = set()
    try:
        deadline = time.time() + 60
        # the pool's two workers (spawn also starts a resource tracker, which ends on EOF)
        while len(workers) < 2 and time.time() < deadline:
            workers = {p for p in _children(parent.pid) if _is_pool_worker(p)}
            time.sleep(0.2)
        assert len(workers) == 2, f"workers did not start: {workers}"
        while not list(tmp_path.glob("*/*")) and time.time() < deadline:
            time.sleep(0.2)  # building, past their set-up
        left = kill_and_wait(parent, workers)
    finally:
        parent.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
    assert not left, f"asset build workers {left} outlived their killed parent"
