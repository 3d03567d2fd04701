"""ChunkPolicy: what the diffusion and flow-matching policies share.

Both turn Gaussian noise into a chunk of ``horizon`` normalized actions with a denoising
network (a conditional 1-D U-Net, or a transformer with ``denoiser="transformer"``),
conditioned on the encoded ``n_obs_steps`` observation frames (and, with a ``text_encoder``, on
the embedded instruction); they differ only in the training target and the sampler. This class
owns the observation encoder, the network (``self.model``), the conditioning, the
action-batch checks, the initial noise and the optional skill-done head
(``robopolicy.policies.skill``).
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
from robopolicy.policies.skill import DoneHead, SkillOptions, action_loss, batch_vector, done_terms

DENOISERS = ("unet", "transformer")


class ChunkPolicy(Policy):
    """A Policy whose network denoises an action chunk (B, horizon, Da).

    Args (beyond Policy's): ``denoiser``: the network, ``unet`` (ConditionalUnet1D) or
    ``transformer`` (TransformerDenoiser); ``unet`` / ``transformer``: kwargs for that network
    (input and condition sizes are filled in; the one not selected is ignored, so a config can
    keep both blocks); ``obs_encoder``: kwargs for ObsEncoder; ``text_encoder``: None, or the
    name of a frozen sentence encoder (``minilm``) whose embedding of each sample's instruction
    (``batch["text"]``, ``predict_action(obs, text)``) joins the condition; ``skill``: the
    skill keys (``SkillOptions``: ``condition``, ``skill_params``, ``skill_done_head``,
    ``done_loss_weight``, ``done_hidden_dim``, ``done_lag_steps``, ``skill_obs_keys``,
    ``skill_text``), given flat in the config;
    ``compile``: run the network through ``torch.compile`` (the weights and checkpoints are
    unchanged; the first calls at each new batch size compile, so it pays off in long runs);
    ``obs_noise_std``: training only, Gaussian noise of this standard deviation added to the
    normalized low-dim observations (the normalizer maps each to [-1, 1]): the policy then
    sees states a little off the demos' own, as it will once its own errors compound.
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
        compile: bool = False,
        obs_noise_std: float = 0.0,
        **skill: Any,
    ) -> None:
        super().__init__(shape_meta, horizon, n_obs_steps, n_action_steps, name=name)
        if not obs_noise_std >= 0:
            raise RobopolicyError(f"obs_noise_std must be >= 0, got {obs_noise_std}")
        self.obs_noise_std = float(obs_noise_std)
        try:
            self.skill = SkillOptions(**skill)
        except TypeError as exc:  # an unknown key in the config
            raise RobopolicyError(f"policy config: {exc}") from None
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
        if self.skill.condition == "skill" and not (self.text_encoder or self.skill.skill_params):
            raise RobopolicyError("condition: skill needs text_encoder (the skill's instruction) "
                                  "or skill_params: true")
        # The instruction's embedding and the skill vector trail the observation features.
        text_dim = self.text_encoder.dim if self.text_encoder else 0
        text_dim += self.skill.params_dim
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
        self.compiled = bool(compile)
        if self.compiled:  # the forward only: parameter names (and so checkpoints) stay the same
            self.model.forward = torch.compile(self.model.forward)
        self.done_head = (DoneHead(cond_dim, self.skill.done_hidden_dim)
                          if self.skill.skill_done_head else None)

    @property
    def uses_text(self) -> bool:
        """Whether the policy is conditioned on an instruction."""
        return self.text_encoder is not None

    @property
    def uses_skill_params(self) -> bool:
        """Whether the policy is conditioned on the skill's ``encode_skill`` vector."""
        return self.skill.skill_params

    @property
    def uses_next_skill(self) -> bool:
        """Whether the skill vector also holds the next skill's (``next_skill: true``)."""
        return self.skill.next_skill

    @property
    def condition(self) -> str:
        """``task`` (text = the task's instruction) or ``skill`` (text = the current skill's)."""
        return self.skill.condition

    @property
    def skill_text(self) -> str:
        """Which skill text conditions the policy: ``instruction`` or ``generic``."""
        return self.skill.skill_text

    def global_cond(self, obs: Mapping[str, torch.Tensor], text: Sequence[str] | None = None,
                    skill_params: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize low-dim obs, encode the first To frames, flatten -> (B, To * D) (+ the
        instruction's embedding when text-conditioned, + the (B, P) skill vector with
        ``skill_params: true``: P = SKILL_PARAMS_DIM, twice that with ``next_skill: true``)."""
        window = {}
        for key in self.shape_meta["obs"]:
            x = obs[key][:, : self.n_obs_steps].to(self.device, non_blocking=True)
            if key in self.low_dim_keys:
                x = self.normalizer.normalize(key, x.float())
                if self.training and self.obs_noise_std > 0:
                    x = x + self.obs_noise_std * torch.randn_like(x)
            window[key] = x.reshape(-1, *x.shape[2:])  # (B*To, *shape)
        features = self.obs_encoder(window)  # (B*To, D)
        cond = features.reshape(-1, self.n_obs_steps * features.shape[-1])
        parts = [cond]
        if self.text_encoder is not None:
            if text is None or len(text) != len(cond):
                got = "none" if text is None else f"{len(text)}"
                raise RobopolicyError(f"policy {self.name} is conditioned on text: needs one "
                                      f"instruction per sample ({len(cond)}), got {got}")
            parts.append(self.text_encoder(list(text)).to(cond.device))
        if self.skill.skill_params:
            shape = None if skill_params is None else list(skill_params.shape)
            if shape != [len(cond), self.skill.params_dim]:
                what = "encode_skill and with_next" if self.skill.next_skill else "encode_skill"
                raise RobopolicyError(f"policy {self.name} is conditioned on skill params: needs "
                                      f"skill_params [{len(cond)}, {self.skill.params_dim}] "
                                      f"(robopolicy.data.skills.{what}), got {shape}")
            parts.append(torch.as_tensor(skill_params, dtype=cond.dtype, device=cond.device))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else cond

    def normalized_batch(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Check a training batch; return (normalized action chunk, observation condition)."""
        self.check_obs(batch["obs"])
        action = batch["action"].to(self.device).float()
        if tuple(action.shape[1:]) != (self.horizon, self.action_dim):
            raise RobopolicyError(
                f"batch action has shape {list(action.shape)}, expected [B, {self.horizon}, {self.action_dim}]"
            )
        return (self.normalizer.normalize("action", action),
                self.global_cond(batch["obs"], batch.get("text"),
                                 batch_vector(batch, "skill_params", self.device)))

    def loss_terms(self, err: torch.Tensor, cond: torch.Tensor,
                   batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The loss dict from per-element action errors (B, horizon, Da): ``loss`` (the action
        loss, weighted by ``batch["action_weight"]`` when present, + done_loss_weight x the
        done BCE with a done head), and with a done head ``action_loss``, ``done_loss`` and
        ``done_acc`` (detached, for logging)."""
        loss = action_loss(err, batch_vector(batch, "action_weight", err.device))
        if self.done_head is None:
            return {"loss": loss}
        label = batch_vector(batch, "done", err.device)
        if label is None:
            raise RobopolicyError(f"policy {self.name} has a skill-done head: its batches need "
                                  "'done' labels (a sampler built with skills)")
        terms = done_terms(self.done_head(cond), label)
        return {"loss": loss + self.skill.done_loss_weight * terms["done_loss"],
                "action_loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    @torch.no_grad()
    def predict_done(self, obs: Mapping[str, torch.Tensor], text: Sequence[str] | None = None,
                     *, skill_params: torch.Tensor | None = None) -> torch.Tensor:
        """obs {key: (B, To, *shape)} + the current skill's instruction per sample (and its
        skill vector with ``skill_params: true``) -> p(the skill's goal holds at the last
        observed frame), (B,) float32 in [0, 1]."""
        if self.done_head is None:
            raise RobopolicyError(f"policy {self.name} has no skill-done head "
                                  "(train it with skill_done_head: true)")
        self.check_obs(obs)
        return torch.sigmoid(self.done_head(self.global_cond(obs, text, skill_params)).float())

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
