# Peer measurement for the simulator-throughput benchmark: env steps/s of robosuite 1.5.2's
# `Lift` (Panda, default controller, 20 Hz control) with two 128x128 RGB + depth cameras
# (`agentview`, `robot0_eye_in_hand`), rendered headless with EGL or OSMesa.
#
# Run it with the peer venv (bash benchmarks/peers/setup_robosuite.sh builds it):
#   .venv-robosuite/bin/python benchmarks/peers/robosuite_lift.py [--workers K] [--no-shadows]
# It prints exactly one JSON object on stdout; everything else (robosuite's logging, MuJoCo
# warnings, progress) goes to stderr. Only env.step() is timed: process start-up, imports, env
# construction, warm-up and any reset (after `horizon` steps, 1000 by default) are not.
# `--no-shadows` switches shadows, reflections and offscreen MSAA off, to compare against
# simulators at equal render settings (Lift's one light has castshadow="false" already, so in
# practice this turns off the reflective floor/table and 4x MSAA).
#
# Note: robosuite's default `hard_reset=True` rebuilds the MjSim and its render context on
# every reset, so the no-shadow settings are applied via an XML processor (offsamples=0,
# baked into each rebuilt model) and re-applied to the scene flags after every reset.
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

CAMERAS = ["agentview", "robot0_eye_in_hand"]
RESOLUTION = (128, 128)  # (height, width)
CONTROL_FREQ = 20


def log(msg: str) -> None:
    print(f"[robosuite_lift pid={os.getpid()}] {msg}", file=sys.stderr, flush=True)


def set_gl_backend(gl: str) -> None:
    # Must run before robosuite, mujoco or OpenGL is imported. robosuite's binding_utils forces
    # MUJOCO_GL=egl at import unless it is "osmesa" or "glx", so both backends are honoured.
    os.environ["MUJOCO_GL"] = gl
    os.environ["PYOPENGL_PLATFORM"] = gl


def _xml_no_msaa(xml: str) -> str:
    """robosuite XML processor: <visual><quality offsamples="0"/> (offscreen MSAA off)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    visual = root.find("visual")
    if visual is None:
        visual = ET.SubElement(root, "visual")
    quality = visual.find("quality")
    if quality is None:
        quality = ET.SubElement(visual, "quality")
    quality.set("offsamples", "0")
    return ET.tostring(root, encoding="utf8").decode("utf8")


def _apply_scene_flags(env, shadows: bool) -> dict:
    """Set shadow/reflection flags on robosuite's offscreen render context (a fresh one after
    every hard reset); return the render settings actually in effect, for the log."""
    import mujoco

    ctx = env.sim._render_context_offscreen
    if not shadows:
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    m = env.sim.model._model
    return {
        "offsamples(model)": int(m.vis.quality.offsamples),
        "offSamples(context)": int(ctx.con.offSamples),
        "shadow_flag": int(ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW]),
        "reflection_flag": int(ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION]),
        "shadow_casting_lights": int(m.light_castshadow.sum()),
        "reflective_materials": int((m.mat_reflectance > 0).sum()),
    }


def make_env(shadows: bool, horizon: int = 1000):
    import robosuite

    env = robosuite.make(
        "Lift",
        robots="Panda",
        has_renderer=False,
        has_offscreen_renderer=True,
        use_camera_obs=True,
        camera_names=CAMERAS,
        camera_heights=RESOLUTION[0],
        camera_widths=RESOLUTION[1],
        camera_depths=True,
        control_freq=CONTROL_FREQ,
        horizon=horizon,  # robosuite's default is 1000
    )
    if not shadows:
        # The constructor already built sim + render context with MSAA on; register the
        # processor, then a (hard) reset rebuilds both from the processed XML.
        env.set_xml_processor(_xml_no_msaa)
    env.reset()
    settings = _apply_scene_flags(env, shadows)
    if not shadows:
        assert settings["offSamples(context)"] == 0, settings
    return env, settings


def check_obs(obs) -> None:
    h, w = RESOLUTION
    for cam in CAMERAS:
        img, depth = obs[f"{cam}_image"], obs[f"{cam}_depth"]
        assert img.shape == (h, w, 3) and depth.shape == (h, w, 1), (cam, img.shape, depth.shape)
        assert img.std() > 0 and depth.std() > 0, f"{cam}: blank render"


def worker(idx, args, barrier, results) -> None:
    """One independent env: build, warm up, wait at the barrier, step args.steps times."""
    set_gl_backend(args.gl)  # a spawned child starts fresh: set before importing robosuite
    try:
        import numpy as np

        t0 = time.perf_counter()
        env, settings = make_env(shadows=not args.no_shadows, horizon=args.horizon)
        log(f"worker {idx}: env built in {time.perf_counter() - t0:.1f}s; render: {settings}")
        assert env.control_freq == CONTROL_FREQ and abs(env.control_timestep - 0.05) < 1e-9
        rng = np.random.default_rng(args.seed + idx)
        low, high = env.action_spec

        def action():
            return np.clip(args.action_scale * rng.uniform(-1.0, 1.0, env.action_dim), low, high)

        def step(n: int):
            """n env steps, resetting (untimed) when done -> (stepping_s, resets, reset_s, obs)."""
            stepping = reset_s = 0.0
            resets = 0
            for _ in range(n):
                t = time.perf_counter()
                obs, _, done, _ = env.step(action())
                stepping += time.perf_counter() - t
                if done:
                    t = time.perf_counter()
                    env.reset()
                    after = _apply_scene_flags(env, shadows=not args.no_shadows)
                    assert after == settings, (after, settings)  # same render settings
                    reset_s += time.perf_counter() - t
                    resets += 1
            return stepping, resets, reset_s, obs

        t0 = time.perf_counter()
        *_, obs = step(args.warmup)
        check_obs(obs)
        log(f"worker {idx}: {args.warmup} warm-up steps in {time.perf_counter() - t0:.1f}s")
        if barrier is not None:
            barrier.wait(timeout=600)
        # time.monotonic is CLOCK_MONOTONIC, comparable across processes on Linux.
        start, cpu0 = time.monotonic(), time.process_time()
        stepping, resets, reset_s, obs = step(args.steps)
        end, cpu = time.monotonic(), time.process_time() - cpu0
        check_obs(obs)
        env.close()
        results.put(
            {
                "idx": idx,
                "start": start,
                "end": end,
                "stepping_s": stepping,
                "resets": resets,
                "reset_s": reset_s,
                "cpu_util": cpu / (end - start),
                "render": settings,
            }
        )
    except BaseException as e:  # report, and release the others from the barrier
        if barrier is not None:
            barrier.abort()
        results.put({"idx": idx, "error": f"{type(e).__name__}: {e}"})
        raise


class _Queue(list):
    put = list.append


def main() -> int:
    p = argparse.ArgumentParser(description="robosuite Lift env-steps/s (peer benchmark)")
    p.add_argument("--gl", choices=["egl", "osmesa"], default="egl")
    p.add_argument("--steps", type=int, default=200, help="timed env steps per worker")
    p.add_argument("--warmup", type=int, default=20, help="untimed env steps per worker first")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--no-shadows", action="store_true", help="shadows, reflections and offscreen MSAA off"
    )
    p.add_argument(
        "--horizon",
        type=int,
        default=1000,
        help="episode length (robosuite default 1000); resets are not timed",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--action-scale",
        type=float,
        default=0.1,
        help="actions ~ U(-s, s) in the controller's [-1, 1] range",
    )
    args = p.parse_args()
    if args.steps < 1 or args.workers < 1 or args.warmup < 0:
        p.error("--steps and --workers must be >= 1, --warmup >= 0")
    set_gl_backend(args.gl)

    # Keep stdout for the one JSON line: fd 1 points at stderr from here on (for this process
    # and the spawned workers), so stray prints from robosuite or MuJoCo cannot corrupt it.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    if args.workers == 1:
        results = _Queue()
        worker(0, args, None, results)
    else:
        ctx = mp.get_context("spawn")
        barrier, queue = ctx.Barrier(args.workers), ctx.Queue()
        procs = [
            ctx.Process(target=worker, args=(i, args, barrier, queue), daemon=True)
            for i in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=1800) for _ in procs]
        for proc in procs:
            proc.join()
    results.sort(key=lambda r: r["idx"])
    errors = [r for r in results if "error" in r]
    if errors:
        log(f"failed: {errors}")
        return 1

    total_steps = args.steps * args.workers
    # Wall time of the parallel section (first start to last end), less resets (not stepping;
    # the longest worker's reset time is subtracted, 0 unless steps+warmup exceed horizon).
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    wall -= max(r["reset_s"] for r in results)
    per_worker = [round(args.steps / r["stepping_s"], 3) for r in results]
    resets = sum(r["resets"] for r in results)
    if resets:
        log(f"{resets} reset(s) inside the timed section (excluded from the timings)")
    import mujoco
    import robosuite

    out = {
        "peer": "robosuite",
        "task": "Lift",
        "robosuite_version": robosuite.__version__,
        "mujoco_version": mujoco.__version__,
        "workers": args.workers,
        "steps_per_worker": args.steps,
        "shadows": not args.no_shadows,
        "env_steps_per_s": round(total_steps / wall, 3),
        "per_worker_steps_per_s": per_worker,
        "cameras": CAMERAS,
        "resolution": list(RESOLUTION),
        "depth": True,
        # extra context, beyond the fields above
        "robot": "Panda",
        "control_freq": CONTROL_FREQ,
        "gl": args.gl,
        "warmup_steps": args.warmup,
        "horizon": args.horizon,
        "wall_s": round(wall, 3),
        "resets_in_timed_section": resets,
        # process CPU time / wall time while stepping (all threads, llvmpipe's included): well
        # under 1 for a worker means it was starved of CPU (other load), above 1 multi-threaded
        "per_worker_cpu_util": [round(r["cpu_util"], 2) for r in results],
    }
    json_out.write(json.dumps(out) + "\n")
    json_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
