"""Train the learned skill planner (`robopolicy train policy=skill_planner dataset.path=...`).

Batches are whole episodes (every query of an episode at once, see
`robopolicy.planners.data`); AdamW with a cosine schedule, the settings of the `trainer`
group (steps, batch_size = episodes per batch, lr, warmup, grad_clip, log/val/ckpt cadence,
seed, device). Episodes are drawn mirrored (`policy.mirror_prob`) and composed with another
demo of their object (`policy.compose_prob`), see `robopolicy.planners.augmentation`. The
planner directory (`checkpoints/latest`) holds config.yaml, meta.json and
model.safetensors, as a policy directory does; `planner=learned planner.path=<it>` loads it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from robopolicy.data.sampler import split_episodes
from robopolicy.data.store import EpisodeStore
from robopolicy.device import resolve_device
from robopolicy.errors import RobopolicyError
from robopolicy.planners.augmentation import composites_of, mirrored
from robopolicy.planners.data import PlannerBatcher, planner_episodes
from robopolicy.planners.network import build_planner_net
from robopolicy.progress import progress
from robopolicy.training.config import TrainConfig
from robopolicy.training.loggers import MetricsLogger

log = logging.getLogger(__name__)


def _probability(policy_cfg, key: str) -> float:
    value = policy_cfg.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise RobopolicyError(f"policy.{key}: {value!r} is not a probability in [0, 1]")
    return float(value)


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def evaluate(net, batcher: PlannerBatcher, episodes: list, device: str,
             batch_size: int = 128) -> dict[str, float]:
    """Teacher-forced accuracies (every query given the true skills before it) over episodes."""
    net.eval()
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for i in range(0, len(episodes), batch_size):
            chunk = episodes[i:i + batch_size]
            terms = net.compute_loss(_to(batcher(chunk), device))
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(chunk)
            n += len(chunk)
    net.train()
    return {k: v / max(n, 1) for k, v in sums.items()}


def train_planner(config: TrainConfig):
    """Fit the planner the config describes to the config's store; returns a TrainResult."""
    from diffusers.optimization import get_scheduler

    from robopolicy.models.text_encoder import TextEncoder
    from robopolicy.policies.io import save_policy
    from robopolicy.training.trainer import TrainResult

    s = config.trainer
    if config.resume:
        raise RobopolicyError("resume: policy=skill_planner trains in minutes and does not resume; "
                              "start the run again")
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    device = resolve_device(s.device)
    net = build_planner_net(config.policy)
    mirror_prob = _probability(config.policy, "mirror_prob")
    compose_prob = _probability(config.policy, "compose_prob")
    store = EpisodeStore.open(config.dataset)
    episodes = planner_episodes(store, images=net.use_image)
    train_idx, val_idx = split_episodes(len(episodes), config.val_ratio, s.seed)
    train_eps = [episodes[i] for i in train_idx]
    val_eps = [episodes[i] for i in val_idx]
    batcher = PlannerBatcher(TextEncoder("minilm"), pointer=net.pointer)
    mirrors = [mirrored(e) for e in train_eps] if mirror_prob > 0 else [None] * len(train_eps)
    composites = (composites_of(train_eps, net.config["max_skills"], rng) if compose_prob > 0
                  else [None] * len(train_eps))
    composite_mirrors = [mirrored(e) if e is not None and mirror_prob > 0 else None
                         for e in composites]

    def sequence(i: int):
        eps, mir = ((composites, composite_mirrors)
                    if composites[i] is not None and rng.random() < compose_prob
                    else (train_eps, mirrors))
        return mir[i] if mir[i] is not None and rng.random() < mirror_prob else eps[i]

    net.to(device)
    log.info("training skill_planner on %s: %d sequences (%d val), %s, %d parameters; "
             "mirrored at p=%.2f, composed at p=%.2f", store.path, len(episodes), len(val_eps),
             device, sum(p.numel() for p in net.parameters()), mirror_prob, compose_prob)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)
    sched = get_scheduler("cosine", opt, num_warmup_steps=s.warmup_steps, num_training_steps=s.steps)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = MetricsLogger(out_dir, s.tensorboard, s.wandb, config={"policy": config.policy})
    ckpt = out_dir / "checkpoints" / "latest"
    extra = {"dataset": str(store.path), "kind": "planner", "sequences": len(train_eps),
             "dataset_env_config": store.env_config}

    def save(step: int, scores: dict[str, float]) -> None:
        save_policy(net, ckpt, config.policy, {**extra, "step": step, **scores})

    t0, loss_value, scores = time.perf_counter(), float("nan"), {}
    order, cursor = rng.permutation(len(train_eps)), 0
    bar = progress(range(1, s.steps + 1), desc="train skill_planner", unit="step")
    try:
        for step in bar:
            if cursor + s.batch_size > len(order):
                order, cursor = rng.permutation(len(train_eps)), 0
            chunk = [sequence(i) for i in order[cursor:cursor + s.batch_size]]
            cursor += s.batch_size
            terms = net.compute_loss(_to(batcher(chunk, rng), device))
            loss = terms["loss"]
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise RobopolicyError(f"training stopped: non-finite loss ({loss_value}) at step "
                                      f"{step}; last good checkpoint: "
                                      f"{ckpt if ckpt.exists() else 'none yet'}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), s.grad_clip)
            opt.step()
            sched.step()
            row = {}
            if step % s.log_every == 0 or step == s.steps:
                row |= {k: float(v.detach()) for k, v in terms.items()} | {"lr": sched.get_last_lr()[0]}
                bar.set_postfix(loss=f"{loss_value:.3f}", call_acc=f"{float(terms['call_acc']):.2f}")
            if val_eps and (step % s.val_every == 0 or step == s.steps):
                scores = {f"val_{k}": v for k, v in evaluate(net, batcher, val_eps, device).items()}
                row |= scores
                log.info("step %d: val call accuracy %.3f (skill %.3f, part %.3f, direction %.3f)",
                         step, scores["val_call_acc"], scores["val_skill_acc"],
                         scores["val_part_acc"], scores["val_direction_acc"])
            if row:
                metrics.log(step, row)
            if step % s.ckpt_every == 0 or step == s.steps:
                save(step, scores)
    finally:
        metrics.close()
    wall = time.perf_counter() - t0
    return TrainResult(ckpt, s.steps, loss_value, wall, s.steps * s.batch_size / max(wall, 1e-9))
