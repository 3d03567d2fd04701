"""`robopolicy eval`: headless rollouts of a policy in parallel workers, with a report."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("eval")
def main(cfg: DictConfig) -> None:
    from robopolicy.evaluation.rollout import evaluate_policy

    out = output_dir()
    report = evaluate_policy(cfg.policy.path, OmegaConf.to_container(cfg.suite.env),
                             OmegaConf.to_container(cfg.suite.tasks), cfg.episodes, cfg.seed, out,
                             cfg.executor.workers, cfg.executor.envs_per_worker, cfg.videos, cfg.device)
    o = report["overall"]
    lo, hi = o["ci95"]
    print(f"success: {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} "
          f"(95% CI {lo:.1%}-{hi:.1%}), completion {o['completion']:.2f}\n"
          f"report:  {out / 'report.md'}")
    videos = sorted((out / "videos").glob("*.mp4"))
    if videos:
        print(f"video:   {videos[0]}")
