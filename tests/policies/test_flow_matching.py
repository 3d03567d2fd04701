"""FlowMatchingPolicy: integration is exact with the ideal velocity field, a short fit reproduces
one action mode with 1 and 10 steps, sampling is deterministic, and config mistakes fail clearly."""

import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.policies import get_policy_class
from robopolicy.policies.flow_matching import FlowMatchingPolicy

TO, HORIZON, TA = 2, 16, 8
META = {"obs": {"pos": {"shape": [3], "type": "low_dim"}}, "action": {"shape": [3]}}
RAMP = torch.stack([torch.linspace(0, 1, HORIZON), torch.linspace(2, -1, HORIZON),
                    torch.full((HORIZON,), 0.5)], -1)


def make_policy(**kwargs) -> FlowMatchingPolicy:
    torch.manual_seed(0)
    policy = FlowMatchingPolicy(META, unet={"diffusion_step_embed_dim": 32, "down_dims": [16, 32, 64]},
                                **kwargs)
    policy.fit_normalizer({"action": RAMP, "pos": torch.randn(32, 3)})
    return policy


def test_registered_by_name():
    assert get_policy_class("flow_matching") is FlowMatchingPolicy


@pytest.mark.parametrize("integrator,steps", [("euler", 1), ("euler", 7), ("midpoint", 3)])
def test_integration_is_exact_with_the_ideal_velocity(integrator, steps):
    """On the straight path to one chunk, the ideal velocity is (chunk - x) / (1 - t): every
    integrator lands on the chunk whatever the noise."""
    policy = make_policy(num_inference_steps=steps, integrator=integrator)
    clean = policy.normalizer.normalize("action", RAMP)
    policy.model.forward = lambda x, t, cond: (clean - x) / (1.0 - t[:, None, None] / 1000.0)
    actions = policy.predict_action({"pos": torch.randn(4, TO, 3)})
    torch.testing.assert_close(actions, RAMP[TO - 1:TO - 1 + TA].expand(4, TA, 3), atol=1e-4, rtol=0)


@pytest.mark.parametrize("time_sampling", ["uniform", "beta"])
def test_training_times_lie_in_the_unit_interval(time_sampling):
    torch.manual_seed(0)
    t = make_policy(time_sampling=time_sampling).sample_time(4000, torch.device("cpu"))
    assert 0.0 <= t.min() and t.max() <= 1.0
    # uniform has mean 1/2; beta (t = 1 - s, s ~ Beta(1.5, 1), mean 0.6) leans to the noisy end
    assert abs(t.mean() - (0.5 if time_sampling == "uniform" else 0.4)) < 0.02


def test_overfits_one_mode_and_predicts_it_in_one_and_ten_steps():
    torch.manual_seed(0)
    obs = {"pos": torch.randn(16, TO, 3)}
    policy = make_policy()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        loss = policy.compute_loss({"obs": obs, "action": RAMP.expand(16, HORIZON, 3)})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.1 * sum(losses[:10]) / 10
    policy.eval()
    for steps in (1, 10):  # data range 3 in dim 1; an untrained net is off by ~1
        policy.num_inference_steps = steps
        actions = policy.predict_action({"pos": obs["pos"][:4]})
        assert (actions - RAMP[TO - 1:TO - 1 + TA]).abs().mean() < 0.15, steps


def test_transformer_denoiser_overfits_four_demos():
    """denoiser="transformer": a short fit on 4 demos lowers the velocity loss tenfold and 10
    Euler steps land on each demo."""
    from tests.policies.test_diffusion import TINY_TRANSFORMER, four_demo_batch, state_meta, train

    batch = four_demo_batch()
    obs, action = batch["obs"]["pos"][:4], batch["action"][:4]  # the 4 distinct demos
    torch.manual_seed(0)
    policy = FlowMatchingPolicy(state_meta(), denoiser="transformer", transformer=TINY_TRANSFORMER)
    assert type(policy.model).__name__ == "TransformerDenoiser"
    policy.fit_normalizer({"action": action.reshape(-1, 2), "pos": obs.reshape(-1, 2)})
    losses = train(policy, batch, steps=300, decay=True)
    # The velocity loss does not reach 0 within a few hundred steps (it starts near 1.3).
    assert sum(losses[-10:]) / 10 < 0.1 * sum(losses[:10]) / 10
    policy.eval()
    actions = policy.predict_action({"pos": obs}, generator=torch.Generator().manual_seed(0))
    error = (actions - action[:, TO - 1:TO - 1 + TA]).abs()
    assert error.mean() < 0.1 and error.max() < 0.75, error  # positions on a unit circle


def test_predict_is_deterministic_given_the_noise():
    policy = make_policy().eval()
    obs = {"pos": torch.randn(2, TO, 3)}
    noise = torch.randn(2, HORIZON, 3)
    a = policy.predict_action(obs, noise=noise)
    b = policy.predict_action(obs, noise=noise)
    c = policy.predict_action(obs, generator=torch.Generator().manual_seed(3))
    d = policy.predict_action(obs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(c, d) and not torch.equal(a, c)


@pytest.mark.parametrize("kwargs,match", [
    ({"integrator": "rk4"}, "integrator 'rk4'"),
    ({"time_sampling": "logit"}, "time_sampling 'logit'"),
    ({"num_inference_steps": 0}, "num_inference_steps"),
    ({"horizon": 10}, "divisible by 4"),
    ({"denoiser": "mlp"}, "denoiser 'mlp' is not one of unet, transformer"),
])
def test_bad_config_is_one_clear_error(kwargs, match):
    with pytest.raises(RobopolicyError, match=match):
        make_policy(**kwargs)


def test_shipped_config_builds_saves_and_reloads_only_as_itself(tmp_path):
    from omegaconf import OmegaConf

    from robopolicy.commands.app import config_dir
    from robopolicy.policies.io import instantiate_policy, load_policy, save_policy

    cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "policy" / "flow_matching.yaml"))
    cfg["unet"]["down_dims"] = [16, 32, 64]
    torch.manual_seed(0)
    policy = instantiate_policy(cfg, META)
    policy.fit_normalizer({"action": RAMP, "pos": torch.randn(32, 3)})
    save_policy(policy, tmp_path / "fm", cfg)
    noise = torch.randn(1, HORIZON, 3)
    obs = {"pos": torch.randn(1, TO, 3)}
    again = load_policy(tmp_path / "fm", expected="flow_matching")
    torch.testing.assert_close(again.predict_action(obs, noise=noise),
                               policy.eval().predict_action(obs, noise=noise))
    with pytest.raises(RobopolicyError, match="flow_matching"):
        load_policy(tmp_path / "fm", expected="diffusion_unet")
