"""`robopolicy augment`: a demo store -> a new store of augmented demos (augmenters composed)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from robopolicy.commands.app import config_dir, hydra_app, output_dir
from robopolicy.errors import RobopolicyError

DEFAULT = ["pose"]


def _names(value: str) -> list[str]:
    """`augment=` values: ``name`` or ``[a,b,c]``."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return [n.strip().strip("'\"") for n in value.split(",") if n.strip()]


def check_args(args: list[str]) -> str | None:
    """The one-line error for an `augment=` naming no configs/augment/<name>.yaml (or one
    twice), or an `augment.<name>.` override of an augmenter not named, or None (checked before
    hydra, whose own messages span several lines)."""
    known = sorted(p.stem for p in (config_dir() / "augment").glob("*.yaml"))
    names = DEFAULT
    for arg in args:
        key, eq, value = arg.partition("=")
        if key in ("in", "source", "per_episode"):
            new = {"in": "path", "source": "path", "per_episode": "copies"}[key]
            return f"augment: {key}= is now {new}= (e.g. {new}={value or '...'})"
        if key.lstrip("+~") == "augment" and eq:
            names = _names(value)
            unknown = [n for n in names if n not in known]
            if unknown or not names:
                bad = unknown[0] if unknown else value
                return f"augment: unknown augmenter {bad!r} (known: {', '.join(known)})"
            if len(set(names)) < len(names):
                return f"augment: an augmenter is named twice in augment={value}"
    for arg in args:
        key = arg.partition("=")[0].lstrip("+~")
        parts = key.split(".")
        if parts[0] == "augment" and len(parts) > 1 and parts[1] not in names:
            return (f"augment: {key}: {parts[1]!r} is not among augment=[{','.join(names)}] "
                    "(override augment.<name>.params.<key> of a named augmenter)")
    return None


def _augmenters(cfg: DictConfig) -> tuple[list[str], dict[str, dict]]:
    """The augmenter names in order and their params from the composed `augment` node."""
    node = OmegaConf.to_container(cfg.augment, resolve=True)
    if "augmenter" in node:  # a config file merged without its package header
        name = node["augmenter"]
        raise RobopolicyError(f"configs/augment/{name}.yaml: its first line must be "
                              f"`# @package augment.{name}`")
    names = list(node)
    for name in names:
        if node[name].get("augmenter", name) != name:
            raise RobopolicyError(f"configs/augment/{name}.yaml: augmenter: "
                                  f"{node[name]['augmenter']} (expected {name})")
    return names, {n: node[n].get("params") or {} for n in names}


@hydra_app("augment")
def main(cfg: DictConfig) -> None:
    from robopolicy.augment.run import AugmentConfig, augment

    if not cfg.path:
        raise RobopolicyError("augment: path=<store> is required (the demo store to augment)")
    names, params = _augmenters(cfg)
    s = augment(AugmentConfig(
        tuple(names), Path(cfg.path),
        Path(cfg.out) if cfg.out else output_dir() / "augmented.zarr",
        copies=cfg.copies, episodes=cfg.episodes, seed=cfg.seed, workers=cfg.workers,
        overwrite=cfg.overwrite, keep_source=cfg.keep_source, params=params))
    resumed = f" ({s.resumed} done by an earlier run)" if s.resumed else ""
    print(f"store:   {s.path}\nkept {s.kept}/{s.generated} generated demos{resumed} in "
          f"{s.wall_s:.1f} s\n{s.table()}")
