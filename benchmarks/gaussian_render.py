"""Gaussian renderer speed: ms per frame, forward and forward + backward, at 128x128.

    python benchmarks/gaussian_render.py [--sizes 20000 50000] [--repeats 5] [--out r.json]

The scene is random, in front of the camera: centres normal around the look-at point (0.15 m
spread, the camera 1.15 m away, 45 deg fovy), random rotations, standard deviations about
1.1 cm (about 1.7 px), opacities sigmoid(N(0, 1)), three segments. Forward renders RGB, depth,
alpha and segment ids; forward + backward renders without segments and backpropagates an L2
loss to means, rotations, scales, opacities and colours. The torch rasterizer always runs (on
the CPU, `--threads` torch threads); gsplat too where torch sees a GPU. Medians of
`--repeats` frames after one warm-up. Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def random_scene(n: int, seed: int = 0):
    import torch

    from robopolicy.augment.scene import GaussianScene

    g = torch.Generator().manual_seed(seed)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g) * 0.15,
        quats_wxyz=torch.randn(n, 4, generator=g),
        log_scales=torch.full((n, 3), -4.5) + 0.3 * torch.randn(n, 3, generator=g),
        opacity_logits=torch.randn(n, generator=g),
        sh_dc=torch.randn(n, 3, generator=g),
        segment_ids=torch.randint(0, 3, (n,), generator=g),
        segments={0: "robot/link1", 1: "mug/body", 2: "table"})


def time_renderer(render_fn, scene, camera, repeats: int, sync=lambda: None) -> dict:
    import torch

    def forward():
        render_fn(scene, camera, segments=True)

    params = [scene.means, scene.quats_wxyz, scene.log_scales, scene.opacity_logits, scene.sh_dc]
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    target = torch.rand(camera.height, camera.width, 3)

    def forward_backward():
        from robopolicy.augment.scene import GaussianScene

        s = GaussianScene(*leaves, scene.segment_ids, scene.segments)
        out = render_fn(s, camera, segments=False)
        ((out.rgb - target.to(out.rgb.device)) ** 2).mean().backward()

    result = {}
    for name, fn in (("forward_ms", forward), ("forward_backward_ms", forward_backward)):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - start) * 1e3)
        result[name] = round(statistics.median(times), 1)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000])
    parser.add_argument("--size", type=int, default=128, help="image width and height, px")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 on a machine others load")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from robopolicy.augment.camera import PinholeCamera
    from robopolicy.augment.rasterize import project_gaussians, render_torch

    camera = PinholeCamera.look_at((1.0, 0.2, 0.5), (0.0, 0.0, 0.0), 45.0, args.size, args.size)
    renderers = [("torch-cpu", render_torch, lambda: None)]
    if torch.cuda.is_available():
        from robopolicy.augment.gsplat_render import render_gsplat

        renderers.append(("gsplat-cuda", render_gsplat, torch.cuda.synchronize))
    rows = []
    for n in args.sizes:
        scene = random_scene(n)
        visible = len(project_gaussians(scene, camera, _params()).index)
        for label, fn, sync in renderers:
            row = {"renderer": label, "gaussians": n, "visible": visible,
                   **time_renderer(fn, scene, camera, args.repeats, sync)}
            rows.append(row)
    report = {"image_px": [args.size, args.size], "torch_threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "rows": rows}
    print(f"{'renderer':12s} {'gaussians':>9s} {'visible':>8s} {'fwd ms':>8s} {'fwd+bwd ms':>11s}")
    for r in rows:
        print(f"{r['renderer']:12s} {r['gaussians']:9d} {r['visible']:8d} {r['forward_ms']:8.1f} "
              f"{r['forward_backward_ms']:11.1f}")
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return report


def _params():
    from robopolicy.augment.camera import RasterParams

    return RasterParams()


if __name__ == "__main__":
    main()
