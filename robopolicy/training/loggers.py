"""Where training metrics go: metrics.jsonl always, TensorBoard by default, wandb when asked.

    logger = MetricsLogger(out_dir, tensorboard=True, wandb_project=None, config=run)
    logger.log(step, {"loss": 0.1, "lr": 1e-4})
    logger.close()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from robopolicy.errors import RobopolicyError


class MetricsLogger:
    """Appends one JSON row per log step and mirrors the scalars to TensorBoard / wandb.

    TensorBoard event files go to ``out_dir/tensorboard`` (``tensorboard --logdir outputs/train``).
    """

    def __init__(self, out_dir: Path, tensorboard: bool = True, wandb_project: str | None = None,
                 config: Mapping | None = None) -> None:
        self._jsonl = open(out_dir / "metrics.jsonl", "a")
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"))
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
