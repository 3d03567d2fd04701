"""DiffusionPolicy: training lowers the loss, sampling is exact with an ideal denoiser, overfitting
one mode reproduces it, rgb observations work, and config mistakes fail clearly."""

import numpy as np
import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.models.obs_encoder import ObsEncoder
from robopolicy.policies import Policy, get_policy_class
from robopolicy.policies.diffusion import DiffusionPolicy

TO, HORIZON, TA = 2, 16, 8


def state_meta(obs_dim: int = 2, action_dim: int = 2) -> dict:
    return {
        "obs": {"pos": {"shape": [obs_dim], "type": "low_dim"}},
        "action": {"shape": [action_dim]},
    }


def rgb_meta(action_dim: int = 3) -> dict:
    return {
        "obs": {
            "proprio": {"shape": [3], "type": "low_dim"},
            "rgb.agentview": {"shape": [16, 16, 3], "type": "rgb"},
        },
        "action": {"shape": [action_dim]},
    }


def make_policy(shape_meta: dict, prediction_type: str = "epsilon", **kwargs) -> DiffusionPolicy:
    torch.manual_seed(0)
    return DiffusionPolicy(
        shape_meta,
        noise_scheduler={
            "num_train_timesteps": 100,
            "beta_schedule": "squaredcos_cap_v2",
            "clip_sample": True,
            "prediction_type": prediction_type,
        },
        unet={"diffusion_step_embed_dim": 32, "down_dims": [16, 32, 64]},
        obs_encoder={"rgb_feature_dim": 16, "rgb_channels": [8, 16], "num_keypoints": 8},
        **kwargs,
    )


def circle_demos(n_demos: int = 4, length: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows from 4 demos going round a circle from different phases: obs = position, action = next position."""
    obs_windows, action_windows = [], []
    t = np.arange(length + HORIZON) / length
    for i in range(n_demos):
        phase = 2 * np.pi * t + i * np.pi / 2
        pos = np.stack([np.cos(phase), np.sin(phase)], -1).astype(np.float32)
        for s in range(length - HORIZON + 1):
            obs_windows.append(pos[s : s + TO])
            action_windows.append(pos[s + 1 : s + 1 + HORIZON])
    return torch.as_tensor(np.stack(obs_windows)), torch.as_tensor(np.stack(action_windows))


def train(policy: Policy, batch: dict, steps: int, lr: float = 3e-3, decay: bool = False) -> list[float]:
    """AdamW steps on one batch; ``decay``: lr falls linearly to 0, so the last steps settle on
    the data instead of jittering at a constant step size."""
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 - i / steps if decay else 1.0)
    losses = []
    for _ in range(steps):
        loss = policy.compute_loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


# A tiny transformer denoiser for fast CPU tests; no dropout, so it can fit the data exactly.
TINY_TRANSFORMER = {"n_layer": 2, "n_head": 2, "n_emb": 32, "p_drop_emb": 0.0, "p_drop_attn": 0.0}


def four_demo_batch(copies: int = 8) -> dict:
    """One window from each of 4 circle demos, each repeated ``copies`` times (more noise
    draws per step, so the fit is not at the mercy of 4 samples)."""
    obs, action = circle_demos(length=HORIZON)
    return {"obs": {"pos": obs.repeat(copies, 1, 1)}, "action": action.repeat(copies, 1, 1)}


def test_registered_by_name():
    assert get_policy_class("diffusion_unet") is DiffusionPolicy
    assert DiffusionPolicy.name == "diffusion_unet"


def test_loss_falls_on_smooth_demos():
    obs, action = circle_demos()
    policy = make_policy(state_meta())
    policy.fit_normalizer({"action": action.reshape(-1, 2), "pos": obs.reshape(-1, 2)})
    torch.manual_seed(1)
    losses = train(policy, {"obs": {"pos": obs}, "action": action}, steps=30)
    # An untrained net starts above 1 and a net that only learns to output zeros stops near 1.
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, (first, last)


def test_sampling_loop_is_exact_with_ideal_denoiser():
    """Replace the U-Net by the ideal denoiser of a single trajectory: DDIM must land on it."""
    ramp = torch.stack(
        [
            torch.linspace(0, 1, HORIZON),
            torch.linspace(2, -1, HORIZON),
            torch.full((HORIZON,), 0.5),
        ],
        -1,
    )
    for prediction_type in ("epsilon", "sample", "v_prediction"):
        policy = make_policy(state_meta(3, 3), prediction_type)
        policy.fit_normalizer({"action": ramp, "pos": torch.randn(8, 3)})
        clean = policy.normalizer.normalize("action", ramp)
        alphas = policy.noise_scheduler.alphas_cumprod

        def ideal(x, t, cond, clean=clean, alphas=alphas, kind=prediction_type):
            a = alphas[int(t)]
            eps = (x - a.sqrt() * clean) / (1 - a).sqrt()
            return {
                "epsilon": eps,
                "sample": clean.expand_as(x),
                "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * clean,
            }[kind]

        policy.model.forward = ideal
        actions = policy.predict_action({"pos": torch.randn(4, TO, 3)})
        torch.testing.assert_close(
            actions, ramp[TO - 1 : TO - 1 + TA].expand(4, TA, 3), atol=1e-5, rtol=0
        )


@pytest.mark.parametrize("meta", ["state", "rgb"])
def test_overfits_single_mode_and_predicts_it(meta):
    """Every sample has the same action chunk: after a short fit, predictions land on it."""
    torch.manual_seed(0)
    batch_size = 16
    ramp = torch.stack(
        [
            torch.linspace(0, 1, HORIZON),
            torch.linspace(2, -1, HORIZON),
            torch.full((HORIZON,), 0.5),
        ],
        -1,
    )
    if meta == "state":
        shape_meta = state_meta(3, 3)
        obs = {"pos": torch.randn(batch_size, TO, 3)}
    else:
        shape_meta = rgb_meta(3)
        obs = {
            "proprio": torch.randn(batch_size, TO, 3),
            "rgb.agentview": torch.randint(0, 256, (batch_size, TO, 16, 16, 3), dtype=torch.uint8),
        }
    # prediction_type "sample" converges in tens of steps; epsilon needs thousands (covered above).
    policy = make_policy(shape_meta, "sample")
    policy.fit_normalizer(
        {"action": ramp, **{k: v.reshape(-1, 3) for k, v in obs.items() if k != "rgb.agentview"}}
    )
    losses = train(policy, {"obs": obs, "action": ramp.expand(batch_size, HORIZON, 3)}, steps=40)
    assert losses[-1] < 0.05 * losses[0]

    policy.eval()
    actions = policy.predict_action({k: v[:4] for k, v in obs.items()})
    assert actions.shape == (4, TA, 3)
    expected = ramp[TO - 1 : TO - 1 + TA]
    assert (actions - expected).abs().max() < 0.15  # data range is 3 in dim 1


def test_predict_is_deterministic_under_seed_and_generator():
    policy = make_policy(rgb_meta()).eval()
    policy.fit_normalizer({"action": torch.randn(50, 3), "proprio": torch.randn(50, 3)})
    obs = {
        "proprio": torch.randn(2, TO, 3),
        "rgb.agentview": torch.randint(0, 256, (2, TO, 16, 16, 3), dtype=torch.uint8),
    }
    torch.manual_seed(5)
    a = policy.predict_action(obs, text=["open the box", "open the box"])
    torch.manual_seed(5)
    b = policy.predict_action(obs)
    c = policy.predict_action(obs, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, TA, 3)
    assert torch.equal(a, b) and torch.equal(a, c)
    # Explicit per-sample initial noise: a sample's result does not depend on its batch mates.
    noise = torch.randn(2, HORIZON, 3)
    both = policy.predict_action(obs, noise=noise)
    first = policy.predict_action({k: v[:1] for k, v in obs.items()}, noise=noise[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-4, rtol=0)
    assert not torch.equal(both, a)
    with pytest.raises(RobopolicyError, match="noise has shape"):
        policy.predict_action(obs, noise=noise[:, :8])


def test_rgb_gradients_reach_the_image_encoder():
    policy = make_policy(rgb_meta())
    policy.fit_normalizer({"action": torch.randn(50, 3), "proprio": torch.randn(50, 3)})
    batch = {
        "obs": {
            "proprio": torch.randn(2, TO, 3),
            "rgb.agentview": torch.randint(0, 256, (2, TO, 16, 16, 3), dtype=torch.uint8),
        },
        "action": torch.randn(2, HORIZON, 3),
    }
    policy.compute_loss(batch)["loss"].backward()
    grads = [p.grad for p in policy.obs_encoder.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_obs_encoder_converts_uint8_images():
    torch.manual_seed(0)
    encoder = ObsEncoder(rgb_meta(), rgb_feature_dim=16, rgb_channels=[8, 16], num_keypoints=8)
    assert encoder.output_dim == 3 + 16
    image = torch.randint(0, 256, (5, 16, 16, 3), dtype=torch.uint8)
    proprio = torch.randn(5, 3)
    a = encoder({"proprio": proprio, "rgb.agentview": image})
    b = encoder({"proprio": proprio, "rgb.agentview": image.float() / 255})
    assert a.shape == (5, 19)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[:, :3], proprio)  # sorted keys: proprio, then the camera


def test_config_mistakes_raise_one_line_errors():
    meta = state_meta()
    meta["obs"]["grid"] = {"shape": [32, 32, 32], "type": "voxels"}
    with pytest.raises(RobopolicyError, match="'grid' has type 'voxels'.*supported: low_dim, rgb"):
        make_policy(meta)
    with pytest.raises(RobopolicyError, match="horizon 6 is too short"):
        make_policy(state_meta(), horizon=6)
    with pytest.raises(RobopolicyError, match="horizon 10 must be divisible by 4"):
        make_policy(state_meta(), horizon=10)
    with pytest.raises(RobopolicyError, match="config name 'flow_matching'"):
        make_policy(state_meta(), name="flow_matching")
    with pytest.raises(RobopolicyError, match="inference_scheduler 'euler'"):
        make_policy(state_meta(), inference_scheduler="euler")
    policy = make_policy(state_meta())
    with pytest.raises(RobopolicyError, match="never fitted"):
        policy.compute_loss(
            {"obs": {"pos": torch.zeros(1, TO, 2)}, "action": torch.zeros(1, HORIZON, 2)}
        )
    with pytest.raises(RobopolicyError, match="missing key 'pos'"):
        policy.predict_action({"proprio": torch.zeros(1, TO, 2)})


def test_transformer_denoiser_overfits_four_demos():
    """denoiser="transformer": a short fit on 4 demos drives the loss to ~0 and DDIM lands on each demo."""
    batch = four_demo_batch()
    obs, action = batch["obs"]["pos"][:4], batch["action"][:4]  # the 4 distinct demos
    policy = make_policy(state_meta(), "sample", denoiser="transformer", transformer=TINY_TRANSFORMER)
    assert type(policy.model).__name__ == "TransformerDenoiser"
    policy.fit_normalizer({"action": action.reshape(-1, 2), "pos": obs.reshape(-1, 2)})
    torch.manual_seed(1)
    losses = train(policy, batch, steps=300, decay=True)
    assert np.mean(losses[-10:]) < 0.005, losses[-10:]  # starts near 0.35
    policy.eval()
    actions = policy.predict_action({"pos": obs}, generator=torch.Generator().manual_seed(0))
    error = (actions - action[:, TO - 1 : TO - 1 + TA]).abs()
    assert error.mean() < 0.05 and error.max() < 0.15, error  # positions on a unit circle


def test_shipped_transformer_config_builds_saves_and_reloads(tmp_path):
    """policy=diffusion_transformer composes on diffusion_unet.yaml; the saved policy (same
    registry name, the denoiser kept in its config) loads back with identical predictions."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from robopolicy.commands.app import config_dir
    from robopolicy.policies.io import instantiate_policy, load_policy, save_policy

    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("train", overrides=["policy=diffusion_transformer", "policy.transformer.n_emb=32"])
    config = OmegaConf.to_container(cfg.policy, resolve=True)
    assert config["noise_scheduler"]["prediction_type"] == "sample"  # inherited from diffusion_unet
    torch.manual_seed(0)
    policy = instantiate_policy(config, state_meta())
    assert (policy.name, policy.denoiser, type(policy.model).__name__) == (
        "diffusion_unet", "transformer", "TransformerDenoiser")
    policy.fit_normalizer({"action": torch.randn(40, 2), "pos": torch.randn(40, 2)})
    save_policy(policy, tmp_path / "dt", config)
    again = load_policy(tmp_path / "dt", expected="diffusion_unet")
    assert type(again.model) is type(policy.model)
    obs, noise = {"pos": torch.randn(3, TO, 2)}, torch.randn(3, HORIZON, 2)
    # eval() matters: the shipped config has dropout, load_policy returns the policy in eval mode
    torch.testing.assert_close(again.predict_action(obs, noise=noise),
                               policy.eval().predict_action(obs, noise=noise), atol=0, rtol=0)


def test_denoiser_choice_and_its_config_mistakes():
    # the horizon only needs to fit the U-Net's down/up-sampling
    assert make_policy(state_meta(), denoiser="transformer", horizon=10).model.horizon == 10
    with pytest.raises(RobopolicyError, match="denoiser 'mlp' is not one of unet, transformer"):
        make_policy(state_meta(), denoiser="mlp")
    with pytest.raises(RobopolicyError, match="transformer: .*n_layers"):
        make_policy(state_meta(), denoiser="transformer", transformer={"n_layers": 2})
    with pytest.raises(RobopolicyError, match="transformer: n_emb 30 must be divisible by n_head 4"):
        make_policy(state_meta(), denoiser="transformer", transformer={"n_emb": 30})


def test_obs_noise_perturbs_the_condition_in_training_only():
    obs, action = circle_demos()
    policy = make_policy(state_meta(), obs_noise_std=0.1)
    policy.fit_normalizer({"action": action.reshape(-1, 2), "pos": obs.reshape(-1, 2)})
    window = {"pos": obs[:4]}
    policy.train()
    torch.manual_seed(0)
    noisy = policy.global_cond(window)
    torch.manual_seed(1)
    assert not torch.allclose(noisy, policy.global_cond(window))  # a fresh draw each call
    policy.eval()
    clean = policy.global_cond(window)
    assert torch.equal(clean, policy.global_cond(window)) and not torch.allclose(noisy, clean)
    quiet = make_policy(state_meta())
    quiet.fit_normalizer({"action": action.reshape(-1, 2), "pos": obs.reshape(-1, 2)})
    quiet.train()
    assert torch.equal(quiet.global_cond(window), quiet.global_cond(window))
    with pytest.raises(RobopolicyError, match="obs_noise_std must be >= 0, got -0.1"):
        make_policy(state_meta(), obs_noise_std=-0.1)
