"""Policy speed: inference latency and training throughput of the chunk policies, in one run.

    python benchmarks/policy_speed.py [--device auto] [--repeats 20] [--out results.json]

Variants: diffusion DDPM-100 and DDIM-10, flow matching 1 and 10 Euler steps, all with the
default CPU-sized U-Net of `configs/policy/*.yaml` on the suite's state observations
(proprio 17 + state 17, To 2, horizon 16, Ta 8, action 10). Latency is `predict_action` wall
time at batch 1 and 64 (median of `--repeats` calls after a warm-up); training throughput is
samples/s of forward + backward + AdamW steps at batch 256. Random inputs: speed does not
depend on the data. Prints a table and the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPE_META = {"obs": {"proprio": {"shape": [17], "type": "low_dim"},
                      "state": {"shape": [17], "type": "low_dim"}},
              "action": {"shape": [10]}}
VARIANTS = [  # (label, policy config file, overrides)
    ("DP DDPM-100", "diffusion_unet", {"inference_scheduler": "ddpm", "num_inference_steps": 100}),
    ("DP DDIM-10", "diffusion_unet", {"inference_scheduler": "ddim", "num_inference_steps": 10}),
    ("FM-1", "flow_matching", {"num_inference_steps": 1}),
    ("FM-10", "flow_matching", {"num_inference_steps": 10}),
]


def build(config: str, overrides: dict, device: str):
    import torch
    from omegaconf import OmegaConf

    from robopolicy.policies.io import instantiate_policy

    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "policy" / f"{config}.yaml"))
    policy = instantiate_policy({**cfg, **overrides}, SHAPE_META)
    torch.manual_seed(0)
    policy.fit_normalizer({"proprio": torch.randn(512, 17), "state": torch.randn(512, 17),
                           "action": torch.randn(512, 10)})
    return policy.to(device)


def obs_batch(policy, batch: int, device: str) -> dict:
    import torch

    return {k: torch.randn(batch, policy.n_obs_steps, 17, device=device) for k in ("proprio", "state")}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def latency_ms(policy, batch: int, repeats: int, device: str) -> float:
    obs = obs_batch(policy, batch, device)
    policy.eval()
    policy.predict_action(obs)  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        policy.predict_action(obs)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def train_samples_per_s(policy, batch: int, steps: int, device: str) -> float:
    import torch

    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    data = {"obs": obs_batch(policy, batch, device),
            "action": torch.randn(batch, policy.horizon, 10, device=device)}

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            loss = policy.compute_loss(data)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    ap.add_argument("--repeats", type=int, default=20, help="timed predict_action calls per row")
    ap.add_argument("--train-steps", type=int, default=10, help="timed training steps per row")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/policy_speed.json")
    args = ap.parse_args()
    import torch

    from robopolicy.device import resolve_device

    device = resolve_device(args.device)
    rows = []
    for label, config, overrides in VARIANTS:
        policy = build(config, overrides, device)
        rows.append({"variant": label,
                     "params_M": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
                     "latency_ms_b1": round(latency_ms(policy, 1, args.repeats, device), 2),
                     "latency_ms_b64": round(latency_ms(policy, 64, args.repeats, device), 2),
                     "train_samples_per_s_b256": round(train_samples_per_s(policy, 256, args.train_steps,
                                                                           device), 1)})
        print(f"measured {label}", flush=True)
    result = {"machine": {"device": device, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
                          "platform": platform.platform()},
              "rows": rows}
    print(f"{'variant':<12} {'params M':>8} {'ms b=1':>8} {'ms b=64':>8} {'train samples/s':>16}")
    for r in rows:
        print(f"{r['variant']:<12} {r['params_M']:>8} {r['latency_ms_b1']:>8} {r['latency_ms_b64']:>8} "
              f"{r['train_samples_per_s_b256']:>16}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
