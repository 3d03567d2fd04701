"""ChunkPolicy: what the diffusion and flow-matching policies share.

Both turn Gaussian noise into a chunk of ``horizon`` normalized actions with a denoising
network (a conditional 1-D U-Net, or a transformer with ``denoiser="transformer"``),
conditioned on the encoded ``n_obs_steps`` observation frames (and, with a ``text_encoder``, on
the embedded instruction); they differ only in the training target and the sampler. This class
owns the observation encoder, the network (``self.model``), the conditioning, the
action-batch checks and the initial noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from robopolicy.errors import RobopolicyError
from robopolicy.models.obs_encoder import ObsEncoder
from robopolicy.models.text_encoder import TextEncoder
from robopolicy.models.transformer1d import TransformerDenoiser
from robopolicy.models.unet1d import ConditionalUnet1D
from robopolicy.policies.base import Policy, to_plain

DENOISERS = ("unet", "transformer")


class ChunkPolicy(Policy):
    """A Policy whose network denoises an action chunk (B, horizon, Da).

    Args (beyond Policy's): ``denoiser``: the network, ``unet`` (ConditionalUnet1D) or
    ``transformer`` (TransformerDenoiser); ``unet`` / ``transformer``: kwargs for that network
    (input and condition sizes are filled in; the one not selected is ignored, so a config can
    keep both blocks); ``obs_encoder``: kwargs for ObsEncoder; ``text_encoder``: None, or the
    name of a frozen sentence encoder (``minilm``) whose embedding of each sample's instruction
    (``batch["text"]``, ``predict_action(obs, text)``) joins the condition.
    """

    def __init__(
        self,
        shape_meta: Mapping,
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
        unet: Mapping[str, Any] | None = None,
        obs_encoder: Mapping[str, Any] | None = None,
        text_encoder: str | None = None,
        name: str | None = None,
        denoiser: str = "unet",
        transformer: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(shape_meta, horizon, n_obs_steps, n_action_steps, name=name)
        if denoiser not in DENOISERS:
            raise RobopolicyError(f"denoiser '{denoiser}' is not one of {', '.join(DENOISERS)}")
        unet_kwargs = dict(to_plain(unet) or {})
        levels = len(unet_kwargs.get("down_dims", (64, 128, 256)))
        if denoiser == "unet" and self.horizon % 2 ** (levels - 1):
            raise RobopolicyError(
                f"horizon {self.horizon} must be divisible by {2 ** (levels - 1)} for a {levels}-level U-Net"
            )
        self.denoiser = denoiser
        self.obs_encoder = ObsEncoder(self.shape_meta, **(to_plain(obs_encoder) or {}))
        self.text_encoder = TextEncoder(text_encoder) if text_encoder else None
        text_dim = self.text_encoder.dim if self.text_encoder else 0
        cond_dim = self.obs_encoder.output_dim * self.n_obs_steps + text_dim
        try:
            if denoiser == "unet":
                self.model = ConditionalUnet1D(
                    input_dim=self.action_dim, global_cond_dim=cond_dim, **unet_kwargs
                )
            else:
                # One memory token per observation frame and one for the instruction, laid out
                # as global_cond() concatenates them.
                self.model = TransformerDenoiser(
                    input_dim=self.action_dim,
                    global_cond_dim=cond_dim,
                    horizon=self.horizon,
                    n_obs_steps=self.n_obs_steps,
                    extra_cond_dim=text_dim,
                    **(to_plain(transformer) or {}),
                )
        except (TypeError, ValueError) as exc:  # a bad or unknown key in the config block
            raise RobopolicyError(f"{denoiser}: {exc}") from exc

    @property
    def uses_text(self) -> bool:
        """Whether the policy is conditioned on an instruction."""
        return self.text_encoder is not None

    def global_cond(self, obs: Mapping[str, torch.Tensor], text: Sequence[str] | None = None) -> torch.Tensor:
        """Normalize low-dim obs, encode the first To frames, flatten -> (B, To * D) (+ the
        instruction's embedding when text-conditioned)."""
        window = {}
        for key in self.shape_meta["obs"]:
            x = obs[key][:, : self.n_obs_steps].to(self.device, non_blocking=True)
            if key in self.low_dim_keys:
                x = self.normalizer.normalize(key, x.float())
            window[key] = x.reshape(-1, *x.shape[2:])  # (B*To, *shape)
        features = self.obs_encoder(window)  # (B*To, D)
        cond = features.reshape(-1, self.n_obs_steps * features.shape[-1])
        if self.text_encoder is None:
            return cond
        if text is None or len(text) != len(cond):
            got = "none" if text is None else f"{len(text)}"
            raise RobopolicyError(f"policy {self.name} is conditioned on text: needs one instruction "
                                  f"per sample ({len(cond)}), got {got}")
        return torch.cat([cond, self.text_encoder(list(text)).to(cond.device)], dim=-1)

    def normalized_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Check a training batch; return (normalized action chunk, observation condition)."""
        self.check_obs(batch["obs"])
        action = batch["action"].to(self.device).float()
        if tuple(action.shape[1:]) != (self.horizon, self.action_dim):
            raise RobopolicyError(
                f"batch action has shape {list(action.shape)}, expected [B, {self.horizon}, {self.action_dim}]"
            )
        return (self.normalizer.normalize("action", action),
                self.global_cond(batch["obs"], batch.get("text")))

    def initial_noise(self, batch: int, noise: torch.Tensor | None,
                      generator: torch.Generator | None) -> torch.Tensor:
        """The sampler's starting point (B, horizon, Da): ``noise`` if given, else drawn."""
        shape = (batch, self.horizon, self.action_dim)
        if noise is None:
            return torch.randn(shape, generator=generator, device=self.device)
        if tuple(noise.shape) != shape:
            raise RobopolicyError(f"noise has shape {list(noise.shape)}, expected {list(shape)}")
        return noise.to(self.device, torch.float32)

    def executed_actions(self, sample: torch.Tensor) -> torch.Tensor:
        """Normalized chunk -> the Ta actions in data units, from the last observed frame on."""
        actions = self.normalizer.unnormalize("action", sample)
        self.last_chunk = actions.detach()  # the whole predicted horizon, for viewers
        start = self.n_obs_steps - 1
        return actions[:, start : start + self.n_action_steps]
