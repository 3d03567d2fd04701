"""Train a policy on an EpisodeStore.

The store's needed keys are cached in RAM and batches are gathered with one fancy-indexing
call per key (no per-sample Python). The saved weights are the EMA's (Chi et al.); a
non-finite loss stops the run with a clear message, keeping the last good checkpoint.

`Trainer` runs the loop (setup / resume / step / save / rollout) for a typed `TrainConfig`;
`train(config)` is the one call. With every checkpoint goes `checkpoints/train_state.pt`: raw
weights, optimizer, schedule, EMA, the sampler's order and every random state.
`TrainConfig.resume` continues from it bit for bit: on CPU the resumed run ends with the same
weights as one never interrupted.

Under torchrun each process takes its share of every global batch (DDP, gloo on CPU); rank 0
logs (metrics.jsonl, TensorBoard), checkpoints and runs the periodic rollouts on `val` that
rank the top-k checkpoints (`robopolicy.training.checkpoints`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopolicy.data.sampler import SequenceSampler, split_episodes
from robopolicy.data.skills import SkillChain, skill_chains
from robopolicy.data.store import EpisodeStore
from robopolicy.device import resolve_device
from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import instantiate_policy, load_policy, save_policy
from robopolicy.progress import progress
from robopolicy.training.checkpoints import TopK, rollout_success
from robopolicy.training.config import TrainConfig
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


# The skill sampler's per-window values (SequenceSampler with skills).
SKILL_KEYS = ("skill_index", "skill_params", "done", "action_weight")


def _to_torch(batch: dict, device: str) -> dict:
    out = {"obs": {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch["obs"].items()},
           "action": torch.from_numpy(batch["action"]).to(device, non_blocking=True)}
    if "text" in batch:
        out["text"] = batch["text"]
    out |= {k: torch.from_numpy(batch[k]).to(device, non_blocking=True)
            for k in SKILL_KEYS if k in batch}
    return out


def policy_shape_meta(store: EpisodeStore, obs_keys: list[str]) -> dict:
    """The store's shape_meta cut to the observation keys a policy sees (each must exist and
    mean what this version's observation layout says)."""
    available = store.obs_shape_meta
    missing = [k for k in obs_keys if k not in available]
    if missing:
        raise RobopolicyError(f"dataset {store.path}: no observation key(s) {missing} "
                              f"(it has {sorted(available)})")
    store.check_obs_layout(list(obs_keys))
    return {"obs": {k: available[k] for k in obs_keys}, "action": store.shape_meta["action"]}


def training_sampler(data: dict, episode_ends: np.ndarray, policy, obs_keys: list[str],
                     episodes: np.ndarray, episode_text: Sequence[str] | None = None,
                     skills: Sequence[SkillChain] | None = None) -> SequenceSampler:
    """Windows for `policy` in which every frame of every episode is a current observation.

    Windows run past the end of an episode, holding its final action: padding only Ta-1 steps
    (Chi et al.'s choice) never shows the policy an episode's last frames, and demos that stop
    at success carry the end of the task there. With `skills` (a skill policy) each window is
    conditioned on its skill, with the policy's `done_lag_steps`, `skill_obs_keys` and
    `next_skill`.
    """
    To, H = policy.n_obs_steps, policy.horizon
    lag, hold, following = ((policy.skill.done_lag_steps, policy.skill.skill_obs_keys,
                             policy.skill.next_skill) if skills is not None else (0, (), False))
    return SequenceSampler(data, episode_ends, H, To, list(obs_keys), pad_before=To - 1,
                           pad_after=H - To, episode_indices=episodes, episode_text=episode_text,
                           skills=skills, done_lag_steps=lag, hold_keys=hold, next_skill=following)


def _start_from(policy, path: Path) -> None:
    """Load a trained policy directory's weights and normalizer into `policy` (fine-tuning):
    its normalizer is the one the weights were trained with, so it replaces the new store's."""
    source = load_policy(path)
    if source.name != policy.name:
        raise RobopolicyError(f"init_from {path}: a '{source.name}' policy, this run trains "
                              f"'{policy.name}'")
    theirs, ours = source.state_dict(), policy.state_dict()
    differ = sorted(k for k in ours.keys() | theirs.keys()
                    if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape)
    if differ:
        raise RobopolicyError(f"init_from {path}: its weights do not fit this policy's config "
                              f"and observations ({len(differ)} tensors differ, e.g. {differ[0]})")
    policy.load_state_dict(theirs)
    log.info("starting from the weights of %s", path)


def _instructions(store: EpisodeStore) -> list[str]:
    """Each episode's instruction, for a text-conditioned policy."""
    text = [str(m["instruction"]) for m in store.episodes()]
    missing = [i for i, t in enumerate(text) if not t]
    if missing:
        raise RobopolicyError(f"dataset {store.path}: episodes {missing[:5]} have no instruction; a "
                              "text-conditioned policy (text_encoder) needs one per episode")
    return text


def train(config: TrainConfig | Mapping, *args: Any,
          callbacks: Sequence[Callable[[int, float], None]] = (), **kwargs: Any) -> TrainResult:
    """Run the training `config` describes; checkpoints go to its out_dir/checkpoints. Each
    callback is called as `cb(step, loss)` after every optimizer step.

    The plain form `train(policy_cfg, trainer_cfg, dataset_path, obs_keys, out_dir,
    val_ratio=0.0, resume=False)` builds the TrainConfig first (`TrainConfig.build`)."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.build(config, *args, **kwargs)
    return Trainer(config, callbacks).run()


class Trainer:
    """Our training loop: AdamW + cosine schedule, EMA weights, checkpoints to resume from.

        trainer = Trainer(config)
        result = trainer.run()   # setup, resume (when config.resume), step..., save
    """

    def __init__(self, config: TrainConfig,
                 callbacks: Sequence[Callable[[int, float], None]] = ()) -> None:
        self.config = config
        self.callbacks = tuple(callbacks)
        self.start = 0  # the step the loop continues after (a resumed run's checkpoint step)

    @property
    def ckpt_dir(self) -> Path:
        return self.config.out_dir / "checkpoints" / "latest"

    @property
    def state_path(self) -> Path:
        return self.config.out_dir / "checkpoints" / STATE_FILE

    def setup(self) -> None:
        """Open the store, build the policy, the samplers, the optimizer, schedule and EMA."""
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        c, s = self.config, self.config.trainer
        torch.manual_seed(s.seed)
        self.rng = np.random.default_rng(s.seed)
        self.dist = dist = init_distributed(resolve_device(s.device))
        self.device = dist.device
        self.store = store = EpisodeStore.open(c.dataset)
        if store.n_episodes == 0:
            raise RobopolicyError(f"dataset {store.path}: has no episodes")
        shape_meta = policy_shape_meta(store, c.obs_keys)
        data = store.load([*c.obs_keys, "action"])
        train_eps, val_eps = split_episodes(store.n_episodes, c.val_ratio, s.seed)

        self.policy = policy = instantiate_policy(c.policy, shape_meta)
        policy.fit_normalizer(data)
        if c.init_from is not None:
            _start_from(policy, c.init_from)
        policy.to(self.device)
        # A skill policy reads each window's skill instruction from the chains, not the task's.
        skills = (skill_chains(store, getattr(policy, "skill_text", "instruction"))
                  if getattr(policy, "condition", "task") == "skill" else None)
        if skills is not None and s.rollout_every:
            raise RobopolicyError("trainer.rollout_every: a skill policy (condition: skill) runs one "
                                  "skill at a time and is evaluated inside the bi-level policy; "
                                  "set trainer.rollout_every=0")
        text = (_instructions(store) if getattr(policy, "uses_text", False) and skills is None
                else None)
        self.train_sampler = training_sampler(data, store.episode_ends, policy, c.obs_keys,
                                              train_eps, text, skills)
        self.val_sampler = (training_sampler(data, store.episode_ends, policy, c.obs_keys,
                                             val_eps, text, skills) if len(val_eps) else None)
        log.info("training %s on %s: %d episodes (%d val), %d windows, %s x %d, %d parameters",
                 policy.name, store.path, store.n_episodes, len(val_eps), len(self.train_sampler),
                 self.device, dist.world, sum(p.numel() for p in policy.parameters()))

        self.local_batch = dist.local_batch(s.batch_size)
        self.loss_module = wrap_loss(policy, dist)  # DDP broadcasts rank 0's weights here
        if dist.rank:  # other diffusion noise per rank; the weights above are already shared
            torch.manual_seed(s.seed + dist.rank)
        self.opt = torch.optim.AdamW(policy.parameters(), lr=s.lr, betas=s.betas,
                                     weight_decay=s.weight_decay)
        self.sched = get_scheduler("cosine", self.opt, num_warmup_steps=s.warmup_steps,
                                   num_training_steps=s.steps)
        self.ema = EMAModel(policy.parameters(), use_ema_warmup=True, inv_gamma=1.0,
                            power=s.ema_power, decay=0.9999)
        # what a resumed run must share with the one it continues (the device, and with it the
        # arithmetic precision, may change)
        self.run_record = {"policy": c.policy,
                           "trainer": {k: v for k, v in s.as_dict().items()
                                       if k not in ("device", "precision")},
                           "dataset": str(store.path), "obs_keys": list(c.obs_keys),
                           "val_ratio": c.val_ratio}
        if c.init_from is not None:
            self.run_record["init_from"] = str(c.init_from)
        self.order = self.rng.permutation(len(self.train_sampler))
        self.cursor = 0
        self.top_k = (TopK(self.ckpt_dir.parent, s.keep_top_k) if s.rollout_every else None)
        # The suite the demos came from, so evaluation can tell when it runs under other settings.
        self.extra = {"dataset": str(store.path), "obs_keys": list(c.obs_keys),
                      "dataset_env_config": store.env_config,
                      "obs_layout": store.obs_layout.get("version", 1)}

    def resume(self) -> None:
        """Continue from the run's training state: weights, optimizer, schedule, EMA, sampler
        order and every random state, so the run goes on as if never interrupted."""
        state = load_state(self.state_path, self.run_record)
        self.policy.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.ema.load_state_dict(state["ema"])
        self.ema.to(self.device)
        restore_rng(state["rng"], self.rng, self.device.startswith("cuda"))
        self.order, self.cursor = state["order"].numpy(), int(state["cursor"])
        self.start = int(state["step"])
        if self.dist.rank:
            torch.manual_seed(self.config.trainer.seed + self.dist.rank + 7919 * self.start)
        log.info("resuming %s from step %d of %d", self.config.out_dir, self.start,
                 self.config.trainer.steps)

    def step(self, step: int) -> float:
        """One optimizer step on the next batch of the sampler order; returns its loss."""
        return self.optimize(self.next_batch(), step)

    def next_batch(self) -> dict:
        """This rank's share of the next global batch of the sampler order, on the device."""
        s, dist = self.config.trainer, self.dist
        if self.cursor + s.batch_size > len(self.order):
            self.order, self.cursor = self.rng.permutation(len(self.train_sampler)), 0
        # every rank draws the same order and takes its own slice of the global batch
        first = self.cursor + dist.rank * self.local_batch
        idx = self.order[first:first + self.local_batch]
        self.cursor += s.batch_size
        return _to_torch(self.train_sampler.sample_batch(idx), self.device)

    def optimize(self, batch: dict, step: int) -> float:
        """Forward, backward and the optimizer, schedule and EMA steps on `batch`; its loss."""
        s, dist = self.config.trainer, self.dist
        bf16 = self.device.startswith("cuda") and s.precision == "bf16"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            terms = self.loss_module(batch)
        loss = terms["loss"]
        loss_value = loss.item()
        # the policy's other terms (a skill policy's done_loss, done_acc, action_loss), logged
        self.last_terms = {k: float(v) for k, v in terms.items() if k != "loss"}
        if dist.any_true(not math.isfinite(loss_value)):
            where = self.ckpt_dir if self.ckpt_dir.exists() else "none yet"
            raise RobopolicyError(f"training stopped: non-finite loss ({loss_value}) at step {step}; "
                                  f"last good checkpoint: {where}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip)
        self.opt.step()
        self.sched.step()
        self.ema.step(self.policy.parameters())
        return loss_value

    def _save_ema(self, policy_dir: Path, step: int) -> None:
        """Save the EMA weights as a policy directory, keeping the raw weights in training."""
        self.ema.store(self.policy.parameters())
        self.ema.copy_to(self.policy.parameters())
        save_policy(self.policy, policy_dir, self.config.policy, {**self.extra, "step": step})
        self.ema.restore(self.policy.parameters())

    def save(self, step: int) -> None:
        """Write the training state and checkpoints/latest (the EMA policy); rank 0 only."""
        if not self.dist.main:
            return
        self.ckpt_dir.parent.mkdir(parents=True, exist_ok=True)
        save_state(self.state_path, {
            "step": step, "run": self.run_record, "model": self.policy.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": capture_rng(self.rng, self.device.startswith("cuda")),
            "order": torch.from_numpy(self.order), "cursor": self.cursor})
        self._save_ema(self.ckpt_dir, step)

    def rollout(self, step: int) -> float:
        """Save the EMA policy as checkpoints/step_<N>, roll it out, rank it among the top k."""
        step_dir = self.ckpt_dir.parent / f"step_{step:07d}"
        self._save_ema(step_dir, step)
        out = self.config.out_dir / "rollouts" / f"step_{step:07d}"
        success = rollout_success(step_dir, self.store.env_config,
                                  {**self.config.trainer.as_dict(), "device": self.device}, out)
        self.top_k.add(step, success, step_dir)
        return success

    def val_metrics(self) -> dict[str, float]:
        """``val_loss`` (and ``val_<term>`` for the policy's other terms, e.g. a skill policy's
        ``val_done_loss``, ``val_done_acc``) on the first validation windows (at most 4
        batches' worth), in eval mode."""
        idx = np.arange(min(len(self.val_sampler), 4 * self.config.trainer.batch_size))
        self.policy.eval()
        with torch.no_grad():
            batch = _to_torch(self.val_sampler.sample_batch(idx), self.device)
            terms = self.policy.compute_loss(batch)
        self.policy.train()
        return {f"val_{k}": float(v) for k, v in terms.items()}

    def run(self) -> TrainResult:
        """setup, resume (when asked), the steps with their logs, checkpoints and rollouts."""
        c, s = self.config, self.config.trainer
        self.setup()
        if c.resume:
            self.resume()
        c.out_dir.mkdir(parents=True, exist_ok=True)
        main = self.dist.main
        logger = (MetricsLogger(c.out_dir, s.tensorboard, s.wandb, self.run_record,
                                resume_step=self.start if c.resume else None) if main else None)
        t0, mean_loss = time.perf_counter(), float("nan")
        window: list[float] = []  # losses since the last log line
        extra: dict[str, list[float]] = {}  # the policy's other loss terms since then
        self.policy.train()
        bar = progress(range(self.start + 1, s.steps + 1), desc="train", unit="step",
                       initial=self.start, total=s.steps, disable=not main)
        for step in bar:
            loss_value = self.step(step)
            window.append(loss_value)
            for k, v in self.last_terms.items():
                extra.setdefault(k, []).append(v)
            for cb in self.callbacks:
                cb(step, loss_value)
            if main and (step % s.log_every == 0 or step == s.steps):
                rate = (step - self.start) * s.batch_size / (time.perf_counter() - t0)
                mean_loss = float(np.mean(window))
                window.clear()
                bar.set_postfix(loss=f"{mean_loss:.4f}", samples_s=f"{rate:.0f}", refresh=False)
                row = {"loss": mean_loss, **{k: float(np.mean(v)) for k, v in extra.items()},
                       "lr": self.sched.get_last_lr()[0], "samples_per_s": rate}
                extra.clear()
                if self.val_sampler is not None and step % s.val_every == 0:
                    row |= self.val_metrics()
                logger.log(step, row)
            if step % s.ckpt_every == 0 and step != s.steps:
                self.save(step)
            if main and s.rollout_every and step % s.rollout_every == 0:
                logger.log(step, {"rollout_success": self.rollout(step)})
        if self.start < s.steps:
            self.save(s.steps)
        if logger is not None:
            logger.close()
        close_distributed(self.dist)
        wall = time.perf_counter() - t0
        done = s.steps - self.start
        log.info("trained %d steps in %.1f s; policy saved to %s", done, wall, self.ckpt_dir)
        return TrainResult(self.ckpt_dir, s.steps, mean_loss, wall,
                           done * s.batch_size / max(wall, 1e-9))
