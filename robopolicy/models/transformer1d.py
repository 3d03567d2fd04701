"""Transformer that denoises action sequences (after Chi et al.'s TransformerForDiffusion).

A drop-in alternative to ``ConditionalUnet1D`` with the same call, ``net(sample (B,T,Da),
timestep (B,) or scalar, global_cond (B,C)) -> (B,T,Da)``, so a policy does not care which one
it holds. minGPT-style: each action step is a token (a linear map of the action plus a learned
position embedding); a transformer decoder lets the action tokens attend to each other and
cross-attend to a short condition memory: one token for the timestep (sinusoidal, so integer
diffusion steps 0..T and flow times scaled to [0, 1000] both work), one per observation frame
(the global condition split into ``n_obs_steps`` equal parts) and, when ``extra_cond_dim`` > 0,
one for the trailing extra features (e.g. an instruction embedding).

Example::

    net = TransformerDenoiser(input_dim=10, global_cond_dim=74, horizon=16, n_obs_steps=2)
    eps = net(noisy_actions, timesteps, obs_features)  # (B, 16, 10) -> (B, 16, 10)
"""

from __future__ import annotations

import torch
from torch import nn

from robopolicy.models.unet1d import SinusoidalStepEmbedding


class TransformerDenoiser(nn.Module):
    """Transformer decoder over action tokens, cross-attending to [time, obs frames..., extra].

    With ``causal_attn`` an action token attends only to itself and earlier action tokens, and
    action step t sees the observation tokens of frames <= t (frame i and action i are the same
    time step, as in the policy's windows); the time and extra tokens are always visible.

    Args:
        input_dim: action dimension Da.
        global_cond_dim: size C of the condition vector: ``n_obs_steps`` equal per-frame parts,
            then ``extra_cond_dim`` extra features.
        horizon: the longest action sequence T (size of the learned position embedding).
        n_obs_steps: observation frames in the condition (one memory token each).
        extra_cond_dim: trailing condition features that get a token of their own (0: none).
        n_layer: decoder layers.
        n_head: attention heads; must divide n_emb.
        n_emb: token width.
        p_drop_emb: dropout on the token embeddings.
        p_drop_attn: dropout inside the decoder layers (attention and feed-forward).
        causal_attn: mask attention to later actions and later observation frames.
    """

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        horizon: int,
        n_obs_steps: int = 1,
        extra_cond_dim: int = 0,
        n_layer: int = 4,
        n_head: int = 4,
        n_emb: int = 128,
        p_drop_emb: float = 0.1,
        p_drop_attn: float = 0.1,
        causal_attn: bool = True,
    ) -> None:
        super().__init__()
        obs_dim = global_cond_dim - extra_cond_dim
        if n_obs_steps < 1 or obs_dim < 1 or obs_dim % n_obs_steps:
            raise ValueError(
                f"global_cond_dim {global_cond_dim} minus extra_cond_dim {extra_cond_dim} must split "
                f"into n_obs_steps={n_obs_steps} equal non-empty parts"
            )
        if n_emb % n_head:
            raise ValueError(f"n_emb {n_emb} must be divisible by n_head {n_head}")
        self.input_dim = input_dim
        self.global_cond_dim = global_cond_dim
        self.horizon = horizon
        self.n_obs_steps = n_obs_steps
        self.extra_cond_dim = extra_cond_dim
        self.causal_attn = causal_attn
        n_cond = 1 + n_obs_steps + (1 if extra_cond_dim else 0)

        # Action tokens.
        self.input_emb = nn.Linear(input_dim, n_emb)
        self.pos_emb = nn.Parameter(torch.zeros(1, horizon, n_emb))
        self.drop = nn.Dropout(p_drop_emb)
        # Condition memory: time, one token per observation frame (shared projection), extra.
        self.time_emb = SinusoidalStepEmbedding(n_emb)
        self.obs_emb = nn.Linear(obs_dim // n_obs_steps, n_emb)
        self.extra_emb = nn.Linear(extra_cond_dim, n_emb) if extra_cond_dim else None
        self.cond_pos_emb = nn.Parameter(torch.zeros(1, n_cond, n_emb))
        # A per-token residual MLP over the memory (Chi et al.'s default "encoder"), then a
        # LayerNorm: pre-norm decoder layers do not normalize the memory they cross-attend to,
        # and with small initial weights an unnormalized condition would barely reach the output.
        self.cond_encoder = nn.Sequential(
            nn.Linear(n_emb, 4 * n_emb), nn.Mish(), nn.Linear(4 * n_emb, n_emb)
        )
        self.cond_norm = nn.LayerNorm(n_emb)
        layer = nn.TransformerDecoderLayer(
            d_model=n_emb,
            nhead=n_head,
            dim_feedforward=4 * n_emb,
            dropout=p_drop_attn,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm, as in GPT-2 and Chi et al.
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=n_layer)
        self.ln_f = nn.LayerNorm(n_emb)
        self.head = nn.Linear(n_emb, input_dim)

        # Boolean masks, True = may NOT attend (nn.MultiheadAttention's convention).
        steps = torch.arange(horizon)
        self.register_buffer("causal_mask", steps[None, :] > steps[:, None], persistent=False)
        memory_mask = torch.zeros(horizon, n_cond, dtype=torch.bool)
        frames = torch.arange(n_obs_steps)
        memory_mask[:, 1 : 1 + n_obs_steps] = frames[None, :] > steps[:, None]
        self.register_buffer("memory_mask", memory_mask, persistent=False)

        self.apply(self._init_weights)
        nn.init.normal_(self.pos_emb, std=0.02)
        nn.init.normal_(self.cond_pos_emb, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2 init: small normal weights, zero biases (PyTorch's defaults are tuned for
        # ReLU MLPs, not for deep residual attention stacks).
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                weight = getattr(module, name)
                if weight is not None:
                    nn.init.normal_(weight, std=0.02)
            for name in ("in_proj_bias", "bias_k", "bias_v"):
                bias = getattr(module, name)
                if bias is not None:
                    nn.init.zeros_(bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int | float,
        global_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample (B,T,Da), timestep (B,) or scalar, global_cond (B,C) -> (B,T,Da); T <= horizon."""
        batch, length, _ = sample.shape
        if length > self.horizon:
            raise ValueError(
                f"sequence length {length} exceeds this transformer's horizon {self.horizon}"
            )
        if global_cond is None or global_cond.shape[-1] != self.global_cond_dim:
            got = None if global_cond is None else list(global_cond.shape)
            raise ValueError(
                f"this transformer needs a global_cond (B, {self.global_cond_dim}), got {got}"
            )
        steps = torch.as_tensor(timestep, device=sample.device)
        if steps.ndim == 0:
            steps = steps.expand(batch)

        # 1. Condition memory (B, n_cond, n_emb).
        obs = global_cond[:, : self.global_cond_dim - self.extra_cond_dim]
        tokens = [
            self.time_emb(steps)[:, None],
            self.obs_emb(obs.reshape(batch, self.n_obs_steps, -1)),
        ]
        if self.extra_emb is not None:
            tokens.append(self.extra_emb(global_cond[:, -self.extra_cond_dim :])[:, None])
        memory = self.drop(torch.cat(tokens, dim=1) + self.cond_pos_emb)
        memory = self.cond_norm(memory + self.cond_encoder(memory))

        # 2. Action tokens attend to each other and to the memory.
        x = self.drop(self.input_emb(sample) + self.pos_emb[:, :length])
        x = self.decoder(
            x,
            memory,
            tgt_mask=self.causal_mask[:length, :length] if self.causal_attn else None,
            memory_mask=self.memory_mask[:length] if self.causal_attn else None,
        )
        # 3. Back to action space.
        return self.head(self.ln_f(x))
