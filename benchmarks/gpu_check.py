"""The GPU path, checked and measured in one run: training, inference, evaluation, torchrun and
the Gaussian renderer, on one device.

    bash benchmarks/gpu_check.sh [--device auto|cuda|cpu] [--quick] [--out-dir DIR]

Needs nothing prepared: it collects two small demo stores of the quickstart's task (mug handle
lift, seed 0; state, RGB + part mask at 96 and 128 px, pcd) with `robopolicy collect`, then runs
the sections (`benchmarks/gpu/`), each on its own so one failing records its error and the rest
still run:

- training: the Trainer's samples/s, peak memory and the data's share of each step for the state
  U-Net DP, the transformer DP, the RGB+mask ResNet-18 DP at 96 and 128 px and the pcd DP,
  fp32 and bf16 autocast (CUDA only), batch 64 and 256;
- policy_speed: DDPM-100, DDIM-10, FM-10, FM-1 latency at batch 1 and 64, eager and
  `policy.compile: true`;
- evaluation: `robopolicy eval` (2 workers x 8 envs) with the policy on the device and on the CPU;
- torchrun: `torchrun --nproc_per_node 1` training (nccl on CUDA, gloo on CPU), stopped after
  its first checkpoint and resumed;
- gaussian_render: gsplat's build time and frames/s at 20k / 50k Gaussians and the CPU
  rasterizer's PSNR against it (CUDA only).

Writes gpu_<device>.json and gpu_<device>.md to `--out-dir` (benchmarks/results/gpu/) and exits
non-zero when a section failed. The full run is sized for < 8 minutes on one H100; `--quick`
(few steps, small batches, one episode) runs in a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.gpu.common import ROOT, Sizes, collect_store

SECTIONS = ("training", "policy_speed", "evaluation", "torchrun", "gaussian_render")


def machine(device: str) -> dict:
    import torch

    return {"device": device, "cpus": os.cpu_count(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
            "cpu": platform.processor() or platform.machine(), "platform": platform.platform()}


def run_check(device: str, quick: bool, out_dir: Path, work: Path) -> dict:
    """Build the stores, run every section, write JSON + markdown to out_dir; the result."""
    from benchmarks.gpu.inference import speed_section
    from benchmarks.gpu.render import render_section
    from benchmarks.gpu.report import markdown
    from benchmarks.gpu.runs import eval_section, torchrun_section
    from benchmarks.gpu.training import training_section
    from robopolicy.device import resolve_device

    device = resolve_device(device)
    sizes = Sizes.quick() if quick else Sizes()
    t0 = time.perf_counter()
    sections: dict[str, dict] = {}
    stores: dict[int, Path] = {}
    try:
        for px in (96, 128):
            stores[px] = collect_store(work / f"demos_{px}.zarr", px, sizes, work)
    except Exception as e:
        sections["stores"] = {"error": f"{type(e).__name__}: {e}"}
        print(f"stores: {sections['stores']['error']}", flush=True)
    store_s = time.perf_counter() - t0
    policy_dir = work / "train" / "state_dp" / "checkpoints" / "latest"
    runs = {"training": lambda: training_section(stores, device, sizes, work / "train"),
            "policy_speed": lambda: speed_section(device, sizes),
            "evaluation": lambda: eval_section(policy_dir, device, sizes, work),
            "torchrun": lambda: torchrun_section(stores[128], device, sizes, work),
            "gaussian_render": lambda: render_section(sizes)}
    for name in SECTIONS:
        t1 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            sections[name] = runs[name]()
        except Exception as e:  # recorded; the other sections still run
            traceback.print_exc()
            sections[name] = {"error": f"{type(e).__name__}: {e}"}
        sections[name]["section_s"] = round(time.perf_counter() - t1, 1)
    failed = [n for n, s in sections.items() if "error" in s or s.get("failed_cells")]
    result = {"machine": machine(device), "quick": quick, "sizes": sizes.__dict__,
              "stores": {str(px): str(p) for px, p in stores.items()},
              "store_build_s": round(store_s, 1), "sections": sections, "failed": failed,
              "wall_s": round(time.perf_counter() - t0, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"gpu_{device.split(':')[0]}{'_quick' if quick else ''}"
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    (out_dir / f"{stem}.md").write_text(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    ap.add_argument("--quick", action="store_true", help="few steps and episodes (CPU-sized)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "gpu")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where the stores and runs go (default: a temporary directory)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run_check(args.device, args.quick, args.out_dir, work)
    from benchmarks.gpu.report import markdown

    print(markdown(result))
    print(f"wrote {args.out_dir}; failed sections: {result['failed'] or 'none'}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
