"""What the staged experiment scripts (bilevel_table.py, cross_sim.py) share: running a
robopolicy command with its output logged, and telling a finished training run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], log: Path) -> float:
    """Run a robopolicy command (printed first), its output appended to `log`; wall seconds."""
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.time() - t0


def cli(*args: str) -> list[str]:
    """The command line of `robopolicy <args>` with this interpreter."""
    return [sys.executable, "-m", "robopolicy.cli", *args]


def trained(run_dir: Path, steps: int) -> bool:
    """Whether the training run in `run_dir` saved its last checkpoint at `steps`."""
    meta = run_dir / "checkpoints" / "latest" / "meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("step") == steps
