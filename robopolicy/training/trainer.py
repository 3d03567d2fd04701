"""Train a policy on an EpisodeStore.

The store's needed keys are cached in RAM and batches are gathered with one fancy-indexing
call per key (no per-sample Python). The saved weights are the EMA's (Chi et al.); a
non-finite loss stops the run with a clear message, keeping the last good checkpoint.

With every checkpoint goes `checkpoints/train_state.pt`: raw weights, optimizer, schedule,
EMA, the sampler's order and every random state. `resume=True` continues from it bit for bit:
on CPU the resumed run ends with the same weights as one never interrupted.

Under torchrun each process takes its share of every global batch (DDP, gloo on CPU); rank 0
logs (metrics.jsonl, TensorBoard), checkpoints and runs the periodic rollouts on `val` that
rank the top-k checkpoints (`robopolicy.training.checkpoints`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robopolicy.data.sampler import SequenceSampler, split_episodes
from robopolicy.data.store import EpisodeStore
from robopolicy.device import resolve_device
from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import instantiate_policy, save_policy
from robopolicy.progress import progress
from robopolicy.training.checkpoints import TopK, rollout_success
from robopolicy.training.distributed import close_distributed, init_distributed, wrap_loss
from robopolicy.training.loggers import MetricsLogger
from robopolicy.training.trainer_state import (
    STATE_FILE,
    capture_rng,
    load_state,
    restore_rng,
    save_state,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the trained policy is and how training went."""

    policy_dir: Path
    steps: int
    final_loss: float
    wall_s: float
    samples_per_s: float


def _to_torch(batch: dict, device: str) -> dict:
    out = {"obs": {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch["obs"].items()},
           "action": torch.from_numpy(batch["action"]).to(device, non_blocking=True)}
    if "text" in batch:
        out["text"] = batch["text"]
    return out


def policy_shape_meta(store: EpisodeStore, obs_keys: list[str]) -> dict:
    """The store's shape_meta cut to the observation keys a policy sees (each must exist)."""
    available = store.shape_meta["obs"]
    missing = [k for k in obs_keys if k not in available]
    if missing:
        raise RobopolicyError(f"dataset {store.path}: no observation key(s) {missing} "
                              f"(it has {sorted(available)})")
    return {"obs": {k: available[k] for k in obs_keys}, "action": store.shape_meta["action"]}


def training_sampler(data: dict, episode_ends: np.ndarray, policy, obs_keys: list[str],
                     episodes: np.ndarray, episode_text: Sequence[str] | None = None) -> SequenceSampler:
    """Windows for `policy` in which every frame of every episode is a current observation.

    Windows run past the end of an episode, holding its final action: padding only Ta-1 steps
    (Chi et al.'s choice) never shows the policy an episode's last frames, and demos that stop
    at success carry the end of the task there.
    """
    To, H = policy.n_obs_steps, policy.horizon
    return SequenceSampler(data, episode_ends, H, To, list(obs_keys), pad_before=To - 1,
                           pad_after=H - To, episode_indices=episodes, episode_text=episode_text)


def _instructions(store: EpisodeStore) -> list[str]:
    """Each episode's instruction, for a text-conditioned policy."""
    text = [str(m["instruction"]) for m in store.episodes()]
    missing = [i for i, t in enumerate(text) if not t]
    if missing:
        raise RobopolicyError(f"dataset {store.path}: episodes {missing[:5]} have no instruction; a "
                              "text-conditioned policy (text_encoder) needs one per episode")
    return text


def train(policy_cfg: dict, trainer_cfg: dict, dataset_path: str | Path, obs_keys: list[str],
          out_dir: Path, val_ratio: float = 0.0, resume: bool = False,
          callbacks: Sequence[Callable[[int, float], None]] = ()) -> TrainResult:
    """Train `policy_cfg` on the store at `dataset_path`; checkpoints go to out_dir/checkpoints.
    `resume` continues the run in `out_dir` from its last checkpoint; each callback is called
    as `cb(step, loss)` after every optimizer step."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    cfg = trainer_cfg
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dist = init_distributed(resolve_device(cfg["device"]))
    device = dist.device

    store = EpisodeStore.open(dataset_path)
    if store.n_episodes == 0:
        raise RobopolicyError(f"dataset {store.path}: has no episodes")
    shape_meta = policy_shape_meta(store, list(obs_keys))
    data = store.load([*obs_keys, "action"])
    train_eps, val_eps = split_episodes(store.n_episodes, val_ratio, seed)

    policy = instantiate_policy(policy_cfg, shape_meta)
    policy.fit_normalizer(data)
    policy.to(device)

    text = _instructions(store) if getattr(policy, "uses_text", False) else None
    train_sampler = training_sampler(data, store.episode_ends, policy, obs_keys, train_eps, text)
    val_sampler = (training_sampler(data, store.episode_ends, policy, obs_keys, val_eps, text)
                   if len(val_eps) else None)
    log.info("training %s on %s: %d episodes (%d val), %d windows, %s x %d, %d parameters",
             policy.name, store.path, store.n_episodes, len(val_eps), len(train_sampler), device,
             dist.world, sum(p.numel() for p in policy.parameters()))

    steps, batch_size = int(cfg["steps"]), int(cfg["batch_size"])
    local_batch = dist.local_batch(batch_size)
    loss_module = wrap_loss(policy, dist)  # DDP broadcasts rank 0's weights here
    if dist.rank:  # other diffusion noise per rank; the weights above are already shared
        torch.manual_seed(seed + dist.rank)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                            weight_decay=cfg["weight_decay"])
    sched = get_scheduler("cosine", opt, num_warmup_steps=cfg["warmup_steps"],
                          num_training_steps=steps)
    ema = EMAModel(policy.parameters(), use_ema_warmup=True, inv_gamma=1.0,
                   power=cfg["ema_power"], decay=0.9999)

    ckpt_dir = out_dir / "checkpoints" / "latest"
    state_path = out_dir / "checkpoints" / STATE_FILE
    # what a resumed run must share with the one it continues (the device may change)
    run = {"policy": policy_cfg, "trainer": {k: v for k, v in cfg.items() if k != "device"},
           "dataset": str(store.path), "obs_keys": list(obs_keys), "val_ratio": val_ratio}
    order = rng.permutation(len(train_sampler))
    start, cursor = 0, 0
    if resume:
        state = load_state(state_path, run)
        policy.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        ema.to(device)
        restore_rng(state["rng"], rng, device.startswith("cuda"))
        order, cursor, start = state["order"].numpy(), int(state["cursor"]), int(state["step"])
        if dist.rank:
            torch.manual_seed(seed + dist.rank + 7919 * start)
        log.info("resuming %s from step %d of %d", out_dir, start, steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = (MetricsLogger(out_dir, bool(cfg.get("tensorboard", True)), cfg.get("wandb"), run,
                            resume_step=start if resume else None)
              if dist.main else None)
    rollout_every = int(cfg.get("rollout_every") or 0)
    top_k = TopK(ckpt_dir.parent, int(cfg.get("keep_top_k", 3))) if rollout_every else None
    # The suite the demos came from, so evaluation can tell when it runs under other settings.
    extra = {"dataset": str(store.path), "obs_keys": list(obs_keys),
             "dataset_env_config": store.env_config}

    def save(step: int) -> None:
        if not dist.main:
            return
        ckpt_dir.parent.mkdir(parents=True, exist_ok=True)
        save_state(state_path, {
            "step": step, "run": run, "model": policy.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "ema": ema.state_dict(),
            "rng": capture_rng(rng, device.startswith("cuda")),
            "order": torch.from_numpy(order), "cursor": cursor})
        ema.store(policy.parameters())
        ema.copy_to(policy.parameters())
        save_policy(policy, ckpt_dir, policy_cfg, {**extra, "step": step})
        ema.restore(policy.parameters())

    def rollout(step: int) -> float:
        """Save the EMA policy as checkpoints/step_<N>, roll it out, rank it among the top k."""
        step_dir = ckpt_dir.parent / f"step_{step:07d}"
        ema.store(policy.parameters())
        ema.copy_to(policy.parameters())
        save_policy(policy, step_dir, policy_cfg, {**extra, "step": step})
        ema.restore(policy.parameters())
        success = rollout_success(step_dir, store.env_config, {**cfg, "device": device},
                                  out_dir / "rollouts" / f"step_{step:07d}")
        top_k.add(step, success, step_dir)
        return success

    def val_loss() -> float:
        idx = np.arange(min(len(val_sampler), 4 * batch_size))
        policy.eval()
        with torch.no_grad():
            loss = policy.compute_loss(_to_torch(val_sampler.sample_batch(idx), device))["loss"]
        policy.train()
        return float(loss)

    t0, loss_value, mean_loss = time.perf_counter(), float("nan"), float("nan")
    window: list[float] = []  # losses since the last log line
    policy.train()
    bar = progress(range(start + 1, steps + 1), desc="train", unit="step", initial=start,
                   total=steps, disable=not dist.main)
    for step in bar:
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(len(train_sampler)), 0
        # every rank draws the same order and takes its own slice of the global batch
        first = cursor + dist.rank * local_batch
        idx = order[first:first + local_batch]
        cursor += batch_size
        batch = _to_torch(train_sampler.sample_batch(idx), device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            loss = loss_module(batch)
        loss_value = loss.item()
        if dist.any_true(not math.isfinite(loss_value)):
            where = ckpt_dir if ckpt_dir.exists() else "none yet"
            raise RobopolicyError(f"training stopped: non-finite loss ({loss_value}) at step {step}; "
                                  f"last good checkpoint: {where}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg["grad_clip"])
        opt.step()
        sched.step()
        ema.step(policy.parameters())
        window.append(loss_value)
        for cb in callbacks:
            cb(step, loss_value)
        if dist.main and (step % cfg["log_every"] == 0 or step == steps):
            rate = (step - start) * batch_size / (time.perf_counter() - t0)
            mean_loss = float(np.mean(window))
            window.clear()
            bar.set_postfix(loss=f"{mean_loss:.4f}", samples_s=f"{rate:.0f}", refresh=False)
            row = {"loss": mean_loss, "lr": sched.get_last_lr()[0], "samples_per_s": rate}
            if val_sampler is not None and step % cfg["val_every"] == 0:
                row["val_loss"] = val_loss()
            logger.log(step, row)
        if step % cfg["ckpt_every"] == 0 and step != steps:
            save(step)
        if dist.main and rollout_every and step % rollout_every == 0:
            logger.log(step, {"rollout_success": rollout(step)})
    if start < steps:
        save(steps)
    if logger is not None:
        logger.close()
    close_distributed(dist)
    wall = time.perf_counter() - t0
    log.info("trained %d steps in %.1f s; policy saved to %s", steps - start, wall, ckpt_dir)
    return TrainResult(ckpt_dir, steps, mean_loss, wall, (steps - start) * batch_size / max(wall, 1e-9))
