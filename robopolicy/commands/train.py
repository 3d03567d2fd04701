"""`robopolicy train`: fit a policy to a demo store; writes checkpoints/latest (a policy dir).

`policy=skill_planner` trains the learned skill planner (`robopolicy.training.planner_trainer`).
Policies whose class says `trains_with_robomimic` (bc, bc_rnn) train through robomimic's own
data pipeline and update (`robopolicy.training.robomimic_trainer`); all others through ours.
Which policies exist, and so which can be trained, is the policy registry's to say
(`robopolicy.policies`).
"""

from __future__ import annotations

import os

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("train")
def main(cfg: DictConfig) -> None:
    from pathlib import Path

    from robopolicy.training.config import TrainConfig

    # resume=<run dir> continues that run there; resume=true continues the run in hydra's dir
    out = Path(cfg.resume) if isinstance(cfg.resume, str) else output_dir()
    config = TrainConfig.from_hydra(cfg, out)
    from robopolicy.planners.network import PLANNER_TARGET

    if config.policy.get("_target_") == PLANNER_TARGET:  # the learned skill planner
        from robopolicy.training.planner_trainer import train_planner as train
    elif trains_with_robomimic(config.policy):
        from robopolicy.training.robomimic_trainer import train_robomimic as train
    else:
        from robopolicy.training.trainer import train
    r = train(config)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        print(f"policy:  {r.policy_dir}\nsteps:   {r.steps} in {r.wall_s:.0f} s "
              f"({r.samples_per_s:.0f} samples/s), final loss {r.final_loss:.4f}")


def trains_with_robomimic(policy_cfg: dict) -> bool:
    """Whether the configured policy is a registered one that trains through robomimic. A config
    that names no registered policy class is refused here, in one line, before anything is built
    (e.g. `policy=expert`, which is scripted and only evaluated)."""
    from robopolicy.errors import RobopolicyError
    from robopolicy.policies import get_policy_class, policy_targets

    targets = policy_targets()
    name = targets.get(str(policy_cfg.get("_target_")))
    if name is None:
        trainable = ", ".join(sorted(targets.values()))
        raise RobopolicyError(
            f"policy={policy_cfg.get('name')} is not a trainable policy (its _target_ "
            f"{policy_cfg.get('_target_')!r} is no registered policy class; trainable: {trainable}); "
            f"a scripted policy is evaluated with `robopolicy eval policy={policy_cfg.get('name')}`")
    return bool(getattr(get_policy_class(name), "trains_with_robomimic", False))
