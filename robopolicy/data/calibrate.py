"""`robopolicy dataset calibrate`: run the feasibility calibration's expert episodes in worker
processes and write the table the catalog reads.

What is measured (units, jobs, threshold, the table's format) is `sims.partmanip.feasibility`;
this module only runs it: the worker pool, the progress bar, the merge into the table file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sims.partmanip.calibration import calibration_jobs
from sims.partmanip.feasibility import TABLE, make_table, write_table

log = logging.getLogger(__name__)

_worker: dict = {}


def _init_worker() -> None:
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.factory import make_env

    _worker["env"] = make_env()
    _worker["expert"] = ScriptedExpert()


def _run_one(job: dict) -> bool:
    from sims.partmanip.calibration import job_task
    from sims.partmanip.demo import run_expert_episode

    _, info = run_expert_episode(_worker["env"], _worker["expert"], job_task(job))
    return bool(info["success"])


def calibrate(categories: list[str] | None = None, episodes: int = 8, workers: int = 2,
              seed: int = 0, out: Path | None = TABLE) -> dict:
    """Measure every unit of `categories` (default: all) with `episodes` expert episodes each on
    `workers` processes; merge the result into the table at `out` (default: the packaged one
    the catalog reads; None writes nothing) and return the table (merged when written)."""
    from robopolicy.executors import ordered_map
    from robopolicy.progress import progress
    jobs = calibration_jobs(categories, episodes, seed)
    keys = [key for key, _ in jobs]
    log.info("calibrating %d units with %d expert episodes on %d workers", len(set(keys)),
             len(jobs), workers)
    units: dict[str, list[int]] = {k: [0, 0] for k in keys}
    results = ordered_map(_run_one, [job for _, job in jobs], init=_init_worker, workers=workers)
    with progress(total=len(jobs), desc="calibrate", unit="ep") as bar:
        for key, ok in zip(keys, results, strict=True):
            units[key][0] += ok
            units[key][1] += 1
            bar.update(1)
    table = make_table(units, categories, episodes, seed)
    return table if out is None else write_table(table, out)
