"""`robopolicy train`: fit a policy to a demo store; writes checkpoints/latest (a policy dir)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("train")
def main(cfg: DictConfig) -> None:
    from pathlib import Path

    from robopolicy.training.trainer import train

    # resume=<run dir> continues that run there; resume=true continues the run in hydra's dir
    out = Path(cfg.resume) if isinstance(cfg.resume, str) else output_dir()
    r = train(OmegaConf.to_container(cfg.policy, resolve=True),
              OmegaConf.to_container(cfg.trainer, resolve=True), cfg.dataset.path,
              list(cfg.dataset.obs_keys), out, cfg.dataset.val_ratio, resume=bool(cfg.resume))
    print(f"policy:  {r.policy_dir}\nsteps:   {r.steps} in {r.wall_s:.0f} s "
          f"({r.samples_per_s:.0f} samples/s), final loss {r.final_loss:.4f}")
