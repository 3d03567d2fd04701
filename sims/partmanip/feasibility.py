"""Which (category, role, part) units the scripted expert can do, measured in simulation.

Some part-level skills are not physically sensible on our objects even though the part exists:
lifting a laptop by its screen frame swings the base off its hinge, pushing a bottle by its
neck tips it over, a scissors' screw offers no side to push. The catalog keeps a task only if
every unit it uses is feasible: the part grasped and carried (`grasp`, measured with class 7:
grasp, two moves), the part held while the object is turned (`rotate`, class 8) and the part
touched to push (`push`, class 6: touch, push, release).

`calibrate` runs the expert on a few episodes per unit, on train instances (all instances of
an unseen category) and from initial states outside every split's seed range, so the
success the catalog's splits then measure is not the calibration's. The table is data
(`feasibility.json` beside this file), regenerated with `robopolicy dataset calibrate`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TABLE = Path(__file__).with_name("feasibility.json")
ROLE_CLASS = {"grasp": 7, "rotate": 8, "push": 6}  # the class each role is measured with
FEASIBLE_MIN = 0.6  # fraction of calibration episodes the expert must succeed on
CALIBRATION_SEED_BASE = 9_000_000  # above every split's seeds (catalog.SEED_BASE, push retries)
UNIT_SEED_STRIDE = 1_000


def unit_key(category: str, role: str, part: str) -> str:
    return f"{category}/{role}/{part}"


def calibration_units(category: str) -> list[tuple[str, str]]:
    """(role, part) units of a category: every grasp part carried and (if the category has a
    part to turn other than it) held while turning; every touch part and side pushed."""
    from sims.partmanip.catalog import SIDES, category_parts

    parts = category_parts(category)
    units = [("grasp", p) for p in parts.grasp]
    units += [("rotate", p) for p in parts.grasp if set(parts.rotate) - {p}]
    units += [("push", p) for p in (*parts.touch, *SIDES)]
    return units


def calibration_tasks(category: str, role: str, part: str, index: int, episodes: int,
                      instances: list[int], seed: int = 0) -> list[dict]:
    """`episodes` catalog-style episodes exercising one unit: (task params, instance, seed)."""
    from sims.partmanip.catalog import (
        SIDES,
        TOUCH_THEN_MOVE,
        _instances_for,
        _pushable_start,
        category_parts,
        enumerate_params,
    )

    task_class = ROLE_CLASS[role]
    options = [t for t in enumerate_params(task_class, category_parts(category))
               if t.part == part]
    rng = np.random.default_rng([seed, index])
    out = []
    for j in range(episodes if options else 0):
        t = options[int(rng.integers(len(options)))]
        params = {"part": t.part, "directions": list(t.directions), "rotate_part": t.rotate_part,
                  "facing": t.facing, "part2": t.part2}
        task = {"task_class": task_class, "category": category, "params": params,
                "parts": sorted({t.part, t.rotate_part} - {None, *SIDES})}
        usable = _instances_for(task, instances, category)
        if not usable:
            continue
        inst = int(rng.choice(usable))
        s = CALIBRATION_SEED_BASE + index * UNIT_SEED_STRIDE + j
        if task_class in TOUCH_THEN_MOVE:
            inst, s = _pushable_start(task, usable, inst, s, rng)
        out.append({**task, "instance_id": inst, "init_seed": s})
    return out


_worker: dict = {}


def _init_worker() -> None:
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.factory import make_env

    _worker["env"] = make_env()
    _worker["expert"] = ScriptedExpert()


def _run_one(job: dict) -> bool:
    from robopolicy.data.collect import run_expert_episode
    from sims.partmanip.tasks import make_task

    p = job["params"]
    task = make_task(job["task_class"], job["category"], p["part"], directions=tuple(p["directions"]),
                     rotate_part=p["rotate_part"], facing=p["facing"], part2=p["part2"],
                     instance_id=job["instance_id"], init_seed=job["init_seed"], split="calibration")
    _, info = run_expert_episode(_worker["env"], _worker["expert"], task)
    return bool(info["success"])


def calibrate(categories: list[str] | None = None, episodes: int = 8, workers: int = 2,
              seed: int = 0, out: Path | None = TABLE) -> dict:
    """Measure every unit of `categories` (default: all) and write the table to `out`."""
    from robopolicy.executors import ordered_map
    from robopolicy.progress import progress
    from sims.objects.library import fingerprint, split_manifest

    cats = split_manifest()["categories"]
    jobs, keys, index = [], [], 0
    for category in sorted(categories or cats):
        entry = cats[category]
        pool = entry["train_instances"] if entry["split"] == "seen" else entry["held_out_instances"]
        for role, part in calibration_units(category):
            for job in calibration_tasks(category, role, part, index, episodes, pool, seed):
                jobs.append(job)
                keys.append(unit_key(category, role, part))
            index += 1
    log.info("calibrating %d units with %d expert episodes on %d workers", len(set(keys)),
             len(jobs), workers)
    units: dict[str, list[int]] = {k: [0, 0] for k in keys}
    results = ordered_map(_run_one, jobs, init=_init_worker, workers=workers)
    with progress(total=len(jobs), desc="calibrate", unit="ep") as bar:
        for key, ok in zip(keys, results, strict=True):
            units[key][0] += ok
            units[key][1] += 1
            bar.update(1)
    table = {"episodes_per_unit": episodes, "seed": seed, "feasible_min": FEASIBLE_MIN,
             "fingerprints": {c: fingerprint(c) for c in sorted(categories or cats)},
             "units": dict(sorted(units.items()))}
    if out is not None:
        old = load_table(out) if Path(out).is_file() else {"units": {}, "fingerprints": {}}
        table["units"] = dict(sorted({**old["units"], **table["units"]}.items()))
        table["fingerprints"] = dict(sorted({**old["fingerprints"], **table["fingerprints"]}.items()))
        Path(out).write_text(json.dumps(table, indent=1) + "\n")
    return table


def load_table(path: Path = TABLE) -> dict:
    """The measured table; a missing or unreadable one is a one-line error."""
    try:
        table = json.loads(Path(path).read_text())
        table["units"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"feasibility table {path}: {type(e).__name__}: {e}; rebuild it with "
                         "`robopolicy dataset calibrate`") from None
    return table


def infeasible_units(table: dict) -> frozenset[str]:
    """Units measured below FEASIBLE_MIN (units never measured count as feasible)."""
    return frozenset(k for k, (ok, n) in table["units"].items() if n and ok / n < FEASIBLE_MIN)


def infeasible_for(category: str, table: dict) -> frozenset[tuple[str, str]]:
    """The (role, part) units of one category measured below FEASIBLE_MIN."""
    return frozenset(tuple(k.split("/")[1:]) for k in infeasible_units(table)
                     if k.startswith(f"{category}/"))
