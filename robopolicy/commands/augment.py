"""`robopolicy augment`: a demo store -> a new store of augmented, sim-verified demos."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import config_dir, hydra_app, output_dir
from robopolicy.errors import RobopolicyError


def check_args(args: list[str]) -> str | None:
    """The one-line error for an `augment=<name>` among `args` with no configs/augment/<name>.yaml
    (checked before hydra, whose own message spans several lines), or None."""
    known = sorted(p.stem for p in (config_dir() / "augment").glob("*.yaml"))
    for arg in args:
        key, eq, name = arg.partition("=")
        if key == "augment" and eq and name not in known:
            return f"augment: unknown augmenter {name!r} (known: {', '.join(known)})"
    return None


@hydra_app("augment")
def main(cfg: DictConfig) -> None:
    from robopolicy.augment.run import AugmentConfig, augment

    if not cfg.source:
        raise RobopolicyError("augment: source=<store> is required")
    spec = OmegaConf.to_container(cfg.augment, resolve=True)
    s = augment(AugmentConfig(
        spec["augmenter"], Path(cfg.source),
        Path(cfg.out) if cfg.out else output_dir() / "augmented.zarr",
        per_episode=cfg.per_episode, episodes=cfg.episodes, seed=cfg.seed,
        overwrite=cfg.overwrite, params=spec.get("params") or {}))
    print(f"store:   {s.path}\nkept {s.kept}/{s.generated} generated demos in {s.wall_s:.1f} s\n"
          f"{s.table()}")
