"""`robopolicy eval`: headless rollouts of a policy in parallel workers, with a report."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("eval")
def main(cfg: DictConfig) -> None:
    from robopolicy.evaluation.rollout import evaluate_policy, evaluate_splits

    out = output_dir()
    env = OmegaConf.to_container(cfg.suite.env, resolve=True)
    tasks = OmegaConf.to_container(cfg.suite.tasks, resolve=True)
    executor = OmegaConf.to_container(cfg.executor, resolve=True)
    if cfg.splits is not None:
        report = evaluate_splits(cfg.policy.path, env, tasks, list(cfg.splits),
                                 cfg.episodes_per_cell, cfg.seed,
                                 out, executor, cfg.videos, cfg.device)
    else:
        report = evaluate_policy(cfg.policy.path, env, tasks, cfg.episodes, cfg.seed, out,
                                 executor["workers"], executor["envs_per_worker"], cfg.videos,
                                 cfg.device, executor)
    for name, part in [("all", report), *report.get("by_split", {}).items()]:
        o = part["overall"]
        lo, hi = o["ci95"]
        print(f"{name:>6}: {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} "
              f"(95% CI {lo:.1%}-{hi:.1%}), completion {o['completion']:.2f}")
    print(f"report: {out / 'report.md'}")
    videos = sorted(out.glob("**/videos/*.mp4"))
    if videos:
        print(f"video:  {videos[0]}")
