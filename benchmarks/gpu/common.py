"""What the GPU check's sections share: the run's sizes, device helpers and CLI calls."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE_KEYS = ["proprio", "state", "skill_state"]


@dataclass(frozen=True)
class Sizes:
    """How much each section does: the full run is sized for < 8 minutes on one H100,
    `quick` for a few minutes on a 2-core CPU."""

    episodes: int = 24            # demos per store (one store at 96 px, one at 128 px)
    collect_workers: int = 8
    batches: tuple[int, ...] = (64, 256)
    warmup_steps: int = 5
    timed_steps: int = 20
    speed_variants: tuple[str, ...] = ("DP DDPM-100", "DP DDIM-10", "FM-10", "FM-1")
    speed_batches: tuple[int, ...] = (1, 64)
    speed_repeats: int = 20
    eval_workers: int = 2
    eval_envs: int = 8
    eval_episodes: int = 16
    torchrun_steps: int = 200
    torchrun_ckpt_every: int = 10
    gaussians: tuple[int, ...] = (20_000, 50_000)
    render_repeats: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(episodes=2, collect_workers=1, batches=(8,), warmup_steps=1, timed_steps=2,
                   speed_variants=("DP DDIM-10", "FM-1"), speed_batches=(1,), speed_repeats=2, eval_workers=1, eval_envs=1,
                   eval_episodes=1, torchrun_steps=60, torchrun_ckpt_every=5,
                   gaussians=(20_000,), render_repeats=2)


def sync(device: str) -> None:
    """Wait for the device's queued work, so wall-clock times cover it."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cli(args: list[str], log: Path, timeout: float = 600, launcher: list[str] | None = None,
        env: dict | None = None) -> float:
    """Run `python -m robopolicy.cli <args>` (or under `launcher`), its output to `log`;
    returns its wall time; a failure raises with the log's last lines."""
    cmd = [*(launcher or [sys.executable]), "-m", "robopolicy.cli", *args]
    t0 = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if r.returncode:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(args[:1])} exited {r.returncode}: {' | '.join(tail)}")
    return time.perf_counter() - t0


def collect_store(out: Path, image_px: int, sizes: Sizes, log_dir: Path) -> Path:
    """The demo store the sections train on: `robopolicy collect` of the quickstart's task
    (mug handle lift) with a fixed seed, with state, RGB + part mask at `image_px` and pcd."""
    keys = ",".join([*STATE_KEYS, "rgb.agentview", "part_mask.agentview", "pcd"])
    cli(["collect", "suite=mug_lift", f"episodes={sizes.episodes}", "seed=0",
         f"workers={sizes.collect_workers}", f"suite.env.obs_keys=[{keys}]",
         f"suite.env.image_size=[{image_px},{image_px}]", f"out={out}", "overwrite=true",
         f"hydra.run.dir={log_dir / f'collect_{image_px}'}"], log_dir / f"collect_{image_px}.log")
    return out
