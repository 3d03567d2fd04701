"""Diffusion Policy (Chi et al., RSS 2023), registered as ``diffusion_unet``.

The denoiser is a 1-D temporal U-Net by default, or a transformer (``denoiser="transformer"``,
Chi et al.'s other variant; ``policy=diffusion_transformer`` selects it). Training adds DDPM
noise to a normalized action chunk (B, horizon, Da) and trains the network to predict the
noise (or the clean chunk, per the scheduler's ``prediction_type``), conditioned on the
encoded To observation frames. Inference starts from Gaussian noise and runs the inference
scheduler (DDIM by default, built from the DDPM config) for ``num_inference_steps`` steps,
then returns Ta actions starting at index To - 1.

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
from robopolicy.policies import register_policy
from robopolicy.policies.base import to_plain
from robopolicy.policies.chunk import ChunkPolicy

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


@register_policy()
class DiffusionPolicy(ChunkPolicy):
    """Denoising-diffusion policy over action chunks.

    Args:
        shape_meta: dataset shape metadata (obs keys of type low_dim / rgb, action shape).
        noise_scheduler: the training DDPMScheduler, or a dict of its kwargs.
        horizon: actions denoised per call; for the U-Net, divisible by 2 ** (len(unet.down_dims) - 1).
        n_obs_steps: To, observation frames the policy is conditioned on.
        n_action_steps: Ta, actions returned per call.
        num_inference_steps: denoising steps at inference.
        inference_scheduler: "ddim" (deterministic, few steps) or "ddpm" (ancestral sampling).
        unet: kwargs for ConditionalUnet1D (input and condition sizes are filled in).
        obs_encoder: kwargs for ObsEncoder.
        text_encoder: None, or ``minilm`` to condition on each sample's instruction.
        name: the config's ``name`` key; must be "diffusion_unet" when given.
        denoiser: the network, "unet" (ConditionalUnet1D) or "transformer" (TransformerDenoiser).
        transformer: kwargs for TransformerDenoiser (sizes from shape_meta are filled in).
        **skill: skill conditioning and the skill-done head (``condition``, ``skill_params``,
            ``skill_done_head``, ``done_loss_weight``, ``done_hidden_dim``, ``done_lag_steps``;
            ``robopolicy.policies.skill.SkillOptions``), all off by default.
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
        text_encoder: str | None = None,
        name: str | None = None,
        denoiser: Literal["unet", "transformer"] = "unet",
        transformer: Mapping[str, Any] | None = None,
        **skill: Any,
    ) -> None:
        super().__init__(shape_meta, horizon, n_obs_steps, n_action_steps, unet=unet,
                         obs_encoder=obs_encoder, text_encoder=text_encoder, name=name,
                         denoiser=denoiser, transformer=transformer, **skill)
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

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Denoising MSE on {"obs": {key: (B, To, *shape)}, "action": (B, horizon, Da)} (+ the skill
        sampler's keys; with a skill-done head, + done_loss_weight x its BCE: ``loss_terms``)."""
        clean, cond = self.normalized_batch(batch)

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
        return self.loss_terms(F.mse_loss(prediction, target, reduction="none"), cond, batch)

    @torch.no_grad()
    def predict_action(
        self,
        obs: Mapping[str, torch.Tensor],
        text: list[str] | None = None,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        skill_params: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """obs {key: (B, To, *shape)} -> actions (B, Ta, Da) in data units.

        ``text`` (one instruction per sample; a skill policy's is the current skill's) is used
        when the policy has a ``text_encoder``; ``skill_params`` (B, SKILL_PARAMS_DIM), from
        ``encode_skill``, with ``skill_params: true``.
        ``noise`` (B, horizon, Da) is the initial sample (e.g. drawn per episode, so results do
        not depend on how episodes are batched); otherwise it is drawn from ``generator`` when
        given, else from torch's global RNG. With DDIM, the initial noise fixes the result.
        """
        batch = self.check_obs(obs)
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.num_inference_steps)

        # 1. Condition: encode the observation window once.
        cond = self.global_cond(obs, text, skill_params)
        # 2. Start from Gaussian noise over the whole horizon.
        sample = self.initial_noise(batch, noise, generator)
        for t in scheduler.timesteps:
            # 3. Predict noise (or the clean chunk) at this step.
            model_output = self.model(sample, t.to(self.device), cond)
            # 4. Let the scheduler step to the previous (less noisy) sample.
            sample = scheduler.step(model_output, t, sample, generator=generator).prev_sample

        # 5. Back to data units; return the Ta actions starting at the last observed frame.
        return self.executed_actions(sample)
