"""The feasibility calibration's episodes: for each (category, role, part) unit, a few
catalog-style expert episodes that exercise it (a grasp carried with class 7, a part held while
turning with class 8, a push with class 6).

They run on train instances (all instances of an unseen category) and from initial states
outside every split's seed range, so the success the catalog's splits then measure is not the
calibration's. `robopolicy dataset calibrate` runs them and writes the table
(`sims.partmanip.feasibility`) the catalog reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sims.partmanip.feasibility import unit_key

if TYPE_CHECKING:
    from sims.partmanip.tasks import TaskSpec

ROLE_CLASS = {"grasp": 7, "rotate": 8, "push": 6}  # the class each role is measured with
CALIBRATION_SEED_BASE = 9_000_000  # above every split's seeds (catalog.SEED_BASE, push retries)
UNIT_SEED_STRIDE = 1_000


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


def calibration_jobs(categories: list[str] | None = None, episodes: int = 8, seed: int = 0
                     ) -> list[tuple[str, dict]]:
    """Every calibration episode of `categories` (default: all) as (unit key, job), in a fixed
    order: units of each category in turn, `episodes` jobs each (see `calibration_tasks`)."""
    from sims.objects.library import split_manifest

    cats = split_manifest()["categories"]
    jobs, index = [], 0
    for category in sorted(categories or cats):
        entry = cats[category]
        pool = entry["train_instances"] if entry["split"] == "seen" else entry["held_out_instances"]
        for role, part in calibration_units(category):
            key = unit_key(category, role, part)
            jobs += [(key, job) for job in calibration_tasks(category, role, part, index, episodes,
                                                            pool, seed)]
            index += 1
    return jobs


def job_task(job: dict) -> TaskSpec:
    """The TaskSpec of one calibration job (split "calibration")."""
    from sims.partmanip.tasks import make_task

    p = job["params"]
    return make_task(job["task_class"], job["category"], p["part"], directions=tuple(p["directions"]),
                     rotate_part=p["rotate_part"], facing=p["facing"], part2=p["part2"],
                     instance_id=job["instance_id"], init_seed=job["init_seed"], split="calibration")
