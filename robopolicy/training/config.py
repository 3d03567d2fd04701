"""The typed configuration of a training run, built from the hydra config in one place.

    config = TrainConfig.from_hydra(cfg, out_dir)           # `robopolicy train` / quickstart
    config = TrainConfig.build(policy_cfg, trainer_dict, "demos.zarr", ["proprio", "state"], out)
    result = train(config)

`TrainerSettings` mirrors `configs/trainer/default.yaml` (its defaults are that file's values, a
test keeps them equal); a key it does not know is refused in one line, so a misspelt setting
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robopolicy.errors import RobopolicyError

PRECISIONS = ("bf16", "fp32")


@dataclass(frozen=True)
class TrainerSettings:
    """The training loop's settings (the `trainer:` config group).

    Attributes:
        steps: optimizer steps.
        batch_size: samples per global batch (split over ranks under torchrun).
        lr: AdamW learning rate (peak of the cosine schedule).
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear warm-up steps of the cosine schedule.
        grad_clip: max gradient norm.
        ema_power: EMA decay warm-up exponent; the saved weights are the EMA's.
        ckpt_every: steps between checkpoints (and training states to resume from).
        val_every: steps between validation losses (needs validation episodes).
        log_every: steps between metrics.jsonl rows.
        device: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:N".
        precision: on CUDA, "bf16" (bfloat16 autocast) or "fp32"; CPU always trains in fp32.
        seed: seeds the sampler order, the weights and the noise.
        tensorboard: write TensorBoard events to <run>/tensorboard.
        wandb: a wandb project to log to as well, or None.
        rollout_every: steps between rollout evaluations (0 = never).
        rollout_episodes: episodes per rollout evaluation.
        rollout_split: catalog split the rollouts run on.
        rollout_workers: sim worker processes for rollouts.
        rollout_envs_per_worker: envs per rollout worker.
        keep_top_k: step checkpoints kept, ranked by rollout success.
    """

    steps: int = 3000
    batch_size: int = 256
    lr: float = 1.0e-4
    weight_decay: float = 1.0e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_power: float = 0.75
    ckpt_every: int = 1000
    val_every: int = 500
    log_every: int = 50
    device: str = "auto"
    precision: str = "bf16"
    seed: int = 0
    tensorboard: bool = True
    wandb: str | None = None
    rollout_every: int = 0
    rollout_episodes: int = 16
    rollout_split: str = "val"
    rollout_workers: int = 2
    rollout_envs_per_worker: int = 4
    keep_top_k: int = 3

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainerSettings:
        """Settings from a plain mapping (absent keys keep their defaults); an unknown key is a
        one-line error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise RobopolicyError(f"trainer config: unknown key(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(fields)})")
        kwargs = dict(values)
        if kwargs.get("precision", "bf16") not in PRECISIONS:
            raise RobopolicyError(f"trainer config: precision {kwargs['precision']!r} is not one of "
                                  f"{', '.join(PRECISIONS)}")
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
        return cls(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what a training state records)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        policy: the resolved policy config (`_target_` + kwargs, with `name`).
        trainer: the loop's settings.
        dataset: the demo store to train on.
        obs_keys: the observation keys the policy sees (each must be in the store).
        out_dir: the run directory (checkpoints/, metrics.jsonl, tensorboard/).
        val_ratio: fraction of episodes held out for the validation loss.
        resume: continue the run in `out_dir` from its last training state.
        init_from: a policy directory (`<run>/checkpoints/latest`) whose weights and
            normalizer start this run instead of a fresh initialisation (fine-tuning, e.g. on
            a store grown with recovery demos); the same policy kind and shapes, else a
            one-line error.
    """

    policy: dict[str, Any]
    trainer: TrainerSettings
    dataset: Path
    obs_keys: list[str] = field(default_factory=list)
    out_dir: Path = Path(".")
    val_ratio: float = 0.0
    resume: bool = False
    init_from: Path | None = None

    @classmethod
    def build(cls, policy: Mapping[str, Any], trainer: Mapping[str, Any] | TrainerSettings,
              dataset: str | Path, obs_keys: Sequence[str], out_dir: str | Path,
              val_ratio: float = 0.0, resume: bool = False,
              init_from: str | Path | None = None) -> TrainConfig:
        """A config from plain values (the trainer settings as a mapping or already typed)."""
        settings = trainer if isinstance(trainer, TrainerSettings) else TrainerSettings.from_dict(trainer)
        return cls(dict(policy), settings, Path(dataset), list(obs_keys), Path(out_dir),
                   float(val_ratio), bool(resume), None if init_from is None else Path(init_from))

    @classmethod
    def from_hydra(cls, cfg: Any, out_dir: str | Path, dataset: str | Path | None = None) -> TrainConfig:
        """The config of `robopolicy train` (or quickstart's training) from its hydra config:
        `policy`, `trainer`, `dataset.{path,obs_keys,val_ratio}`, an optional `resume` and
        `init_from`;
        `dataset` replaces `dataset.path` (quickstart trains on the store it just collected)."""
        from omegaconf import OmegaConf

        return cls.build(OmegaConf.to_container(cfg.policy, resolve=True),
                         OmegaConf.to_container(cfg.trainer, resolve=True),
                         cfg.dataset.path if dataset is None else dataset,
                         list(cfg.dataset.obs_keys), out_dir, cfg.dataset.val_ratio,
                         bool(cfg.get("resume")), cfg.get("init_from"))
