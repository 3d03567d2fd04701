"""What the staged experiment scripts (bilevel_table.py, cross_sim.py, one_demo.py) share:
running a robopolicy command with its output logged, and a training stage that is skipped when
finished and continued when interrupted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

#: robopolicy.training.trainer_state.STATE_FILE (not imported: that module imports torch)
STATE_FILE = "train_state.pt"


def run(cmd: list[str], log: Path) -> float:
    """Run a robopolicy command (printed first), its output appended to `log`; wall seconds. A
    failed command ends the script with its own last output line and where its log is."""
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        start = f.tell()
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        with open(log, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").strip().splitlines()
        raise SystemExit(f"{cmd[3] if len(cmd) > 3 else cmd[0]} failed (exit {code}): "
                         f"{lines[-1] if lines else 'no output'} (log: {log})")
    return time.time() - t0


def cli(*args: str) -> list[str]:
    """The command line of `robopolicy <args>` with this interpreter."""
    return [sys.executable, "-m", "robopolicy.cli", *args]


def trained(run_dir: Path, steps: int) -> bool:
    """Whether the training run in `run_dir` saved its last checkpoint at `steps`."""
    meta = run_dir / "checkpoints" / "latest" / "meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("step") == steps


def train_stage(cmd: list[str], run_dir: Path, steps: int, log: Path) -> float | None:
    """Run the training command `cmd` (writing to `run_dir`) unless it already finished at
    `steps`; an interrupted run (a training state left in its checkpoints) is continued with
    `resume=true` rather than started over. Wall seconds, or None when skipped."""
    if trained(run_dir, steps):
        return None
    resume = ["resume=true"] if (run_dir / "checkpoints" / STATE_FILE).is_file() else []
    return run([*cmd, *resume], log)
