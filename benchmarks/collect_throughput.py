"""Demo collection throughput: `robopolicy collect` on the suite's catalog train episodes with
1..K worker processes (state observations, the default), in one run.

    python benchmarks/collect_throughput.py [--episodes 40] [--max-workers 2] [--out results.json]

Every worker count collects the same episodes (catalog train episodes 0..N-1) into a fresh
store; the wall time includes worker start-up, as a user's run does. Reports attempts/min,
kept demos/min, demos/min per core and the time 10,000 demos would take at that rate.
Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def measure(episodes: int, workers: int, root: Path) -> dict:
    from robopolicy.data.collect import CollectConfig, collect

    t0 = time.perf_counter()
    s = collect(CollectConfig({"obs_keys": ["proprio", "state"]},
                              {"source": "catalog", "split": "train"}, root / f"w{workers}.zarr",
                              episodes, seed=0, workers=workers))
    wall = time.perf_counter() - t0
    demos_per_min = 60 * s.kept / wall
    return {"workers": workers, "episodes": episodes, "kept": s.kept, "steps": s.steps,
            "wall_s": round(wall, 1), "attempts_per_min": round(60 * episodes / wall, 1),
            "demos_per_min": round(demos_per_min, 1),
            "demos_per_min_per_core": round(demos_per_min / workers, 1),
            "hours_for_10000_demos": round(10_000 / max(demos_per_min, 1e-9) / 60, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/collect_throughput.json"))
    args = ap.parse_args()
    from sims.partmanip.catalog import load_catalog

    load_catalog()  # build (or read) the catalog before timing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in range(1, args.max_workers + 1):
            rows.append(measure(args.episodes, w, Path(tmp)))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "rows": rows}
    print(f"{'workers':>7} {'episodes':>8} {'kept':>5} {'wall s':>7} {'attempts/min':>12} "
          f"{'demos/min':>9} {'/core':>6} {'h per 10k':>9}")
    for r in rows:
        print(f"{r['workers']:>7} {r['episodes']:>8} {r['kept']:>5} {r['wall_s']:>7} "
              f"{r['attempts_per_min']:>12} {r['demos_per_min']:>9} {r['demos_per_min_per_core']:>6} "
              f"{r['hours_for_10000_demos']:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
