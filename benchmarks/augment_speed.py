"""Augmentation speed: augmented frames per second from the Gaussians against the simulator
re-rendering the same frames, in the same run.

    python benchmarks/augment_speed.py --store demos.zarr [--episodes 1] [--fit small] [--out r.json]

Without ``--store`` a 1-episode 64-px image store (mug grasp: agentview RGB/depth/mask, wrist
RGB) is collected first. Gaussian rows: the source episodes put through render stages
(`lighting`, `camera`, `appearance`, and the three composed) with the instance's cached fit
(``--fit small``: the tests' quick fit; ``default``: the default one), on the torch renderer on
the CPU or gsplat where torch sees a GPU; the fit and the frames' set-up are done before the
clock starts. Simulator rows: the same episodes replayed in MuJoCo from their initial states
with the store's image keys, and without them; their difference is the rendering's share.
A frame is one camera's images at one step. Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_FIT = {"iterations": 15, "train_views": 4, "heldout_views": 1, "size": 64,
             "per_m2": 5000.0, "object_per_m2": 40000.0}
RENDER_STAGES = (["lighting"], ["camera"], ["appearance"], ["appearance", "lighting", "camera"])


def collect_store(root: Path) -> Path:
    out = root / "demos.zarr"
    subprocess.run(
        [sys.executable, "-m", "robopolicy.cli", "collect", "suite=mug_lift",
         "suite.tasks.classes=[1]", "suite.tasks.categories=[mug]", "suite.tasks.parts=[]",
         "suite.tasks.instances=[0]", "episodes=1", "workers=1", f"out={out}",
         "suite.env.obs_keys=[proprio,rgb.agentview,rgb.wrist,depth.agentview,"
         "part_mask.agentview]", "suite.env.image_size=[64,64]",
         f"hydra.run.dir={root / 'run'}"], check=True, capture_output=True)
    return out


def gaussian_rows(store, episodes: int, fit: dict, cache_dir: str | None) -> list[dict]:
    from robopolicy.augment.compose import build_stages, run_copy
    from robopolicy.augment.frames import image_keys

    rows = []
    for names in RENDER_STAGES:
        params = {n: {"fit": fit, "fit_cache_dir": cache_dir} for n in names}
        stages = build_stages(names, params)
        frames = n_frames = 0
        wall = 0.0
        for i in range(episodes):
            data, meta = store.get_episode(i), store.episode_meta(i)
            stages[0].aug.frames.get(meta["category"], meta["instance_id"])  # fit, set-up
            t0 = time.perf_counter()
            run_copy(stages, None, None, data, meta, 0, i, 0)
            wall += time.perf_counter() - t0
            n_frames += len(data["action"]) * len(image_keys(data))
            frames += 1
        rows.append({"what": "gaussians " + "+".join(names), "frames": n_frames,
                     "wall_s": wall, "fps": n_frames / wall})
    return rows


def simulator_rows(store, episodes: int) -> list[dict]:
    from robopolicy.augment.frames import image_keys
    from robopolicy.viewer.sources import from_store, store_reset_options
    from sims.partmanip.factory import make_env
    from sims.partmanip.obs_layout import RECORDED_KEYS

    keys = list(store.shape_meta["obs"])
    rows = []
    for label, obs_keys in (("simulator replay with images", keys),
                            ("simulator replay without images", list(RECORDED_KEYS))):
        env = make_env({**store.env_config["env"], "obs_keys": obs_keys},
                       store.env_config["tasks"])
        n_frames, wall = 0, 0.0
        try:
            for i in range(episodes):
                actions = from_store(store, i).actions
                env.reset(options=store_reset_options(store, i))  # builds the scene: not timed
                env.reset(options=store_reset_options(store, i))
                t0 = time.perf_counter()
                for a in actions:
                    env.step(a)
                wall += time.perf_counter() - t0
                n_frames += len(actions) * len(image_keys(keys))
        finally:
            env.close()
        rows.append({"what": label, "frames": n_frames, "wall_s": wall,
                     "fps": n_frames / wall})
    with_img, without = rows
    render_s = max(with_img["wall_s"] - without["wall_s"], 1e-9)
    rows.append({"what": "simulator rendering (difference)", "frames": with_img["frames"],
                 "wall_s": render_s, "fps": with_img["frames"] / render_s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--fit", choices=("small", "default"), default="small")
    ap.add_argument("--fit-cache-dir", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    from robopolicy.data.store import EpisodeStore

    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or collect_store(Path(tmp))
        store = EpisodeStore.open(path)
        episodes = min(args.episodes, store.n_episodes)
        fit = SMALL_FIT if args.fit == "small" else None
        rows = gaussian_rows(store, episodes, fit, args.fit_cache_dir)
        rows += simulator_rows(store, episodes)
    result = {"renderer": "gsplat (CUDA)" if torch.cuda.is_available() else "torch (CPU)",
              "torch_threads": torch.get_num_threads(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "machine": platform.processor() or platform.machine(),
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "fit": args.fit, "image_size": store.env_config["env"].get("image_size"),
              "episodes": episodes, "rows": rows}
    print(f"renderer: {result['renderer']}, {result['torch_threads']} torch threads, "
          f"images {result['image_size']}, fit {args.fit}")
    print(f"{'what':<40} {'frames':>7} {'wall s':>8} {'frames/s':>9}")
    for r in rows:
        print(f"{r['what']:<40} {r['frames']:>7} {r['wall_s']:>8.2f} {r['fps']:>9.1f}")
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
