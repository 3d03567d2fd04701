"""Policy inference latency on the device, eager against `policy.compile: true`.

The variants, inputs and timing are `benchmarks/policy_speed.py`'s (the default U-Net on the
suite's state observations, medians of repeated `predict_action` calls after a warm-up); the
first call of a compiled policy (the compilation) is reported apart as `first_call_s`.
"""

from __future__ import annotations

import time

from benchmarks.gpu.common import Sizes, sync
from benchmarks.policy_speed import VARIANTS, build, latency_ms, obs_batch


def _first_call_s(policy, batch: int, device: str) -> float:
    policy.eval()
    obs = obs_batch(policy, batch, device)
    sync(device)
    t0 = time.perf_counter()
    policy.predict_action(obs)
    sync(device)
    return time.perf_counter() - t0


def speed_section(device: str, sizes: Sizes) -> dict:
    """Latency (ms) of DDPM-100, DDIM-10, FM-10 and FM-1 at each batch, eager and compiled;
    a compile that fails (e.g. no C++ toolchain for the CPU backend) records its error."""
    rows, failed = [], 0
    variants = {label: (config, overrides) for label, config, overrides in VARIANTS}
    for label in sizes.speed_variants:
        config, overrides = variants[label]
        for mode in ("eager", "compile"):
            row = {"variant": label, "mode": mode}
            try:
                policy = build(config, {**overrides, "compile": mode == "compile"}, device)
                for b in sizes.speed_batches:
                    row[f"first_call_s_b{b}"] = round(_first_call_s(policy, b, device), 2)
                    row[f"latency_ms_b{b}"] = round(latency_ms(policy, b, sizes.speed_repeats,
                                                               device), 2)
            except Exception as e:  # recorded; the other variants still run
                row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
                failed += mode == "eager"  # a failing compile is a finding, not a failed check
            rows.append(row)
            print(f"policy speed: {label} {mode}: "
                  f"{ {k: v for k, v in row.items() if k.startswith('latency')} or row.get('error')}",
                  flush=True)
    return {"rows": rows, "batches": list(sizes.speed_batches), "repeats": sizes.speed_repeats,
            "failed_cells": failed}
