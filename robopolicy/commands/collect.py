"""`robopolicy collect`: expert demonstrations in parallel workers -> one zarr store."""

from __future__ import annotations

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("collect")
def main(cfg: DictConfig) -> None:
    from robopolicy.data.collect import CollectConfig, collect

    s = collect(CollectConfig.from_hydra(cfg, default_out=output_dir() / "demos.zarr"))
    print(f"store:   {s.path}\nsuccess: {s.successes}/{s.episodes} ({s.success_rate:.1%}), kept "
          f"{s.kept} episodes, {s.steps} steps, {s.wall_s:.1f} s "
          f"({60 * s.episodes / max(s.wall_s, 1e-9):.1f} attempts/min, "
          f"{60 * s.kept / max(s.wall_s, 1e-9):.1f} kept demos/min)")
