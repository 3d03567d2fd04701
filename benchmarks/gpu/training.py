"""Training throughput with the project's Trainer: samples/s, peak memory and the data's share.

Each cell builds a `Trainer` (setup as `robopolicy train` does: the store cached in RAM, the
normalizer fitted, AdamW + EMA) and times its own steps: `next_batch` (sampling the windows and
copying them to the device; the device waits for it) apart from `optimize` (forward, backward,
optimizer, EMA), with the device synchronized around each.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

from benchmarks.gpu.common import ROOT, STATE_KEYS, Sizes, peak_rss_mb, sync

IMAGE_KEYS = ["proprio", "rgb.agentview", "part_mask.agentview"]
# (label, policy config, overrides, obs keys, image size of the store)
POLICIES = [
    ("state U-Net DP", "diffusion_unet", {}, STATE_KEYS, 128),
    ("transformer DP", "diffusion_transformer", {}, STATE_KEYS, 128),
    ("RGB+mask ResNet-18 DP 96px", "diffusion_unet", {"obs_encoder": {"rgb_backbone": "resnet18"}},
     IMAGE_KEYS, 96),
    ("RGB+mask ResNet-18 DP 128px", "diffusion_unet", {"obs_encoder": {"rgb_backbone": "resnet18"}},
     IMAGE_KEYS, 128),
    ("pcd DP", "diffusion_unet", {}, ["proprio", "pcd"], 128),
]


def policy_config(name: str, overrides: dict | None = None) -> dict:
    """configs/policy/<name>.yaml with its `defaults` (other policy files) merged under it."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "configs" / "policy" / f"{name}.yaml")
    bases = [policy_config(b) for b in cfg.pop("defaults", []) if b != "_self_"]
    merged = OmegaConf.merge(*bases, cfg, overrides or {})
    return OmegaConf.to_container(merged, resolve=True)


def train_cell(policy: dict, obs_keys: list[str], store: Path, device: str, precision: str,
               batch: int, sizes: Sizes, out_dir: Path, save: bool = False) -> dict:
    """Time `sizes.timed_steps` Trainer steps after `sizes.warmup_steps` (a saved policy at
    out_dir/checkpoints/latest with `save`)."""
    import torch

    from robopolicy.training.config import TrainConfig
    from robopolicy.training.trainer import Trainer

    steps = sizes.warmup_steps + sizes.timed_steps
    trainer_cfg = {"steps": steps, "batch_size": batch, "warmup_steps": 0, "device": device,
                   "precision": precision, "tensorboard": False, "seed": 0}
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(TrainConfig.build(policy, trainer_cfg, store, obs_keys, out_dir))
    trainer.setup()
    trainer.policy.train()
    data_s = compute_s = 0.0
    for step in range(1, steps + 1):
        sync(device)
        t0 = time.perf_counter()
        b = trainer.next_batch()
        sync(device)
        t1 = time.perf_counter()
        loss = trainer.optimize(b, step)
        sync(device)
        if step > sizes.warmup_steps:
            data_s += t1 - t0
            compute_s += time.perf_counter() - t1
    if save:
        trainer.save(steps)
    row = {"samples_per_s": round(batch * sizes.timed_steps / (data_s + compute_s), 1),
           "step_ms": round(1000 * (data_s + compute_s) / sizes.timed_steps, 2),
           "data_share": round(data_s / (data_s + compute_s), 3),
           "params_M": round(sum(p.numel() for p in trainer.policy.parameters()) / 1e6, 2),
           "final_loss": round(loss, 4),
           "peak_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
           "peak_rss_mb_process": peak_rss_mb()}
    del trainer, b
    gc.collect()
    return row


def training_section(stores: dict[int, Path], device: str, sizes: Sizes, work: Path) -> dict:
    """Every policy x precision x batch cell; the state U-Net's first cell is saved for the
    evaluation section. A failing cell records its error and the others still run."""
    precisions = ["fp32", "bf16"] if device.startswith("cuda") else ["fp32"]
    rows, failed = [], 0
    for label, config, overrides, keys, px in POLICIES:
        for precision in precisions:
            for batch in sizes.batches:
                cell = {"policy": label, "precision": precision, "batch": batch}
                first = not rows
                out = work / ("state_dp" if first else f"cell_{len(rows)}")
                try:
                    cell |= train_cell(policy_config(config, overrides), keys, stores[px], device,
                                       precision, batch, sizes, out, save=first)
                except Exception as e:  # recorded; the other cells still run
                    cell["error"] = f"{type(e).__name__}: {e}"
                    failed += 1
                    if device.startswith("cuda"):
                        import torch

                        torch.cuda.empty_cache()
                rows.append(cell)
                print(f"training: {label} {precision} b{batch}: "
                      f"{cell.get('samples_per_s', cell.get('error'))}", flush=True)
    note = None if device.startswith("cuda") else "bf16 autocast is CUDA-only: fp32 rows only"
    return {"rows": rows, "warmup_steps": sizes.warmup_steps, "timed_steps": sizes.timed_steps,
            "note": note, "policy_dir": str(work / "state_dp" / "checkpoints" / "latest"),
            "failed_cells": failed}
