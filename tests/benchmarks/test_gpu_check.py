"""The GPU check (benchmarks/gpu_check.py): its --quick run on the CPU end to end, and the
switches it measures (trainer.precision, policy.compile)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import instantiate_policy
from robopolicy.training.config import TrainerSettings


def test_an_unknown_precision_is_refused_in_one_line():
    assert TrainerSettings.from_dict({"precision": "fp32"}).precision == "fp32"
    with pytest.raises(RobopolicyError, match="trainer config: precision 'fp16' is not one of bf16, fp32"):
        TrainerSettings.from_dict({"precision": "fp16"})


@pytest.mark.slow
def test_a_compiled_policy_acts_as_the_eager_one_with_the_same_weights(tiny_policy_cfg):
    """policy.compile: true compiles the network's forward only: the parameter names stay (a
    checkpoint loads into either) and the actions agree up to float rounding."""
    meta = {"obs": {"proprio": {"shape": [5], "type": "low_dim"}}, "action": {"shape": [3]}}
    torch.manual_seed(0)
    eager = instantiate_policy(tiny_policy_cfg, meta)
    eager.fit_normalizer({"proprio": torch.randn(64, 5), "action": torch.randn(64, 3)})
    compiled = instantiate_policy({**tiny_policy_cfg, "compile": True}, meta)
    compiled.load_state_dict(eager.state_dict())
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    obs = {"proprio": torch.randn(2, 2, 5)}
    noise = torch.randn(2, 16, 3)
    eager.eval()
    compiled.eval()
    np.testing.assert_allclose(compiled.predict_action(obs, noise=noise).numpy(),
                               eager.predict_action(obs, noise=noise).numpy(), atol=1e-4)


@pytest.mark.slow
def test_quick_cpu_run_measures_every_section(tmp_path):
    """`gpu_check --device cpu --quick`: every section ran (the renderer's is skipped without
    CUDA), with plausible numbers, and the JSON and markdown are written."""
    from benchmarks.gpu_check import SECTIONS, run_check

    result = run_check("cpu", True, tmp_path / "out", tmp_path / "work")
    written = json.loads((tmp_path / "out" / "gpu_cpu_quick.json").read_text())
    assert written["sections"].keys() == set(SECTIONS)  # no "stores" error entry
    assert result["failed"] == [], {k: v.get("error") for k, v in result["sections"].items()}
    s = result["sections"]
    train = s["training"]["rows"]
    assert {r["policy"] for r in train} == {"state U-Net DP", "transformer DP", "pcd DP",
                                            "RGB+mask ResNet-18 DP 96px",
                                            "RGB+mask ResNet-18 DP 128px"}
    assert all(r["samples_per_s"] > 0 and 0 <= r["data_share"] < 1 and r["peak_rss_mb_process"] > 0
               and r["peak_gpu_mem_mb"] is None for r in train)
    speed = s["policy_speed"]["rows"]
    assert {r["mode"] for r in speed} == {"eager", "compile"}
    assert all(r["latency_ms_b1"] > 0 for r in speed if r["mode"] == "eager")
    assert all(r.get("latency_ms_b1", 0) > 0 or r["error"] for r in speed)  # compile may fail on CPU
    (ev,) = s["evaluation"]["rows"]  # the device is the CPU: one run
    assert ev["episodes"] == 1 and ev["episodes_per_hour"] > 0 and 0 < ev["policy_share"] < 1
    run = s["torchrun"]
    assert run["backend"] == "gloo" and all(run["checks"].values())
    assert s["gaussian_render"]["skipped"] == "no CUDA"
    md = (tmp_path / "out" / "gpu_cpu_quick.md").read_text()
    assert "| state U-Net DP | fp32 | 8 |" in md and "skipped: no CUDA" in md
