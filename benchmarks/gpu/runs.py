"""The sections that run the CLI in child processes: `robopolicy eval` with the policy on the
device against the same run on the CPU, and `torchrun --nproc_per_node 1` training with a
checkpoint, an interruption and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.gpu.common import ROOT, STATE_KEYS, Sizes, cli


def eval_section(policy_dir: Path, device: str, sizes: Sizes, work: Path) -> dict:
    """`robopolicy eval` of the policy the training section saved (mug lift, held-out seeds,
    batched policy calls across all envs) with its policy on `device` and on the CPU:
    episodes/h and the policy's share of the wall time, from each run's report."""
    if not (policy_dir / "meta.json").is_file():
        raise RuntimeError(f"no trained policy at {policy_dir} (the training section's first "
                           "cell failed)")
    rows = []
    for where in dict.fromkeys([device, "cpu"]):  # once when the device is the CPU
        out = work / f"eval_{where.replace(':', '')}"
        wall = cli(["eval", f"policy.path={policy_dir}", "suite=mug_lift",
                    f"episodes={sizes.eval_episodes}", "seed=100000", f"device={where}",
                    f"executor.workers={sizes.eval_workers}",
                    f"executor.envs_per_worker={sizes.eval_envs}", "batch_invariant=false",
                    "videos=0", f"out={out}"], work / f"eval_{where.replace(':', '')}.log")
        report = json.loads((out / "report.json").read_text())
        timing = report["timing"]
        rows.append({"policy_device": where, "episodes": report["overall"]["episodes"],
                     "workers": report["workers"], "envs_per_worker": report["envs_per_worker"],
                     "eval_wall_s": timing["wall_s"], "process_wall_s": round(wall, 1),
                     "episodes_per_hour": timing["episodes_per_hour"],
                     "env_steps_per_s": timing["env_steps_per_s"],
                     "policy_share": timing["share"]["policy"], "share": timing["share"]})
        print(f"eval: policy on {where}: {timing['episodes_per_hour']} episodes/h", flush=True)
    result = {"rows": rows}
    if len(rows) == 2:
        result["device_over_cpu"] = round(rows[0]["episodes_per_hour"]
                                          / max(rows[1]["episodes_per_hour"], 1e-9), 2)
    return result


def _train_args(store: Path, device: str, sizes: Sizes, run: Path, batch: int) -> list[str]:
    return ["train", f"dataset.path={store}", f"dataset.obs_keys=[{','.join(STATE_KEYS)}]",
            "dataset.val_ratio=0", f"trainer.steps={sizes.torchrun_steps}",
            f"trainer.batch_size={batch}", f"trainer.ckpt_every={sizes.torchrun_ckpt_every}",
            "trainer.log_every=1", f"trainer.device={device}", "trainer.tensorboard=false",
            "trainer.warmup_steps=0", f"hydra.run.dir={run}"]


def torchrun_section(store: Path, device: str, sizes: Sizes, work: Path) -> dict:
    """`torchrun --nproc_per_node 1 robopolicy train` (nccl on CUDA, gloo on CPU), stopped
    (SIGTERM) once its first training state is written, then resumed to the end: the resumed
    run must continue after the checkpoint's step and log every step once."""
    run = work / "torchrun"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                "--master_port", str(29500 + os.getpid() % 1000)]
    batch = 64 if device.startswith("cuda") else 16
    args = _train_args(store, device, sizes, run, batch)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    state = run / "checkpoints" / "train_state.pt"
    t0 = time.perf_counter()
    with open(work / "torchrun_first.log", "w") as log:
        proc = subprocess.Popen([*launcher, "-m", "robopolicy.cli", *args], stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)
        while proc.poll() is None and not state.exists() and time.perf_counter() - t0 < 300:
            time.sleep(0.02)
        stopped = proc.poll() is None
        if stopped:
            os.killpg(proc.pid, signal.SIGTERM)  # the group this call started: torchrun + its worker
        proc.wait(timeout=60)
    first_s = time.perf_counter() - t0
    if not state.exists():
        raise RuntimeError(f"torchrun wrote no training state: {(work / 'torchrun_first.log')}")
    import torch

    saved_step = int(torch.load(state, map_location="cpu", weights_only=True)["step"])
    resume_s = cli([*args, f"resume={run}"], work / "torchrun_resume.log", launcher=launcher,
                   env={"OMP_NUM_THREADS": "1"})
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    meta = json.loads((run / "checkpoints" / "latest" / "meta.json").read_text())
    text = (run / "train.log").read_text()
    backend = "nccl" if device.startswith("cuda") else "gloo"
    checks = {"process_group": f"process group: {backend}" in text,
              "resumed_from_checkpoint": f"resuming {run} from step {saved_step}" in text,
              "every_step_logged_once": logged == list(range(1, sizes.torchrun_steps + 1)),
              "final_step_saved": meta["step"] == sizes.torchrun_steps}
    result = {"backend": backend, "steps": sizes.torchrun_steps, "batch": batch,
              "stopped_after_checkpoint": stopped, "checkpoint_step": saved_step,
              "first_run_s": round(first_s, 1), "resume_run_s": round(resume_s, 1),
              "checks": checks}
    if not all(checks.values()):
        failed = [k for k, ok in checks.items() if not ok]
        raise RuntimeError(f"torchrun check failed: {', '.join(failed)} ({json.dumps(result)})")
    return result
