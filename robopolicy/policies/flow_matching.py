"""Flow-matching policy over action chunks, registered as ``flow_matching``.

Conditional flow matching on the linear (rectified) path from noise to data: with
``x_t = (1 - t) * noise + t * action`` the network learns the velocity ``action - noise`` at
time t in [0, 1] (t = 0 is pure noise). Sampling integrates dx/dt = v(x, t) from t = 0 to 1
with Euler or midpoint steps, so one network call (Euler, 1 step) already gives an action
chunk. Same networks (U-Net, or transformer with ``denoiser="transformer"``) and observation
encoder as ``diffusion_unet``.

Example::

    policy = FlowMatchingPolicy(shape_meta, num_inference_steps=10, integrator="midpoint")
    loss = policy.compute_loss(batch)["loss"]
    actions = policy.predict_action(batch["obs"])       # (B, 8, Da)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F

from robopolicy.errors import RobopolicyError
from robopolicy.policies import register_policy
from robopolicy.policies.chunk import ChunkPolicy

TIME_SAMPLINGS = ("uniform", "beta")
INTEGRATORS = ("euler", "midpoint")
# The networks' sinusoidal step embeddings were made for integer diffusion steps; flow time in
# [0, 1] is scaled up so their frequencies resolve it.
TIME_SCALE = 1000.0


@register_policy()
class FlowMatchingPolicy(ChunkPolicy):
    """Flow-matching policy over action chunks.

    Args:
        shape_meta: dataset shape metadata (obs keys of type low_dim / rgb, action shape).
        horizon, n_obs_steps, n_action_steps: as for ``diffusion_unet``.
        num_inference_steps: integration steps at inference (network calls: x1 Euler, x2 midpoint).
        integrator: "euler" or "midpoint".
        time_sampling: training times t, "uniform" on [0, 1] or "beta": t = 1 - s with
            s ~ Beta(1.5, 1), weighting the noisy end of the path more (as pi0 does).
        unet, obs_encoder, text_encoder, name, denoiser, transformer, **skill: as for
            ``diffusion_unet``.
    """

    def __init__(
        self,
        shape_meta: Mapping,
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        num_inference_steps: int = 10,
        integrator: Literal["euler", "midpoint"] = "euler",
        time_sampling: Literal["uniform", "beta"] = "beta",
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
        if integrator not in INTEGRATORS:
            raise RobopolicyError(f"integrator '{integrator}' is not one of {INTEGRATORS}")
        if time_sampling not in TIME_SAMPLINGS:
            raise RobopolicyError(f"time_sampling '{time_sampling}' is not one of {TIME_SAMPLINGS}")
        if num_inference_steps < 1:
            raise RobopolicyError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        self.num_inference_steps = int(num_inference_steps)
        self.integrator = integrator
        self.time_sampling = time_sampling

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The network's velocity at points x (B, horizon, Da) and times t (B,)."""
        return self.model(x, t * TIME_SCALE, cond)

    def sample_time(self, batch: int, device: torch.device) -> torch.Tensor:
        """Training times (B,) in [0, 1]."""
        if self.time_sampling == "uniform":
            return torch.rand(batch, device=device)
        beta = torch.distributions.Beta(torch.tensor(1.5, device=device), torch.tensor(1.0, device=device))
        return 1.0 - beta.sample((batch,))

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Velocity MSE on {"obs": {key: (B, To, *shape)}, "action": (B, horizon, Da)} (+ the skill
        sampler's keys; with a skill-done head, + done_loss_weight x its BCE: ``loss_terms``)."""
        clean, cond = self.normalized_batch(batch)
        noise = torch.randn_like(clean)
        t = self.sample_time(clean.shape[0], clean.device)
        x_t = (1.0 - t[:, None, None]) * noise + t[:, None, None] * clean
        err = F.mse_loss(self.velocity(x_t, t, cond), clean - noise, reduction="none")
        return self.loss_terms(err, cond, batch)

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
        Integration is deterministic, so the initial ``noise`` (B, horizon, Da) fixes the
        result; without it, noise is drawn from ``generator`` when given, else from torch's
        global RNG.
        """
        batch = self.check_obs(obs)
        cond = self.global_cond(obs, text, skill_params)
        x = self.initial_noise(batch, noise, generator)
        dt = 1.0 / self.num_inference_steps
        for k in range(self.num_inference_steps):
            t = torch.full((batch,), k * dt, device=x.device)
            v = self.velocity(x, t, cond)
            if self.integrator == "midpoint":
                v = self.velocity(x + 0.5 * dt * v, t + 0.5 * dt, cond)
            x = x + dt * v
        return self.executed_actions(x)
