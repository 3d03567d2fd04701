"""The CUDA branches: bf16 autocast training, inference on the GPU, gsplat against the torch
rasterizer. Each runs where torch sees a GPU and is skipped with the reason elsewhere."""

from __future__ import annotations

import json

import pytest
import torch

from robopolicy.policies.io import instantiate_policy, load_policy
from robopolicy.training.trainer import train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch sees none)")


@cuda
def test_a_bf16_training_step_of_the_state_dp_on_cuda(expert_store, tiny_policy_cfg, tmp_path):
    trainer = {"steps": 3, "batch_size": 32, "warmup_steps": 0, "device": "cuda",
               "precision": "bf16", "tensorboard": False, "ckpt_every": 100}
    r = train(tiny_policy_cfg, trainer, expert_store, ["proprio", "state"], tmp_path)
    assert r.final_loss == r.final_loss and r.final_loss < 10  # finite
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 3
    policy = load_policy(r.policy_dir)
    assert all(torch.isfinite(p).all() for p in policy.parameters())


@cuda
def test_inference_on_cuda_matches_the_cpu(tiny_policy_cfg):
    meta = {"obs": {"proprio": {"shape": [5], "type": "low_dim"}}, "action": {"shape": [3]}}
    torch.manual_seed(0)
    policy = instantiate_policy(tiny_policy_cfg, meta)
    policy.fit_normalizer({"proprio": torch.randn(64, 5), "action": torch.randn(64, 3)})
    policy.eval()
    obs = {"proprio": torch.randn(4, 2, 5)}
    noise = torch.randn(4, 16, 3)
    on_cpu = policy.predict_action(obs, noise=noise)
    on_gpu = policy.to("cuda").predict_action({"proprio": obs["proprio"].cuda()}, noise=noise.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-3, rtol=1e-3)


@cuda
def test_gsplat_and_the_torch_rasterizer_agree(tmp_path):
    """The same random scene through gsplat (CUDA) and the CPU torch rasterizer: >= 40 dB."""
    from benchmarks.gpu.render import psnr
    from robopolicy.augment.camera import PinholeCamera
    from robopolicy.augment.gsplat_render import render_gsplat
    from robopolicy.augment.rasterize import render_torch
    from robopolicy.augment.scene import GaussianScene

    g = torch.Generator().manual_seed(0)
    n = 5000
    scene = GaussianScene(means=torch.randn(n, 3, generator=g) * 0.15,
                          quats_wxyz=torch.randn(n, 4, generator=g),
                          log_scales=torch.full((n, 3), -4.5) + 0.3 * torch.randn(n, 3, generator=g),
                          opacity_logits=torch.randn(n, generator=g),
                          sh_dc=torch.randn(n, 3, generator=g),
                          segment_ids=torch.zeros(n, dtype=torch.long), segments={0: "mug/body"})
    camera = PinholeCamera.look_at((1.0, 0.2, 0.5), (0.0, 0.0, 0.0), 45.0, 64, 64)
    with torch.no_grad():
        ref = render_gsplat(scene, camera).rgb.cpu()
        ours = render_torch(scene, camera).rgb
    assert ref.shape == ours.shape == (64, 64, 3)
    assert psnr(ours, ref) >= 40.0
