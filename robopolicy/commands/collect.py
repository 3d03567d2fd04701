"""`robopolicy collect`: expert demonstrations in parallel workers -> one zarr store."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("collect")
def main(cfg: DictConfig) -> None:
    from robopolicy.data.collect import collect

    out = Path(cfg.out) if cfg.out else output_dir() / "demos.zarr"
    tasks = OmegaConf.to_container(cfg.suite.tasks, resolve=True)
    tasks["split"] = cfg.split  # a pool records it as the episodes' split; a catalog draws from it
    s = collect(OmegaConf.to_container(cfg.suite.env, resolve=True), tasks, out, cfg.episodes,
                cfg.seed, cfg.workers, cfg.keep_failures, cfg.overwrite, cfg.executor.kind,
                cfg.executor.get("address"))
    print(f"store:   {s.path}\nsuccess: {s.successes}/{s.episodes} ({s.success_rate:.1%}), kept "
          f"{s.kept} episodes, {s.steps} steps, {s.wall_s:.1f} s "
          f"({60 * s.episodes / max(s.wall_s, 1e-9):.1f} attempts/min, "
          f"{60 * s.kept / max(s.wall_s, 1e-9):.1f} kept demos/min)")
