"""Where training metrics go: metrics.jsonl always, TensorBoard by default, wandb when asked.

    logger = MetricsLogger(out_dir, tensorboard=True, wandb_project=None, config=run)
    logger = MetricsLogger(out_dir, resume_step=500)  # a resumed run: rows after 500 dropped first
    logger.log(step, {"loss": 0.1, "lr": 1e-4})
    logger.close()
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from robopolicy.errors import RobopolicyError


class MetricsLogger:
    """Appends one JSON row per log step and mirrors the scalars to TensorBoard / wandb.

    TensorBoard event files go to ``out_dir/tensorboard`` (``tensorboard --logdir outputs/train``).
    A run resumed from the checkpoint at ``resume_step`` first drops what the interrupted run
    logged after that step (metrics.jsonl rows, TensorBoard events), since the resumed run logs
    those steps again.
    """

    def __init__(self, out_dir: Path, tensorboard: bool = True, wandb_project: str | None = None,
                 config: Mapping | None = None, resume_step: int | None = None) -> None:
        path = out_dir / "metrics.jsonl"
        if resume_step is not None:
            truncate_metrics(path, resume_step)
        self._jsonl = open(path, "a")
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(out_dir / "tensorboard"), purge_step=purge)
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise RobopolicyError(f"trainer.wandb={wandb_project!r} needs the wandb package "
                                      "(pip install wandb), or set trainer.wandb=null") from None
            self._wandb = wandb.init(project=wandb_project, dir=str(out_dir), config=dict(config or {}),
                                     resume="allow")

    def log(self, step: int, row: Mapping[str, float]) -> None:
        self._jsonl.write(json.dumps({"step": step, **row}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in row.items():
                self._tb.add_scalar(f"train/{key}", value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(dict(row), step=step)

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the rows of the metrics.jsonl at `path` logged at or before `step`, rewriting it
    atomically (a kill mid-write leaves the old file); a row that is not a JSON object with a
    step (a line cut by a kill) is dropped too."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.writelines(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
