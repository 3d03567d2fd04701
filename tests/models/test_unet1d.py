"""ConditionalUnet1D: output shapes, timestep forms, and that the condition reaches the output."""

import pytest
import torch

from robopolicy.models.unet1d import ConditionalUnet1D


def small_net(**kwargs) -> ConditionalUnet1D:
    torch.manual_seed(0)
    return ConditionalUnet1D(
        input_dim=10, global_cond_dim=12, diffusion_step_embed_dim=32, **kwargs
    )


def test_shapes_three_levels_horizon_16():
    net = small_net(down_dims=(16, 32, 64))
    x = torch.randn(4, 16, 10)
    out = net(x, torch.randint(0, 100, (4,)), torch.randn(4, 12))
    assert out.shape == (4, 16, 10)
    assert torch.isfinite(out).all()


def test_default_dims_and_scalar_timestep():
    net = small_net()  # down_dims (64, 128, 256)
    x, cond = torch.randn(2, 16, 10), torch.randn(2, 12)
    a = net(x, 7, cond)
    b = net(x, torch.tensor(7), cond)
    c = net(x, torch.tensor([7, 7]), cond)
    assert a.shape == (2, 16, 10)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_condition_and_timestep_change_output():
    net = small_net(down_dims=(16, 32, 64)).eval()
    x = torch.randn(2, 16, 10)
    t = torch.tensor([10, 10])
    cond = torch.randn(2, 12)
    base = net(x, t, cond)
    assert (net(x, t, cond + 1.0) - base).abs().max() > 1e-3
    assert (net(x, torch.tensor([60, 60]), cond) - base).abs().max() > 1e-3
    # Each sample only sees its own condition.
    cond2 = cond.clone()
    cond2[1] += 1.0
    out = net(x, t, cond2)
    torch.testing.assert_close(out[0], base[0])
    assert (out[1] - base[1]).abs().max() > 1e-3


def test_gradients_reach_every_parameter():
    net = small_net(down_dims=(16, 32, 64))
    net(
        torch.randn(3, 16, 10), torch.tensor([1, 50, 99]), torch.randn(3, 12)
    ).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_bad_horizon_and_dims_raise():
    net = small_net(down_dims=(16, 32, 64))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 10, 10), 0, torch.randn(1, 12))
    with pytest.raises(ValueError, match="n_groups"):
        ConditionalUnet1D(10, 12, down_dims=(12, 24))
