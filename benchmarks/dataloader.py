"""Training data loading: our SequenceSampler against robomimic's SequenceDataset on the same
demos (exported with `robopolicy.data.export`), samples/s, measured in one run.

    python benchmarks/dataloader.py [--store demos.zarr] [--episodes 100] [--length 60]
                                    [--image-episodes 20] [--batches 20] [--out results.json]

Windows of To=2 observation frames and 16 actions, batches of 256, over the store's
observation keys. Ours: the sampler as the trainer uses it (`training_sampler`: the keys cached
in RAM by `store.load`, a batch gathered by one fancy-indexing call per key, then
torch.from_numpy). Peer: robomimic's SequenceDataset (frame_stack 2, seq_length 16, padded at
both ends, hdf5_cache_mode low_dim / all / none) through a shuffled torch DataLoader with
num_workers 0 and 2, on the HDF5 exported from the same store. Note what each returns per
window: ours the To=2 frames a policy conditions on; robomimic an observation for every step
of the sequence (frame_stack - 1 + seq_length = 17 frames) and 17 actions, by its design.

Data: `--store` (any store), or, by default, synthetic stores of the suite's state-based shapes
(proprio 17, state 20, action 10; `--episodes` x `--length` steps) and an image variant (adds
rgb.agentview 96x96x3 uint8; `--image-episodes`, 0 = skip). The output says which it was.
Timed: batches after a warm-up batch (DataLoader workers are started before timing); set-up
(loading into RAM, robomimic's caching) is reported apart. Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH, TO, HORIZON = 256, 2, 16
STATE_META = {"obs": {"proprio": {"shape": [17], "type": "low_dim"},
                      "state": {"shape": [20], "type": "low_dim"}},
              "action": {"shape": [10]}}
IMAGE_META = {"obs": {**STATE_META["obs"],
                      "rgb.agentview": {"shape": [96, 96, 3], "type": "rgb"}},
              "action": {"shape": [10]}}


def synthetic_store(path: Path, shape_meta: dict, episodes: int, length: int) -> Path:
    """Episodes of smooth random low-dim signals and, for rgb keys, textured frames (they
    compress about like renders, unlike pure noise)."""
    from robopolicy.data.store import EpisodeStore

    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path, shape_meta, {"obs_keys": list(shape_meta["obs"])})
    t = np.linspace(0, 1, length, dtype=np.float32)[:, None]
    for i in range(episodes):
        ep = {}
        for key, attrs in shape_meta["obs"].items():
            shape = attrs["shape"]
            if attrs["type"] == "rgb":
                h, w, _ = shape
                base = rng.integers(0, 255, (1, h // 8, w // 8, 3), dtype=np.uint8)
                frames = np.repeat(np.repeat(base, 8, 1), 8, 2).repeat(length, 0)
                shift = (np.arange(length) % 8)[:, None, None, None].astype(np.uint8)
                ep[key] = frames + shift
            else:
                ep[key] = (rng.normal(size=shape) + t * rng.normal(size=shape)).astype(np.float32)
        ep["action"] = (rng.normal(size=10) + t * rng.normal(size=10)).astype(np.float32)
        store.add_episode(ep, {"success": True, "seed": i, "source": "expert"})
    return path


class _Policy:  # the window sizes training_sampler reads from a policy
    n_obs_steps, horizon = TO, HORIZON


def ours(store_path: Path, obs_keys: list[str], batches: int, max_s: float) -> dict:
    import torch

    from robopolicy.data.store import EpisodeStore
    from robopolicy.training.trainer import training_sampler

    t0 = time.perf_counter()
    store = EpisodeStore.open(store_path)
    data = store.load([*obs_keys, "action"])
    sampler = training_sampler(data, store.episode_ends, _Policy, obs_keys,
                               np.arange(store.n_episodes))
    setup = time.perf_counter() - t0
    order = np.random.default_rng(0).permutation(len(sampler))

    def batch(i: int) -> dict:
        idx = order[np.arange(i * BATCH, (i + 1) * BATCH) % len(order)]
        b = sampler.sample_batch(idx)
        return {"obs": {k: torch.from_numpy(v) for k, v in b["obs"].items()},
                "action": torch.from_numpy(b["action"])}

    batch(0)  # warm-up
    return {"loader": "ours: SequenceSampler (RAM)", "setup_s": setup,
            "per_window": f"obs {TO} frames, {HORIZON} actions",
            **_timed(lambda i: batch(i + 1), batches, max_s), "windows": len(sampler)}


def robomimic(hdf5: Path, obs_keys: list[str], shape_meta: dict, cache: str | None, workers: int,
              batches: int, max_s: float) -> dict:
    import torch

    with contextlib.redirect_stdout(io.StringIO()):
        import robomimic.utils.obs_utils as ObsUtils
        from robomimic.utils.dataset import SequenceDataset

        kinds = {"low_dim": [k for k in obs_keys if shape_meta["obs"][k]["type"] == "low_dim"],
                 "rgb": [k for k in obs_keys if shape_meta["obs"][k]["type"] == "rgb"]}
        ObsUtils.initialize_obs_utils_with_obs_specs({"obs": kinds})
        t0 = time.perf_counter()
        dataset = SequenceDataset(str(hdf5), obs_keys, ("actions",), frame_stack=TO,
                                  seq_length=HORIZON, pad_frame_stack=True, pad_seq_length=True,
                                  hdf5_cache_mode=cache, load_next_obs=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True,
                                         num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0,
                                         generator=torch.Generator().manual_seed(0))

    def batches_forever():
        while True:
            yield from loader

    it = batches_forever()
    next(it)  # warm-up; starts the workers
    setup = time.perf_counter() - t0
    row = {"loader": f"robomimic: SequenceDataset cache={cache or 'none'} workers={workers}",
           "setup_s": setup, "per_window": f"obs {TO - 1 + HORIZON} frames, {TO - 1 + HORIZON} actions",
           **_timed(lambda i: next(it), batches, max_s), "windows": len(dataset)}
    return row  # its workers stop when the loader is collected


def _timed(get, batches: int, max_s: float) -> dict:
    """samples/s over `batches` batches, or fewer (at least 2) if that takes over max_s."""
    t0 = time.perf_counter()
    n = 0
    while n < batches and (n < 2 or time.perf_counter() - t0 < max_s):
        get(n)
        n += 1
    wall = time.perf_counter() - t0
    return {"batches": n, "samples_per_s": n * BATCH / wall}


def measure(label: str, store_path: Path, work: Path, args) -> list[dict]:
    from robopolicy.data.export import export_robomimic
    from robopolicy.data.store import EpisodeStore

    store = EpisodeStore.open(store_path)
    meta = store.shape_meta
    obs_keys = list(meta["obs"])
    t0 = time.perf_counter()
    hdf5 = export_robomimic(store_path, work / f"{label}.hdf5", val_ratio=0.0)
    export_s = time.perf_counter() - t0
    images = any(v["type"] != "low_dim" for v in meta["obs"].values())
    rows = [ours(store_path, obs_keys, args.batches, args.max_seconds)]
    print(f"measured {label}: ours", flush=True)
    # caching every get_item call of an image store holds 17 frames per window: skip "all" there
    caches = ["low_dim", None] if images else ["low_dim", "all", None]
    for cache in caches:
        for workers in args.workers:
            try:
                rows.append(robomimic(hdf5, obs_keys, meta, cache, workers, args.batches,
                                      args.max_seconds))
            except Exception as e:  # a peer set-up that does not run here is reported, not fatal
                rows.append({"loader": f"robomimic: cache={cache or 'none'} workers={workers}",
                             "error": f"{type(e).__name__}: {e}"})
            print(f"measured {label}: {rows[-1]['loader']}", flush=True)
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["data"] = label
        r["keys"] = obs_keys
        r["steps"] = store.n_steps
        r["export_s"] = round(export_s, 2)
        if "samples_per_s" in r:
            r["ours_over_this"] = round(base / r["samples_per_s"], 2)
            r["samples_per_s"] = round(r["samples_per_s"], 1)
            r["setup_s"] = round(r["setup_s"], 2)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="an EpisodeStore to read (default: synthetic stores)")
    ap.add_argument("--episodes", type=int, default=100, help="synthetic state store: episodes")
    ap.add_argument("--length", type=int, default=60, help="synthetic stores: steps per episode")
    ap.add_argument("--image-episodes", type=int, default=20,
                    help="synthetic image store (adds rgb.agentview 96x96): episodes; 0 = skip")
    ap.add_argument("--batches", type=int, default=20, help="timed batches of 256 per loader")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="time cap per loader")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                    help="DataLoader num_workers for robomimic")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dataloader.json")
    args = ap.parse_args()
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.store is not None:
            data = {"source": f"store {args.store}"}
            rows += measure("store", args.store, work, args)
        else:
            data = {"source": "synthetic (EpisodeStore of random smooth signals)",
                    "state": f"{args.episodes} episodes x {args.length} steps: proprio 17, state 20, action 10"}
            t0 = time.perf_counter()
            path = synthetic_store(work / "state.zarr", STATE_META, args.episodes, args.length)
            data["state_build_s"] = round(time.perf_counter() - t0, 1)
            rows += measure("state", path, work, args)
            if args.image_episodes:
                data["image"] = (f"{args.image_episodes} episodes x {args.length} steps: "
                                 "+ rgb.agentview 96x96x3 uint8")
                path = synthetic_store(work / "image.zarr", IMAGE_META, args.image_episodes,
                                       args.length)
                rows += measure("image", path, work, args)
    result = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "platform": platform.platform()},
              "data": data, "batch": BATCH, "n_obs_steps": TO, "horizon": HORIZON, "rows": rows}
    print(f"data: {data}")
    print(f"{'data':<6} {'loader':<52} {'setup s':>8} {'samples/s':>10} {'ours/this':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['data']:<6} {r['loader']:<52} {'failed: ' + r['error'][:60]}")
        else:
            print(f"{r['data']:<6} {r['loader']:<52} {r['setup_s']:>8} {r['samples_per_s']:>10} "
                  f"{r['ours_over_this']:>9}")
    print(f"per window: ours {rows[0]['per_window']}; robomimic {rows[1].get('per_window', '?')} "
          "(an observation for every step of its sequence); images are gzip'd in the export")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
