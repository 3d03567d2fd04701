"""The GPU check's markdown tables, one per section, from its JSON result."""

from __future__ import annotations


def _table(header: list[str], rows: list[list]) -> list[str]:
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows], ""]


def _failed(section: dict) -> list[str]:
    return [f"failed: {section['error']}", ""] if "error" in section else []


def markdown(result: dict) -> str:
    """Every section's table (or its error, or why it was skipped)."""
    m = result["machine"]
    lines = [f"# GPU check: {m['device']} ({m.get('gpu') or m['cpu']})", "",
             f"{'quick' if result['quick'] else 'full'} run, {result['wall_s']} s in all; "
             f"torch {m['torch']}, {m['cpus']} CPUs", ""]
    s = result["sections"]
    lines += ["## Training (Trainer steps)", "", *_failed(s["training"])]
    if "rows" in s["training"]:
        t = s["training"]
        lines += [f"{t['timed_steps']} timed steps after {t['warmup_steps']} warm-up steps per cell"
                  + (f"; {t['note']}" if t.get("note") else ""), ""]
        lines += _table(["policy", "precision", "batch", "samples/s", "step ms", "data share",
                         "peak GPU MiB", "peak RSS MiB (process)"],
                        [[r["policy"], r["precision"], r["batch"], r.get("samples_per_s"),
                          r.get("step_ms"), r.get("data_share"), r.get("peak_gpu_mem_mb"),
                          r.get("peak_rss_mb_process") if "error" not in r else r["error"][:80]]
                         for r in t["rows"]])
    lines += ["## Policy inference (predict_action, median ms)", "", *_failed(s["policy_speed"])]
    if "rows" in s["policy_speed"]:
        bs = s["policy_speed"]["batches"]
        lines += _table(["variant", "mode", *[f"ms b={b}" for b in bs],
                         *[f"first call s b={b}" for b in bs]],
                        [[r["variant"], r["mode"],
                          *([r.get(f"latency_ms_b{b}") for b in bs] if "error" not in r
                            else [r["error"][:80], *[None] * (len(bs) - 1)]),
                          *[r.get(f"first_call_s_b{b}") for b in bs]]
                         for r in s["policy_speed"]["rows"]])
    lines += ["## Evaluation (robopolicy eval, batched policy calls)", "", *_failed(s["evaluation"])]
    if "rows" in s["evaluation"]:
        e = s["evaluation"]
        lines += _table(["policy on", "episodes", "workers x envs", "wall s", "episodes/h",
                         "policy share"],
                        [[r["policy_device"], r["episodes"],
                          f"{r['workers']} x {r['envs_per_worker']}", r["eval_wall_s"],
                          r["episodes_per_hour"], r["policy_share"]] for r in e["rows"]])
        if "device_over_cpu" in e:
            lines += [f"device / CPU episodes/h: {e['device_over_cpu']}", ""]
    lines += ["## torchrun --nproc_per_node 1", "", *_failed(s["torchrun"])]
    if "checks" in s["torchrun"]:
        t = s["torchrun"]
        lines += [f"{t['backend']}: {t['steps']} steps of batch {t['batch']}, stopped after the "
                  f"checkpoint at step {t['checkpoint_step']}, resumed to the end "
                  f"({t['first_run_s']} s + {t['resume_run_s']} s); checks: "
                  + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in t["checks"].items()), ""]
    lines += ["## Gaussian renderer", "", *_failed(s["gaussian_render"])]
    g = s["gaussian_render"]
    if "skipped" in g:
        lines += [f"skipped: {g['skipped']}", ""]
    elif "rows" in g:
        lines += [f"gsplat build {g['gsplat_build_s']} s (TORCH_CUDA_ARCH_LIST="
                  f"{g['torch_cuda_arch_list']}), {g['image_px']} px", ""]
        lines += _table(["Gaussians", "gsplat frames/s", "fwd ms", "fwd+bwd ms",
                         "torch vs gsplat PSNR dB"],
                        [[r["gaussians"], r["frames_per_s"], r["forward_ms"],
                          r["forward_backward_ms"], r["psnr_torch_vs_gsplat_db"]] for r in g["rows"]])
    return "\n".join(lines)
