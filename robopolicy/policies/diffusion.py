"""Diffusion Policy (Chi et al., RSS 2023) with a 1-D temporal U-Net, registered as ``diffusion_unet``.

Training adds DDPM noise to a normalized action chunk (B, horizon, Da) and trains the U-Net to
predict the noise (or the clean chunk, per the scheduler's ``prediction_type``), conditioned
on the encoded To observation frames. Inference starts from Gaussian noise and runs the
inference scheduler (DDIM by default, built from the DDPM config) for
``num_inference_steps`` steps, then returns Ta actions starting at index To - 1.

Example::

    policy = DiffusionPolicy(shape_meta, noise_scheduler={"num_train_timesteps": 100})
    policy.fit_normalizer({"action": actions, "proprio": proprio})
    loss = policy.compute_loss(batch)["loss"]
    actions = policy.predict_action(batch["obs"])       # (B, 8, Da)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from robopolicy.errors import RobopolicyError
from robopolicy.models.obs_encoder import ObsEncoder
from robopolicy.models.unet1d import ConditionalUnet1D
from robopolicy.policies import register_policy
from robopolicy.policies.base import Policy, to_plain

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def build_noise_scheduler(noise_scheduler: DDPMScheduler | Mapping[str, Any]) -> DDPMScheduler:
    """A DDPMScheduler from an instance or a dict of its kwargs (a ``_target_`` key is ignored)."""
    if isinstance(noise_scheduler, DDPMScheduler):
        return noise_scheduler
    kwargs = {k: v for k, v in to_plain(noise_scheduler).items() if k != "_target_"}
    try:
        return DDPMScheduler(**kwargs)
    except TypeError as exc:
        raise RobopolicyError(f"noise_scheduler: {exc}") from exc


@register_policy("diffusion_unet")
class DiffusionPolicy(Policy):
    """Denoising-diffusion policy over action chunks.

    Args:
        shape_meta: dataset shape metadata (obs keys of type low_dim / rgb, action shape).
        noise_scheduler: the training DDPMScheduler, or a dict of its kwargs.
        horizon: actions denoised per call; divisible by 2 ** (len(unet.down_dims) - 1).
        n_obs_steps: To, observation frames the policy is conditioned on.
        n_action_steps: Ta, actions returned per call.
        num_inference_steps: denoising steps at inference.
        inference_scheduler: "ddim" (deterministic, few steps) or "ddpm" (ancestral sampling).
        unet: kwargs for ConditionalUnet1D (input and condition sizes are filled in).
        obs_encoder: kwargs for ObsEncoder.
        name: the config's ``name`` key; must be "diffusion_unet" when given.
    """

    def __init__(
        self,
        shape_meta: Mapping,
        noise_scheduler: DDPMScheduler | Mapping[str, Any],
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        num_inference_steps: int = 10,
        inference_scheduler: Literal["ddim", "ddpm"] = "ddim",
        unet: Mapping[str, Any] | None = None,
        obs_encoder: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(shape_meta, horizon, n_obs_steps, n_action_steps, name=name)
        self.noise_scheduler = build_noise_scheduler(noise_scheduler)
        config = self.noise_scheduler.config
        if config.prediction_type not in PREDICTION_TYPES:
            raise RobopolicyError(
                f"noise_scheduler.prediction_type '{config.prediction_type}' is not one of {PREDICTION_TYPES}"
            )
        if not 1 <= num_inference_steps <= config.num_train_timesteps:
            raise RobopolicyError(
                f"num_inference_steps {num_inference_steps} must be in [1, num_train_timesteps={config.num_train_timesteps}]"
            )
        schedulers = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}
        if inference_scheduler not in schedulers:
            raise RobopolicyError(
                f"inference_scheduler '{inference_scheduler}' is not one of {sorted(schedulers)}"
            )
        self.inference_scheduler = schedulers[inference_scheduler].from_config(config)
        self.num_inference_steps = int(num_inference_steps)

        unet_kwargs = dict(to_plain(unet) or {})
        levels = len(unet_kwargs.get("down_dims", (64, 128, 256)))
        if self.horizon % 2 ** (levels - 1):
            raise RobopolicyError(
                f"horizon {self.horizon} must be divisible by {2 ** (levels - 1)} for a {levels}-level U-Net"
            )
        self.obs_encoder = ObsEncoder(self.shape_meta, **(to_plain(obs_encoder) or {}))
        self.model = ConditionalUnet1D(
            input_dim=self.action_dim,
            global_cond_dim=self.obs_encoder.output_dim * self.n_obs_steps,
            **unet_kwargs,
        )

    def _global_cond(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalize low-dim obs, encode the first To frames, flatten -> (B, To * D)."""
        window = {}
        for key in self.shape_meta["obs"]:
            x = obs[key][:, : self.n_obs_steps].to(self.device, non_blocking=True)
            if key in self.low_dim_keys:
                x = self.normalizer.normalize(key, x.float())
            window[key] = x.reshape(-1, *x.shape[2:])  # (B*To, *shape)
        features = self.obs_encoder(window)  # (B*To, D)
        return features.reshape(-1, self.n_obs_steps * features.shape[-1])

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Denoising MSE on {"obs": {key: (B, To, *shape)}, "action": (B, horizon, Da)}."""
        self.check_obs(batch["obs"])
        action = batch["action"].to(self.device).float()
        if tuple(action.shape[1:]) != (self.horizon, self.action_dim):
            raise RobopolicyError(
                f"batch action has shape {list(action.shape)}, expected [B, {self.horizon}, {self.action_dim}]"
            )
        clean = self.normalizer.normalize("action", action)
        cond = self._global_cond(batch["obs"])

        noise = torch.randn_like(clean)
        steps = torch.randint(
            0,
            self.noise_scheduler.config.num_train_timesteps,
            (clean.shape[0],),
            device=clean.device,
        )
        noisy = self.noise_scheduler.add_noise(clean, noise, steps)
        prediction = self.model(noisy, steps, cond)

        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            target = noise
        elif kind == "sample":
            target = clean
        else:  # v_prediction
            target = self.noise_scheduler.get_velocity(clean, noise, steps)
        return {"loss": F.mse_loss(prediction, target)}

    @torch.no_grad()
    def predict_action(
        self,
        obs: Mapping[str, torch.Tensor],
        text: list[str] | None = None,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """obs {key: (B, To, *shape)} -> actions (B, Ta, Da) in data units.

        ``text`` is accepted for interface compatibility and ignored (not language-conditioned).
        ``noise`` (B, horizon, Da) is the initial sample (e.g. drawn per episode, so results do
        not depend on how episodes are batched); otherwise it is drawn from ``generator`` when
        given, else from torch's global RNG. With DDIM, the initial noise fixes the result.
        """
        batch = self.check_obs(obs)
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.num_inference_steps)

        # 1. Condition: encode the observation window once.
        cond = self._global_cond(obs)
        # 2. Start from Gaussian noise over the whole horizon.
        shape = (batch, self.horizon, self.action_dim)
        if noise is None:
            sample = torch.randn(shape, generator=generator, device=self.device)
        elif tuple(noise.shape) != shape:
            raise RobopolicyError(f"noise has shape {list(noise.shape)}, expected {list(shape)}")
        else:
            sample = noise.to(self.device, torch.float32)
        for t in scheduler.timesteps:
            # 3. Predict noise (or the clean chunk) at this step.
            model_output = self.model(sample, t.to(self.device), cond)
            # 4. Let the scheduler step to the previous (less noisy) sample.
            sample = scheduler.step(model_output, t, sample, generator=generator).prev_sample

        # 5. Back to data units; return the Ta actions starting at the last observed frame.
        actions = self.normalizer.unnormalize("action", sample)
        start = self.n_obs_steps - 1
        return actions[:, start : start + self.n_action_steps]
