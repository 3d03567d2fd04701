"""`robopolicy dataset info PATH [--json] [--verify]`, `dataset verify PATH`, `dataset export
PATH --format robomimic`, `dataset catalog [--json]` and `dataset calibrate`: inspect, check and
convert demo stores; build the suite's task catalog; measure which part-level skills the expert
can do (the catalog keeps only those)."""

from __future__ import annotations

import json
import sys

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app

ACTIONS = ("info", "verify", "catalog", "export", "calibrate")


@hydra_app("dataset")
def _app(cfg: DictConfig) -> None:
    from robopolicy.data.info import dataset_info, format_info
    from robopolicy.errors import RobopolicyError

    if cfg.action not in ACTIONS:
        raise RobopolicyError(f"dataset: unknown action {cfg.action!r}; choose one of {', '.join(ACTIONS)}")
    if cfg.action == "catalog":
        _catalog(cfg)
        return
    if cfg.action == "calibrate":
        _calibrate(cfg)
        return
    if not cfg.path:
        raise RobopolicyError(f"dataset {cfg.action}: give the store's path, e.g. "
                              f"`robopolicy dataset {cfg.action} demos.zarr`")
    if cfg.action == "export":
        _export(cfg)
        return
    if cfg.action == "verify":
        from robopolicy.data.verify import verify_store

        print(verify_store(cfg.path).summary())  # damage: a one-line error, exit 2
        return
    info = dataset_info(cfg.path, verify=cfg.verify)
    print(json.dumps(info) if cfg.json else format_info(info))


def _export(cfg: DictConfig) -> None:
    from pathlib import Path

    from robopolicy.data.export import export_robomimic
    from robopolicy.errors import RobopolicyError

    if cfg.export.format != "robomimic":
        raise RobopolicyError(f"dataset export: unknown format {cfg.export.format!r} (known: robomimic)")
    out = Path(cfg.export.out) if cfg.export.out else Path(cfg.path).with_suffix(".hdf5")
    path = export_robomimic(cfg.path, out, cfg.export.val_ratio, cfg.export.seed)
    print(f"robomimic hdf5: {path}")


def _calibrate(cfg: DictConfig) -> None:
    from pathlib import Path

    from robopolicy.data.calibrate import calibrate
    from robopolicy.errors import RobopolicyError
    from sims.objects import CATEGORIES
    from sims.partmanip.feasibility import FEASIBLE_MIN, TABLE, infeasible_units

    c = cfg.calibrate
    cats = list(c.categories) if c.categories else None
    unknown = sorted(set(cats or ()) - set(CATEGORIES))
    if unknown:
        raise RobopolicyError(f"dataset calibrate: unknown categories {unknown} (known: {', '.join(CATEGORIES)})")
    out = Path(c.out) if c.out else TABLE
    table = calibrate(cats, c.episodes, c.workers, c.seed, out)
    dropped = infeasible_units(table)
    for key, (ok, n) in table["units"].items():
        print(f"{key:<36} {ok}/{n}" + ("  dropped" if key in dropped else ""))
    print(f"\n{len(dropped)} of {len(table['units'])} units below {FEASIBLE_MIN:.0%}; table: {out}")


def _catalog(cfg: DictConfig) -> None:
    from collections import Counter
    from pathlib import Path

    from sims.partmanip.catalog import build_catalog, summary_table, write_catalog

    c = cfg.catalog
    catalog = build_catalog(c.seed, c.train_episodes, c.episodes_per_cell, c.val_per_category)
    path = write_catalog(catalog, Path(c.out))
    if cfg.json:
        cells = Counter((t["split"], t["task_class"], t["category"]) for t in catalog["tasks"])
        counts: dict = {}
        for (split, cls, cat), n in sorted(cells.items()):
            counts.setdefault(split, {}).setdefault(str(cls), {})[cat] = n
        print(json.dumps({"n_tasks": catalog["n_tasks"], "classes": catalog["classes"],
                          "splits": catalog["splits"], "test4_classes": catalog["test4_classes"],
                          "unseen_categories": catalog["unseen_categories"],
                          "tasks_per_split_class_category": counts, "path": str(path)}))
    else:
        print(summary_table(catalog) + f"\n\ncatalog: {path}")


def main() -> None:
    """Read the action, a positional PATH, `--json` and `--format F`, then run the hydra app."""
    args, rest = iter(sys.argv[1:]), []
    for k, a in enumerate(args):
        if k == 0 and a in ACTIONS:
            rest.append(f"action={a}")
        elif a == "--json":
            rest.append("json=true")
        elif a == "--verify":
            rest.append("verify=true")
        elif a == "--format":
            rest.append(f"export.format={next(args, '')}")
        elif a.startswith("--format="):
            rest.append(f"export.format={a.split('=', 1)[1]}")
        elif "=" not in a and not a.startswith("-"):
            rest.append(f"path={a}")
        else:
            rest.append(a)
    sys.argv = [sys.argv[0], *rest]
    _app()
