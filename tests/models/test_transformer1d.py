"""TransformerDenoiser: shapes and timestep forms, causal masking of later actions and later
observation frames, and that timestep, condition and extra token all reach the output."""

import pytest
import torch

from robopolicy.models.transformer1d import TransformerDenoiser

DA, OBS, TO, T = 3, 5, 2, 16


def small_net(**kwargs) -> TransformerDenoiser:
    torch.manual_seed(0)
    kwargs = {"n_layer": 2, "n_head": 2, "n_emb": 32, "n_obs_steps": TO, **kwargs}
    extra = kwargs.get("extra_cond_dim", 0)
    # eval(): dropout off, so outputs are deterministic functions of the inputs
    return TransformerDenoiser(DA, TO * OBS + extra, T, **kwargs).eval()


def test_shapes_and_timestep_forms():
    net = small_net()
    x, cond = torch.randn(2, T, DA), torch.randn(2, TO * OBS)
    a = net(x, 7, cond)
    assert a.shape == (2, T, DA) and torch.isfinite(a).all()
    torch.testing.assert_close(a, net(x, torch.tensor(7), cond))
    torch.testing.assert_close(a, net(x, torch.tensor([7, 7]), cond))
    # flow time (a float in [0, 1] scaled by the policy) works too, and shorter sequences
    assert net(x[:, :8], torch.tensor([0.0, 731.5]), cond).shape == (2, 8, DA)


@pytest.mark.parametrize("causal", [True, False])
def test_causal_attention_hides_later_actions(causal):
    net = small_net(causal_attn=causal)
    x, cond, t = torch.randn(2, T, DA), torch.randn(2, TO * OBS), torch.tensor([10, 10])
    changed = x.clone()
    changed[:, 9] += 1.0
    base, out = net(x, t, cond), net(changed, t, cond)
    assert not torch.allclose(base[:, 9:], out[:, 9:])
    if causal:
        torch.testing.assert_close(base[:, :9], out[:, :9])  # exactly unaffected, not just close
    else:
        assert not torch.allclose(base[:, :9], out[:, :9])


def test_causal_attention_hides_later_observation_frames():
    """Action step t sees observation frames <= t: frame 1 cannot reach action 0."""
    net = small_net()
    x, cond, t = torch.randn(2, T, DA), torch.randn(2, TO * OBS), torch.tensor([10, 10])
    changed = cond.clone()
    changed[:, OBS:] += 1.0  # frame 1
    base, out = net(x, t, cond), net(x, t, changed)
    torch.testing.assert_close(base[:, :1], out[:, :1])
    assert not torch.allclose(base[:, 1:], out[:, 1:])


def test_timestep_condition_and_extra_token_change_the_output():
    net = small_net(extra_cond_dim=4)
    x, cond, t = torch.randn(2, T, DA), torch.randn(2, TO * OBS + 4), torch.tensor([10, 10])
    base = net(x, t, cond)
    assert not torch.allclose(base, net(x, torch.tensor([60, 60]), cond), atol=1e-3)
    assert not torch.allclose(base, net(x, t, torch.randn_like(cond)), atol=1e-3)
    changed = cond.clone()
    changed[:, -4:] += 1.0  # the extra (instruction) token is visible to every action
    assert not torch.allclose(base[:, :1], net(x, t, changed)[:, :1], atol=1e-3)


def test_gradients_reach_every_parameter():
    net = small_net(extra_cond_dim=4).train()
    net(
        torch.randn(2, T, DA), torch.tensor([3, 50]), torch.randn(2, TO * OBS + 4)
    ).square().mean().backward()
    missing = [
        name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()
    ]
    assert not missing


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="n_obs_steps=3 equal"):
        TransformerDenoiser(DA, 10, T, n_obs_steps=3)
    with pytest.raises(ValueError, match="divisible by n_head"):
        TransformerDenoiser(DA, 10, T, n_emb=30, n_head=4)
    net = small_net()
    with pytest.raises(ValueError, match="exceeds"):
        net(torch.randn(1, T + 1, DA), 0, torch.randn(1, TO * OBS))
    with pytest.raises(ValueError, match="needs a global_cond"):
        net(torch.randn(1, T, DA), 0, None)
