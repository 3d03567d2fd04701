"""How closely fitted Gaussian scenes look like MuJoCo: one instance per category.

    python benchmarks/gaussian_fit.py [--quick] [--categories mug kettle] [--iterations 150]
        [--threads 1] [--out r.json]

Per category, the first training instance of the library's split (the unseen categories,
which have none, their instance 0) is built in the suite's reset state, its Gaussians fitted
to MuJoCo renders (`robopolicy.augment.fit`, `FitConfig` defaults unless overridden) and
measured on held-out views: PSNR against MuJoCo's image before and after the fit, the mean
and the smallest part-mask IoU over the object's parts, the Gaussian count and the fit's wall
time. Fits come from the cache when there (`fit s` is then the cached fit's own time; `--refit`
fits afresh). `--quick`: three categories, 60 iterations. Prints a table and the JSON it
writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

QUICK = ("mug", "bottle", "laptop")


def instance_of(category: str) -> int:
    from sims.objects.library import split_manifest

    entry = split_manifest()["categories"][category]
    return int((entry["train_instances"] or entry["held_out_instances"])[0])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--train-views", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="image side, px")
    parser.add_argument("--crease-deg", type=float, default=None,
                        help="discs end at edges sharper than this (FitConfig.crease_deg); "
                             "a negative value: round discs")
    parser.add_argument("--reach-sigmas", type=float, default=None)
    parser.add_argument("--eps2d", type=float, default=None,
                        help="the renderer's low-pass, px^2 (FitConfig.eps2d_px2)")
    parser.add_argument("--object-per-m2", type=float, default=None,
                        help="Gaussians per square metre of object surface")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 on a machine others load")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--refit", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from robopolicy.augment.fit import FitConfig
    from robopolicy.augment.fit_cache import fitted_instance
    from sims.objects import CATEGORIES

    config = FitConfig(iterations=60) if args.quick else FitConfig()
    overrides = {"iterations": args.iterations, "train_views": args.train_views,
                 "size": args.size, "reach_sigmas": args.reach_sigmas,
                 "object_per_m2": args.object_per_m2, "eps2d_px2": args.eps2d}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.crease_deg is not None:
        config = replace(config, crease_deg=None if args.crease_deg < 0 else args.crease_deg)
    categories = args.categories or (QUICK if args.quick else CATEGORIES)
    rows = []
    for category in categories:
        instance = instance_of(category)
        start = time.perf_counter()
        fit = fitted_instance(category, instance, config, args.cache_dir, refit=args.refit)
        m = fit.metrics
        rows.append({"category": category, "instance": instance, "gaussians": len(fit.scene),
                     "psnr_unfitted_db": round(fit.initial.psnr_db, 2),
                     "psnr_db": round(m.psnr_db, 2), "iou": round(m.iou, 3),
                     "iou_min": round(min(m.part_iou.values(), default=float("nan")), 3),
                     "part_iou": {k: round(v, 3) for k, v in m.part_iou.items()},
                     "fit_s": round(fit.seconds, 1), "cached": fit.cached,
                     "wall_s": round(time.perf_counter() - start, 1)})
        _print_row(rows[-1], header=len(rows) == 1)
    report = {"config": asdict(config), "torch_threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "cuda": torch.cuda.is_available(), "rows": rows}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return report


def _print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'category':12s} {'inst':>4s} {'gaussians':>9s} {'PSNR0':>6s} {'PSNR':>6s} "
              f"{'IoU':>6s} {'IoUmin':>6s} {'fit s':>6s}")
    print(f"{r['category']:12s} {r['instance']:4d} {r['gaussians']:9d} "
          f"{r['psnr_unfitted_db']:6.2f} {r['psnr_db']:6.2f} {r['iou']:6.3f} {r['iou_min']:6.3f} "
          f"{r['fit_s']:6.1f}", flush=True)


if __name__ == "__main__":
    main()
