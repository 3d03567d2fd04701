"""The object library: which instances exist, how they split into seen/unseen categories and
train/held-out instances, and the on-disk cache of exported instances (MJCF + URDF + part
point clouds) that `robopolicy assets build` fills.

Splits follow PartInstruct: 10 seen and 4 unseen categories (test5, OC), and within each seen
category a held-out 20% of instances (test2, OI). The unseen categories are chosen so every one
of their part names also occurs in a seen category, so a policy has met each part word before.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sims.core.workers import watch_parent
from sims.objects import categories, generator, make_instance
from sims.objects.geometry import load_category_spec
from sims.paths import assets_dir

UNSEEN_CATEGORIES: tuple[str, ...] = ("knife", "bucket", "box", "pliers")
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0
LIBRARY_VERSION = 1  # bump when the on-disk layout changes
FILES = ("model.xml", "model.urdf", "parts.npz", "meta.json")


def n_instances(category: str) -> int:
    """How many instances the library has of `category` (its spec's `n_instances`)."""
    return int(load_category_spec(category)["n_instances"])


def part_vocabulary(category: str) -> list[str]:
    """The category's part names, in its spec's order."""
    return list(load_category_spec(category)["parts"])


def split_manifest(seed: int = SPLIT_SEED, unseen: tuple[str, ...] = UNSEEN_CATEGORIES,
                   held_out_fraction: float = HELD_OUT_FRACTION) -> dict:
    """Seen/unseen categories and, per seen category, train vs held-out instance ids.

    A pure function of its arguments (and the specs' instance counts)."""
    unknown = set(unseen) - set(categories())
    if unknown:
        raise ValueError(f"unseen categories {sorted(unknown)} are not in the library")
    seen_parts = {p for c in categories() if c not in unseen for p in part_vocabulary(c)}
    for c in unseen:
        missing = set(part_vocabulary(c)) - seen_parts
        if missing:
            raise ValueError(f"unseen category {c!r} has parts {sorted(missing)} that no seen "
                             "category has")
    out = {"seed": seed, "held_out_fraction": held_out_fraction,
           "unseen_categories": list(unseen), "categories": {}}
    for c in categories():
        n = n_instances(c)
        entry = {"split": "unseen" if c in unseen else "seen", "instances": n,
                 "parts": part_vocabulary(c),
                 "grasp_parts": list(load_category_spec(c).get("grasp_parts", []))}
        if c in unseen:
            entry.update(train_instances=[], held_out_instances=list(range(n)))
        else:
            rng = np.random.default_rng([seed, *c.encode()])
            held = sorted(int(i) for i in rng.permutation(n)[: round(held_out_fraction * n)])
            entry.update(train_instances=[i for i in range(n) if i not in held],
                         held_out_instances=held)
        out["categories"][c] = entry
    return out


# -- cache -------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """Where built instances go: $ROBOPOLICY_CACHE/assets, else $XDG_CACHE_HOME/robopolicy/assets,
    else ~/.cache/robopolicy/assets."""
    if os.environ.get("ROBOPOLICY_CACHE"):
        return Path(os.environ["ROBOPOLICY_CACHE"]) / "assets"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "robopolicy" / "assets"


def fingerprint(category: str) -> str:
    """A hash of everything that determines a category's instances: its spec, its generator
    and the shared generation/export code. A built instance with another fingerprint is stale."""
    from sims.objects import builder, export, geometry, shapes

    h = hashlib.sha256(f"v{LIBRARY_VERSION}".encode())
    h.update((assets_dir() / "categories" / f"{category}.yaml").read_bytes())
    for module in (inspect.getmodule(generator(category)), builder, export, geometry, shapes):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


def instance_dir(root: Path, category: str, instance_id: int) -> Path:
    return Path(root) / category / f"{category}_{instance_id:04d}"


def is_built(path: Path, expected_fingerprint: str) -> bool:
    """Whether `path` holds a complete instance built from the current code and spec."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("fingerprint") != expected_fingerprint:
        return False
    return all((path / rel).is_file() and (path / rel).stat().st_size == size
               for rel, size in meta.get("files", {}).items())


def build_instance(root: Path, category: str, instance_id: int, fp: str) -> Path:
    """Export one instance into the cache (written to a temporary folder, then renamed, so an
    interrupted build never leaves a half-written instance that looks valid)."""
    from sims.objects.export import to_mjcf, to_urdf

    asset = make_instance(category, instance_id)
    final = instance_dir(root, category, instance_id)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "meshes").mkdir(parents=True)
    files = {"model.xml": to_mjcf(asset).encode()}
    urdf, meshes = to_urdf(asset)
    files["model.urdf"] = urdf.encode()
    files.update(meshes)
    for rel, data in files.items():
        (tmp / rel).write_bytes(data)
    arrays = {}
    for name, part in asset.parts.items():
        arrays[f"{name}/points"] = part.points
        arrays[f"{name}/normals"] = part.normals
        arrays[f"{name}/point_body"] = part.body_index()
    np.savez_compressed(tmp / "parts.npz", **arrays)
    sizes = {rel: (tmp / rel).stat().st_size for rel in [*files, "parts.npz"]}
    meta = {
        "category": category, "instance_id": instance_id, "name": asset.name,
        "fingerprint": fp, "scale": asset.scale, "params": asset.params,
        "parts": {n: {"bodies": list(p.bodies), "joints": list(p.joints), "geoms": len(p.geoms),
                      "points": len(p.points)} for n, p in asset.parts.items()},
        "joints": {b.joint.name: {"type": b.joint.type, "range": list(b.joint.range)}
                   for b in asset.bodies if b.joint is not None},
        "files": sizes,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _build_one(args: tuple[str, str, int, str]) -> tuple[str, int, str | None]:
    root, category, instance_id, fp = args
    try:
        build_instance(Path(root), category, instance_id, fp)
        return category, instance_id, None
    except Exception as e:  # reported per instance; one bad instance must not stop the build
        return category, instance_id, f"{type(e).__name__}: {e}"


@dataclass
class BuildSummary:
    """What `build_library` did."""

    root: Path
    built: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def build_library(root: Path | None = None, cats: list[str] | None = None, workers: int = 2,
                  force: bool = False, max_instances: int | None = None,
                  progress: bool = True) -> BuildSummary:
    """Export every instance of `cats` (default: all) into `root` in `workers` processes,
    skipping instances already built from the current code, and write `manifest.json`."""
    import multiprocessing as mp
    import sys

    from tqdm import tqdm

    root = Path(root or default_cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    cats = list(cats or categories())
    t0 = time.perf_counter()
    summary = BuildSummary(root)
    todo = []
    for c in cats:
        fp = fingerprint(c)
        n = n_instances(c) if max_instances is None else min(max_instances, n_instances(c))
        for i in range(n):
            if not force and is_built(instance_dir(root, c, i), fp):
                summary.skipped += 1
            else:
                todo.append((str(root), c, i, fp))
    with tqdm(total=len(todo), desc="build assets", unit="inst", disable=not progress,
              mininterval=0.5 if sys.stderr.isatty() else 10.0) as bar:
        if workers <= 1 or len(todo) <= 1:
            results = map(_build_one, todo)
            for category, i, err in results:
                _record(summary, category, i, err, bar)
        else:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                     initializer=watch_parent, initargs=(os.getpid(),)) as pool:
                for category, i, err in pool.map(_build_one, todo, chunksize=4):
                    _record(summary, category, i, err, bar)
    manifest = split_manifest()
    manifest["fingerprints"] = {c: fingerprint(c) for c in categories()}
    tmp = root / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / "manifest.json")
    summary.seconds = time.perf_counter() - t0
    return summary


def _record(summary: BuildSummary, category: str, i: int, err: str | None, bar) -> None:
    if err is None:
        summary.built += 1
    else:
        summary.failed[f"{category}_{i:04d}"] = err
    bar.update(1)
