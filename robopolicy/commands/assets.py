"""`robopolicy assets <build|list|preview>`: build, list and preview the object library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app

ACTIONS = ("build", "list", "preview")


@hydra_app("assets")
def _app(cfg: DictConfig) -> None:
    from robopolicy.errors import RobopolicyError
    from sims.objects import categories

    if cfg.action not in ACTIONS:
        raise RobopolicyError(f"assets: unknown action {cfg.action!r}; choose one of {', '.join(ACTIONS)}")
    cats = list(cfg.categories) if cfg.categories else None
    unknown = set(cats or []) - set(categories())
    if unknown:
        raise RobopolicyError(f"assets: unknown categories {sorted(unknown)}; known: "
                              f"{', '.join(categories())}")
    {"build": _build, "list": _list, "preview": _preview}[cfg.action](cfg, cats)


def _build(cfg: DictConfig, cats: list[str] | None) -> None:
    from robopolicy.errors import RobopolicyError
    from sims.objects.library import build_library

    s = build_library(Path(cfg.cache_dir) if cfg.cache_dir else None, cats, cfg.workers, cfg.force,
                      cfg.max_instances)
    print(f"cache:   {s.root}\nbuilt:   {s.built} instances, skipped {s.skipped} already built, "
          f"{len(s.failed)} failed, {s.seconds:.1f} s\nmanifest: {s.root / 'manifest.json'}")
    if s.failed:
        first = next(iter(s.failed.items()))
        raise RobopolicyError(f"assets build: {len(s.failed)} instances failed, first "
                              f"{first[0]}: {first[1]}")


def _list(cfg: DictConfig, cats: list[str] | None) -> None:
    from sims.objects.library import split_manifest

    manifest = split_manifest()
    entries = {c: e for c, e in manifest["categories"].items() if not cats or c in cats}
    if cfg.json:
        out = {"categories": {c: {"instances": e["instances"], "split": e["split"],
                                  "parts": e["parts"], "grasp_parts": e["grasp_parts"],
                                  "train_instances": e["train_instances"],
                                  "held_out_instances": e["held_out_instances"]}
                              for c, e in entries.items()},
               "total_instances": sum(e["instances"] for e in entries.values()),
               "unseen_categories": manifest["unseen_categories"], "split_seed": manifest["seed"]}
        print(json.dumps(out))
        return
    width = max(map(len, entries))
    print(f"{'category':<{width}}  split   instances  held-out  parts")
    for c, e in entries.items():
        print(f"{c:<{width}}  {e['split']:<6}  {e['instances']:>9}  {len(e['held_out_instances']):>8}  "
              f"{', '.join(e['parts'])}")
    print(f"{sum(e['instances'] for e in entries.values())} instances in {len(entries)} categories; "
          f"unseen (test5): {', '.join(manifest['unseen_categories'])}")


def _preview(cfg: DictConfig, cats: list[str] | None) -> None:
    from sims.objects.preview import contact_sheet

    path = contact_sheet(Path(cfg.preview.out), cats, cfg.preview.per_row, cfg.preview.size)
    print(f"contact sheet: {path}")


def main() -> None:
    """Read the action (first argument) and `--json`, then run the hydra app on the rest."""
    args = sys.argv[1:]
    rest = []
    for i, a in enumerate(args):
        if i == 0 and a in ACTIONS:
            rest.append(f"action={a}")
        elif a == "--json":
            rest.append("json=true")
        else:
            rest.append(a)
    sys.argv = [sys.argv[0], *rest]
    _app()
