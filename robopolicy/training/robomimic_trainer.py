"""Train a robomimic policy (`bc`, `bc_rnn`) with robomimic's own data pipeline and update.

The store is exported to robomimic's HDF5 (`robopolicy.data.export`, into the run directory,
with our episode-level train/valid split as its masks) and read by robomimic's
`SequenceDataset` (built by its `dataset_factory` from the policy's robomimic config) through a
torch DataLoader; every step is robomimic's `process_batch_for_training`,
`postprocess_batch_for_training` and `train_on_batch` on the policy's algorithm (its Adam, its
loss), with our normalizer applied to observations and actions in between
(`RobomimicPolicy.train_on_batch`). The result is a policy directory (checkpoints/latest) that
`robopolicy eval policy.path=...` runs through our rollout pool.

Of the trainer config, steps, batch_size, seed, device, log_every, val_every and ckpt_every
apply; the rest (lr, betas, EMA, warm-up, gradient clipping, rollouts) belong to our own loop.
Resuming is not supported: a robomimic run starts afresh.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopolicy.data.export import export_robomimic
from robopolicy.data.store import EpisodeStore
from robopolicy.device import resolve_device
from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import instantiate_policy, save_policy
from robopolicy.policies.robomimic_adapter import RobomimicPolicy, quiet_robomimic
from robopolicy.progress import progress
from robopolicy.training.config import TrainConfig
from robopolicy.training.loggers import MetricsLogger
from robopolicy.training.trainer import TrainResult, policy_shape_meta

log = logging.getLogger(__name__)
EXPORT_FILE = "robomimic.hdf5"


def sequence_dataset(policy: RobomimicPolicy, hdf5: Path, obs_keys: Sequence[str], split: str):
    """Robomimic's SequenceDataset over the demos of mask `split` ("train"/"valid") of `hdf5`,
    with the policy's sequence length, built by robomimic's own dataset_factory."""
    with quiet_robomimic():
        import robomimic.utils.train_utils as TrainUtils

        policy.init_obs_utils()
        return TrainUtils.dataset_factory(policy.robomimic_config, list(obs_keys),
                                          filter_by_attribute=split, dataset_path=str(hdf5))


def _batches(loader) -> Iterator[tuple[int, dict]]:
    """(epoch, batch) forever: the DataLoader's passes one after another."""
    epoch = 0
    while True:
        epoch += 1
        for batch in loader:
            yield epoch, batch


def train_robomimic(config: TrainConfig | Mapping, *args: Any,
                    callbacks: Sequence[Callable[[int, float], None]] = (),
                    **kwargs: Any) -> TrainResult:
    """Train the robomimic policy `config.policy` for `config.trainer.steps` robomimic updates;
    the policy is saved to out_dir/checkpoints/latest and metrics to out_dir/metrics.jsonl. Each
    callback is called as `cb(step, loss)`. The plain form `train_robomimic(policy_cfg,
    trainer_cfg, dataset_path, obs_keys, out_dir, val_ratio=0.0, resume=False)` builds the
    TrainConfig first."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.build(config, *args, **kwargs)
    cfg, policy_cfg, obs_keys = config.trainer, config.policy, config.obs_keys
    out_dir, val_ratio = config.out_dir, config.val_ratio
    if config.resume:
        raise RobopolicyError(f"resume: policy '{policy_cfg.get('name')}' trains with robomimic's own "
                              "update, which cannot resume; start a new run")
    seed = cfg.seed
    torch.manual_seed(seed)
    device = resolve_device(cfg.device)

    store = EpisodeStore.open(config.dataset)
    if store.n_episodes == 0:
        raise RobopolicyError(f"dataset {store.path}: has no episodes")
    shape_meta = policy_shape_meta(store, list(obs_keys))
    policy = instantiate_policy(policy_cfg, shape_meta)
    if not isinstance(policy, RobomimicPolicy):
        raise RobopolicyError(f"policy '{policy.name}' does not train with robomimic; use "
                              "robopolicy.training.trainer.train")
    policy.fit_normalizer(store.load([*obs_keys, "action"]))
    policy.to(device)

    out_dir.mkdir(parents=True, exist_ok=True)
    hdf5 = export_robomimic(store.path, out_dir / EXPORT_FILE, val_ratio=val_ratio, seed=seed)
    train_set = sequence_dataset(policy, hdf5, obs_keys, "train")
    val_set = sequence_dataset(policy, hdf5, obs_keys, "valid") if val_ratio > 0 else None
    if val_set is not None and len(val_set) == 0:
        val_set = None
    steps, batch_size = cfg.steps, cfg.batch_size
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=batch_size, shuffle=True, num_workers=0,
        drop_last=len(train_set) >= batch_size, generator=torch.Generator().manual_seed(seed))
    log.info("training %s (robomimic %s) on %s: %d episodes (%d val), %d sequences, %s, "
             "%d parameters", policy.name, type(policy.algo).__name__, store.path,
             store.n_episodes, 0 if val_set is None else val_set.n_demos, len(train_set), device,
             sum(p.numel() for p in policy.parameters()))

    ckpt_dir = out_dir / "checkpoints" / "latest"
    extra = {"dataset": str(store.path), "obs_keys": list(obs_keys),
             "dataset_env_config": store.env_config, "trained_with": "robomimic",
             "obs_layout": store.obs_layout.get("version", 1)}

    def save(step: int) -> None:
        save_policy(policy, ckpt_dir, policy_cfg, {**extra, "step": step})

    def val_loss() -> float:
        batch = next(iter(torch.utils.data.DataLoader(val_set, batch_size=4 * batch_size)))
        return float(policy.train_on_batch(batch, epoch=0, validate=True)["losses"]["action_loss"])

    logger = MetricsLogger(out_dir, cfg.tensorboard, cfg.wandb,
                           {"policy": policy_cfg, "trainer": cfg.as_dict(), "dataset": str(store.path)})
    t0, mean_loss, window = time.perf_counter(), float("nan"), []
    policy.algo.set_train()
    batches = _batches(loader)
    epoch = 1
    bar = progress(range(1, steps + 1), desc="train", unit="step", total=steps)
    for step in bar:
        new_epoch, batch = next(batches)
        if new_epoch != epoch:  # robomimic steps its learning-rate schedules once per epoch
            policy.algo.on_epoch_end(epoch)
            epoch = new_epoch
        info = policy.train_on_batch(batch, epoch, validate=False)
        loss = float(info["losses"]["action_loss"])
        if not math.isfinite(loss):
            where = ckpt_dir if ckpt_dir.exists() else "none yet"
            raise RobopolicyError(f"training stopped: non-finite loss ({loss}) at step {step}; "
                                  f"last good checkpoint: {where}")
        window.append(loss)
        for cb in callbacks:
            cb(step, loss)
        if step % cfg.log_every == 0 or step == steps:
            rate = step * batch_size / (time.perf_counter() - t0)
            mean_loss = float(np.mean(window))
            window.clear()
            bar.set_postfix(loss=f"{mean_loss:.4f}", samples_s=f"{rate:.0f}", refresh=False)
            row = {"epoch": epoch, "loss": mean_loss,
                   "lr": policy.algo.optimizers["policy"].param_groups[0]["lr"],
                   "samples_per_s": rate}
            if val_set is not None and step % cfg.val_every == 0:
                row["val_loss"] = val_loss()
            logger.log(step, row)
        if step % cfg.ckpt_every == 0 and step != steps:
            save(step)
    save(steps)
    logger.close()
    policy.algo.set_eval()
    wall = time.perf_counter() - t0
    log.info("trained %d robomimic steps in %.1f s; policy saved to %s", steps, wall, ckpt_dir)
    return TrainResult(ckpt_dir, steps, mean_loss, wall, steps * batch_size / max(wall, 1e-9))
