"""`robopolicy quickstart`: collect demos, train a diffusion policy, evaluate it on held-out
initial states, all in one run folder; prints where the report, checkpoint and video are."""

from __future__ import annotations

import time

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("quickstart")
def main(cfg: DictConfig) -> None:
    from robopolicy.data.collect import CollectConfig, collect
    from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
    from robopolicy.evaluation.rollout import evaluate_policy
    from robopolicy.training.config import TrainConfig
    from robopolicy.training.trainer import train

    out = output_dir()
    env = OmegaConf.to_container(cfg.suite.env, resolve=True)
    tasks = OmegaConf.to_container(cfg.suite.tasks, resolve=True)
    workers = cfg.executor.workers
    t0 = time.perf_counter()

    print(f"[1/3] collecting {cfg.collect.episodes} expert demos with {workers} workers", flush=True)
    demos = collect(CollectConfig(env=env, tasks=tasks, out=out / "demos.zarr",
                                  episodes=cfg.collect.episodes, seed=cfg.collect.seed,
                                  workers=workers))
    print(f"[2/3] training {cfg.policy.name} for {cfg.trainer.steps} steps", flush=True)
    trained = train(TrainConfig.from_hydra(cfg, out / "train", dataset=demos.path))
    print(f"[3/3] evaluating on {cfg.eval.episodes} held-out episodes", flush=True)
    executor = ExecutorConfig(workers=workers, envs_per_worker=cfg.executor.envs_per_worker)
    report = evaluate_policy(EvalConfig(trained.policy_dir, env, tasks, out / "eval",
                                        episodes=cfg.eval.episodes, seed=cfg.eval.seed,
                                        videos=cfg.eval.videos, device=cfg.trainer.device,
                                        executor=executor))

    o = report["overall"]
    lo, hi = o["ci95"]
    videos = sorted((out / "eval" / "videos").glob("*.mp4"))
    print(f"\nquickstart done in {(time.perf_counter() - t0) / 60:.1f} min "
          f"(collect {demos.wall_s:.0f} s, train {trained.wall_s:.0f} s, eval {report['wall_s']:.0f} s)\n"
          f"demos:      {demos.successes}/{demos.episodes} expert successes -> {demos.path}\n"
          f"success:    {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} "
          f"(95% CI {lo:.1%}-{hi:.1%}) on held-out initial states\n"
          f"report:     {out / 'eval' / 'report.md'}\n"
          f"checkpoint: {trained.policy_dir}\n"
          f"video:      {videos[0] if videos else '(none recorded)'}")
