"""The Gaussian renderer on CUDA: gsplat's extension build, its frames/s, and the CPU torch
rasterizer's agreement with it on the same scene (the scenes and timing are
`benchmarks/gaussian_render.py`'s)."""

from __future__ import annotations

import math
import os
import time

from benchmarks.gpu.common import Sizes


def build_gsplat() -> float:
    """Compile gsplat's CUDA extension for this GPU only (TORCH_CUDA_ARCH_LIST from its compute
    capability, every core compiling); returns the seconds it took (short when cached)."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))  # gsplat's own default is 10
    t0 = time.perf_counter()
    from gsplat.cuda._backend import _C

    if _C is None:
        raise RuntimeError("gsplat's CUDA extension did not build (see the log above)")
    return time.perf_counter() - t0


def frames_per_s(render_fn, scene, camera, frames: int) -> float:
    """Forward renders (RGB, depth, alpha, segments) per second over `frames` back-to-back
    frames after a warm-up, synchronized once at the end (as a training loop would run)."""
    import torch

    render_fn(scene, camera)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(frames):
        render_fn(scene, camera)
    torch.cuda.synchronize()
    return frames / (time.perf_counter() - t0)


def psnr(a, b) -> float:
    """PSNR (dB) of two images in [0, 1] (clamped there first)."""
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def render_section(sizes: Sizes, image_px: int = 128) -> dict:
    """gsplat frames/s (forward, and forward + backward) at each scene size, and the PSNR of
    the torch rasterizer's RGB against gsplat's; "skipped" without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA"}
    from benchmarks.gaussian_render import random_scene, time_renderer
    from robopolicy.augment.camera import PinholeCamera
    from robopolicy.augment.gsplat_render import render_gsplat
    from robopolicy.augment.rasterize import render_torch

    build_s = build_gsplat()
    camera = PinholeCamera.look_at((1.0, 0.2, 0.5), (0.0, 0.0, 0.0), 45.0, image_px, image_px)
    rows = []
    for n in sizes.gaussians:
        scene = random_scene(n)
        t = time_renderer(render_gsplat, scene, camera, sizes.render_repeats, torch.cuda.synchronize)
        with torch.no_grad():
            ref = render_gsplat(scene, camera).rgb.cpu()
            ours = render_torch(scene, camera).rgb
        fps = frames_per_s(render_gsplat, scene, camera, 10 * sizes.render_repeats)
        rows.append({"gaussians": n, **t, "frames_per_s": round(fps, 1),
                     "psnr_torch_vs_gsplat_db": round(psnr(ours, ref), 2)})
        print(f"render: {n} Gaussians: {rows[-1]['frames_per_s']} frames/s, "
              f"PSNR {rows[-1]['psnr_torch_vs_gsplat_db']} dB", flush=True)
    return {"gsplat_build_s": round(build_s, 1),
            "torch_cuda_arch_list": os.environ["TORCH_CUDA_ARCH_LIST"],
            "image_px": image_px, "rows": rows}
