"""Simulator throughput: env steps/s of PartManipEnv with both cameras rendering 128x128 RGB +
depth, with 1 and N worker processes, on each backend (MuJoCo, PyBullet), against robosuite's
Lift (Panda, same cameras, resolution and 20 Hz control) measured in the same run.

    python benchmarks/sim_throughput.py [--workers 2] [--steps 300] [--backends mujoco,pybullet]
                                        [--no-peer] [--out results.json]

robosuite runs from its own venv (`.venv-robosuite`, built by benchmarks/peers/setup_robosuite.sh;
robosuite 1.5.2 needs mujoco 3.3.7). It is measured twice: with its default render settings
(4x MSAA, reflections), and with them off, which are the settings robopolicy renders with.
Only stepping is timed (not process start-up, imports, env construction or warm-up); workers
start their timed section together behind a barrier. `--no-peer` leaves robosuite out (its venv
is built on demand otherwise). Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from sims.core.control import CONTROL_HZ

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-robosuite" / "bin" / "python"
OBS_KEYS = ["proprio", "state", "rgb.agentview", "depth.agentview", "rgb.wrist", "depth.wrist"]


def _ours_worker(backend: str, seed: int, steps: int, warmup: int, barrier, queue) -> None:
    import numpy as np

    from sims.partmanip.factory import make_env

    env = make_env({"obs_keys": OBS_KEYS, "image_size": (128, 128), "backend": backend})
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    home = env.commanded_target

    def action():  # small random moves around the start pose, like robosuite's random actions
        a = home.copy()
        a[:3] += rng.uniform(-0.05, 0.05, 3)
        a[9] = rng.uniform()
        return a

    for _ in range(warmup):
        env.step(action())
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        *_, terminated, truncated, _ = env.step(action())
        if terminated or truncated:  # not expected with random actions; counted out of time
            t_reset = time.perf_counter()
            env.reset(seed=seed + 1000)
            t0 += time.perf_counter() - t_reset
    queue.put((t0, time.perf_counter()))
    env.close()


def measure_ours(backend: str, workers: int, steps: int, warmup: int = 20) -> dict:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_ours_worker, args=(backend, i, steps, warmup, barrier, queue))
             for i in range(workers)]
    for p in procs:
        p.start()
    spans = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    render = {"mujoco": "shadows, reflections and MSAA off",
              "pybullet": "TinyRenderer (CPU; EGL where a GPU is)"}.get(backend, "")
    return {"system": f"robopolicy PartManipEnv ({backend})", "backend": backend,
            "workers": workers, "steps_per_worker": steps, "env_steps_per_s": workers * steps / wall,
            "per_worker_steps_per_s": [steps / (e - s) for s, e in spans], "render": render}


def measure_robosuite(workers: int, steps: int, no_shadows: bool) -> dict:
    if not PEER_PYTHON.exists():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "peers" / "setup_robosuite.sh")], check=True)
    cmd = [str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "robosuite_lift.py"),
           "--workers", str(workers), "--steps", str(steps)] + (["--no-shadows"] if no_shadows else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["system"] = "robosuite Lift"
    r["render"] = "MSAA and reflections off" if no_shadows else "robosuite defaults (4x MSAA, reflections)"
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="the N of the N-worker runs")
    ap.add_argument("--steps", type=int, default=300, help="timed env steps per worker (ours)")
    ap.add_argument("--peer-steps", type=int, default=100, help="timed env steps per worker (robosuite)")
    ap.add_argument("--backends", default="mujoco,pybullet", help="our backends, comma-separated")
    ap.add_argument("--no-peer", action="store_true", help="leave robosuite out")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sim_throughput.json")
    args = ap.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    counts = sorted({1, args.workers})

    rows = []
    for backend in backends:
        for n in counts:
            rows.append(measure_ours(backend, n, args.steps))
            print(f"ours ({backend}), {n} worker(s): {rows[-1]['env_steps_per_s']:.1f} steps/s",
                  file=sys.stderr)
    if not args.no_peer:
        for no_shadows in (False, True):
            for n in counts:
                rows.append(measure_robosuite(n, args.peer_steps, no_shadows))
                print(f"robosuite, {n} worker(s), no_shadows={no_shadows}: "
                      f"{rows[-1]['env_steps_per_s']:.1f} steps/s", file=sys.stderr)

    def rate(system, n, render_prefix=""):
        return next(r["env_steps_per_s"] for r in rows if r["system"] == system
                    and r["workers"] == n and r["render"].startswith(render_prefix))

    summary, ours = {}, lambda b: f"robopolicy PartManipEnv ({b})"
    for b in backends:
        summary[f"scaling_efficiency_{b}"] = rate(ours(b), args.workers) / (args.workers * rate(ours(b), 1))
    if "mujoco" in backends and "pybullet" in backends:
        for n in counts:
            summary[f"ratio_mujoco_vs_pybullet_{n}w"] = rate(ours("mujoco"), n) / rate(ours("pybullet"), n)
    if not args.no_peer and "mujoco" in backends:
        ours1, oursn = rate(ours("mujoco"), 1), rate(ours("mujoco"), args.workers)
        summary.update({
            "ratio_vs_robosuite_default_1w": ours1 / rate("robosuite Lift", 1, "robosuite defaults"),
            "ratio_vs_robosuite_same_render_1w": ours1 / rate("robosuite Lift", 1, "MSAA"),
            "ratio_vs_robosuite_same_render_nw": oursn / rate("robosuite Lift", args.workers, "MSAA"),
        })
    result = {"benchmark": "sim_throughput", "cameras": ["agentview", "wrist"],
              "resolution": [128, 128], "depth": True, "control_hz": CONTROL_HZ,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "mujoco_gl": os.environ.get("MUJOCO_GL", "egl (auto)")},
              "results": rows, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    print(f"{'system':<36}{'render':<44}{'workers':>8}{'steps/s':>10}")
    for r in rows:
        print(f"{r['system']:<36}{r['render']:<44}{r['workers']:>8}{r['env_steps_per_s']:>10.1f}")
    print()
    for key, value in summary.items():
        print(f"{key}: {value:.0%}" if key.startswith("scaling") else f"{key}: {value:.2f}x")
    print(json.dumps(result))
    print(f"written: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
