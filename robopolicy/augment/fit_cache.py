"""Fitted Gaussian scenes of the suite's instances, cached like the asset cache.

A fit is keyed by its instance (category, id and the library's fingerprint of the category),
the `FitConfig` and the code that builds, renders and fits the scene (this package's and the
MuJoCo scene's modules): a change to any of them fits afresh. An entry is a 3DGS `.ply`
(`ply.save_ply`, with segments) and a JSON of the metrics, written last, so a torn entry is
refitted: ``<cache>/gaussians/<category>/<category>_<id>-<key>.{ply,json}``, where `<cache>`
is the asset cache's parent (``~/.cache/robopolicy``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
from dataclasses import asdict
from pathlib import Path

from robopolicy.augment.fit import FitConfig, FitMetrics, FitResult, fit_backend
from robopolicy.augment.ply import load_ply, save_ply

FIT_CODE = ("robopolicy.augment.fit", "robopolicy.augment.from_sim", "robopolicy.augment.scene",
            "robopolicy.augment.creases",
            "robopolicy.augment.rasterize", "robopolicy.augment.render",
            "robopolicy.augment.camera", "robopolicy.augment.sh", "sims.mujoco.scene",
            "sims.mujoco.meshes", "sims.mujoco.panda", "sims.mujoco.renderer")
"""Modules whose source keys a fit."""


def fit_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """`cache_dir`, else the asset cache's sibling ``gaussians``."""
    if cache_dir is not None:
        return Path(cache_dir)
    from sims.objects.library import default_cache_dir

    return default_cache_dir().parent / "gaussians"


def fit_key(category: str, instance: int, config: FitConfig) -> str:
    """A hash of the instance, the settings and the code a fit depends on."""
    from sims.objects.library import fingerprint

    h = hashlib.sha256(json.dumps([category, int(instance), fingerprint(category),
                                   asdict(config)]).encode())
    for module in FIT_CODE:
        h.update(inspect.getsource(importlib.import_module(module)).encode())
    return h.hexdigest()[:16]


def fit_paths(category: str, instance: int, config: FitConfig,
              cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(.ply, .json) of the cache entry."""
    stem = f"{category}_{int(instance):04d}-{fit_key(category, instance, config)}"
    folder = fit_cache_dir(cache_dir) / category
    return folder / f"{stem}.ply", folder / f"{stem}.json"


def fitted_instance(category: str, instance: int, config: FitConfig | None = None,
                    cache_dir: str | Path | None = None, refit: bool = False) -> FitResult:
    """The fitted scene of one instance in the suite's reset state (`from_sim.sim_backend`):
    read from the cache, or fitted (`fit.fit_backend`) and cached. `cached` says which."""
    config = config or FitConfig()
    ply, meta = fit_paths(category, instance, config, cache_dir)
    if not refit:
        result = _load(ply, meta)
        if result is not None:
            return result
    from robopolicy.augment.from_sim import sim_backend

    backend = sim_backend(category, instance, (config.size, config.size))
    try:
        result = fit_backend(backend, config)
    finally:
        backend.close()
    save_ply(result.scene, _tmp(ply))
    _tmp(ply).replace(ply)
    record = {"category": category, "instance": int(instance), "key": meta.stem.rsplit("-", 1)[1],
              "config": asdict(config), **result.summary()}
    _tmp(meta).write_text(json.dumps(record, indent=1))
    _tmp(meta).replace(meta)
    return result


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _load(ply: Path, meta: Path) -> FitResult | None:
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not ply.is_file():
        return None
    return FitResult(load_ply(ply), FitMetrics(**record["metrics"]),
                     FitMetrics(**record["initial"]), float(record["fit_seconds"]), cached=True)
