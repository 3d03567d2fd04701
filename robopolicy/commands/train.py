"""`robopolicy train`: fit a policy to a demo store; writes checkpoints/latest (a policy dir).

Policies whose class says `trains_with_robomimic` (bc, bc_rnn) train through robomimic's own
data pipeline and update (`robopolicy.training.robomimic_trainer`); all others through ours.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("train")
def main(cfg: DictConfig) -> None:
    from pathlib import Path

    from robopolicy.errors import RobopolicyError

    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True)
    if policy_cfg.get("name") == "expert":
        raise RobopolicyError("policy=expert is the scripted expert, which is not trained: "
                              "evaluate it with `robopolicy eval policy=expert`")
    if _trains_with_robomimic(policy_cfg):
        from robopolicy.training.robomimic_trainer import train_robomimic as train
    else:
        from robopolicy.training.trainer import train
    # resume=<run dir> continues that run there; resume=true continues the run in hydra's dir
    out = Path(cfg.resume) if isinstance(cfg.resume, str) else output_dir()
    r = train(policy_cfg, OmegaConf.to_container(cfg.trainer, resolve=True), cfg.dataset.path,
              list(cfg.dataset.obs_keys), out, cfg.dataset.val_ratio, resume=bool(cfg.resume))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        print(f"policy:  {r.policy_dir}\nsteps:   {r.steps} in {r.wall_s:.0f} s "
              f"({r.samples_per_s:.0f} samples/s), final loss {r.final_loss:.4f}")


def _trains_with_robomimic(policy_cfg: dict) -> bool:
    """Whether the configured policy class trains through robomimic (a bad `_target_` is left
    to the trainer, which reports it)."""
    import hydra.utils

    try:
        cls = hydra.utils.get_class(str(policy_cfg.get("_target_")))
    except Exception:
        return False
    return bool(getattr(cls, "trains_with_robomimic", False))
