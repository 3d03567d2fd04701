"""The process executor: ordered results, worker set-up, and workers that outlive a killed parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robopolicy.executors import WorkerDied, ordered_map

_STATE = {}


def _set_offset(offset: int) -> None:
    _STATE["offset"] = offset


def _add_offset(x: int) -> int:
    return x + _STATE["offset"]


def _fail_init() -> None:
    raise RuntimeError("no simulator here")


def _record_pid_and_sleep(args) -> None:
    """Write this worker's pid into the folder, then stay busy far longer than the test waits."""
    folder, i = args
    Path(folder, f"{os.getpid()}.{i}").touch()
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped by its dead parent's reaper yet) has stopped running
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[-1][0] != "Z"


def kill_and_wait(parent: subprocess.Popen, workers: set[int], wait_s: float = 15.0) -> list[int]:
    """SIGKILL the pool's parent (no shutdown of the pool runs); the workers alive `wait_s` later."""
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + wait_s
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    return [p for p in workers if _alive(p)]


def test_results_in_item_order_after_each_workers_init():
    out = list(ordered_map(_add_offset, range(7), init=_set_offset, init_args=(100,), workers=2))
    assert out == [100 + i for i in range(7)]


def test_a_failing_worker_setup_is_one_error():
    with pytest.raises(WorkerDied, match="sim worker process died"):
        list(ordered_map(_add_offset, range(3), init=_fail_init, workers=1))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from robopolicy.executors import ordered_map; "
         "from tests.test_executors import _record_pid_and_sleep, _set_offset; "
         f"list(ordered_map(_record_pid_and_sleep, [({str(tmp_path)!r}, i) for i in range(4)], "
         "init=_set_offset, init_args=(0,), workers=2))"],
        cwd=repo)
    pids: set[int] = set()
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.2)
        pids = {int(p.name.split(".")[0]) for p in tmp_path.iterdir()}
        assert len(pids) == 2, f"workers did not start: {pids}"
        left = kill_and_wait(parent, pids)
    finally:
        parent.kill()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, f"workers {left} kept running after their parent was killed"
