"""1-D temporal U-Net that denoises action sequences (the network of Chi et al.'s Diffusion Policy).

The U-Net convolves over time: a sample is an action chunk (B, T, Da) treated as Da channels of
length T. Every residual block is conditioned by FiLM (a per-channel scale and bias) computed
from the diffusion-step embedding concatenated with a global condition vector (for a policy:
the encoded observation frames).

Example::

    net = ConditionalUnet1D(input_dim=10, global_cond_dim=68)
    eps = net(noisy_actions, timesteps, obs_features)  # (B, 16, 10) -> (B, 16, 10)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class SinusoidalStepEmbedding(nn.Module):
    """Maps diffusion steps (B,) to (B, dim) sin/cos features at geometric frequencies."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"step embedding dim must be even and >= 4, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        angles = steps.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    """Conv1d (same padding) -> GroupNorm -> Mish."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with FiLM between them and a residual connection.

    FiLM: ``h = h * (1 + scale) + bias`` with (scale, bias) = Linear(Mish(cond)), one pair per
    output channel, so a zero condition leaves the features unchanged.
    """

    def __init__(
        self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.conv_in = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.conv_out = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T), cond: (B, cond_dim) -> (B, C_out, T)."""
        h = self.conv_in(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = h * (1.0 + scale) + bias
        return self.conv_out(h) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Temporal U-Net: (noisy sample (B,T,Da), step, global condition (B,C)) -> (B,T,Da).

    Level i has ``down_dims[i]`` channels at length T / 2**i; every level but the deepest halves
    the length with a stride-2 conv on the way down and doubles it with a transposed conv on the
    way up, so T must be divisible by 2 ** (len(down_dims) - 1) (T=16 with 3 levels works).
    Each level's output on the way down is concatenated to its mirror on the way up.

    Args:
        input_dim: action dimension Da (channels of the sample).
        global_cond_dim: size C of the condition vector (0 for an unconditional net).
        diffusion_step_embed_dim: size of the sinusoidal step embedding (after its MLP).
        down_dims: channels per level, shallow to deep; each must be divisible by n_groups.
        kernel_size: temporal kernel of the convolutions (odd).
        n_groups: GroupNorm groups.
    """

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        diffusion_step_embed_dim: int = 128,
        down_dims: Sequence[int] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        down_dims = [int(d) for d in down_dims]
        if not down_dims:
            raise ValueError("down_dims must list at least one level")
        if any(d % n_groups for d in down_dims):
            raise ValueError(
                f"every entry of down_dims {down_dims} must be divisible by n_groups={n_groups}"
            )
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.input_dim = input_dim
        self.global_cond_dim = global_cond_dim
        self.n_levels = len(down_dims)

        dsed = diffusion_step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(dsed),
            nn.Linear(dsed, 4 * dsed),
            nn.Mish(),
            nn.Linear(4 * dsed, dsed),
        )
        cond_dim = dsed + global_cond_dim

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        # Down path: level i maps the previous level's channels to down_dims[i].
        self.down = nn.ModuleList()
        for i, c_out in enumerate(down_dims):
            c_in = input_dim if i == 0 else down_dims[i - 1]
            is_deepest = i == self.n_levels - 1
            self.down.append(
                nn.ModuleList(
                    [
                        block(c_in, c_out),
                        block(c_out, c_out),
                        nn.Identity()
                        if is_deepest
                        else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1),
                    ]
                )
            )

        c_mid = down_dims[-1]
        self.mid = nn.ModuleList([block(c_mid, c_mid), block(c_mid, c_mid)])

        # Up path, deep to shallow: concat the level's skip, map to the next shallower level's
        # channels, then upsample (except at the shallowest level).
        self.up = nn.ModuleList()
        for i in reversed(range(self.n_levels)):
            c_skip = down_dims[i]
            c_out = down_dims[max(i - 1, 0)]
            self.up.append(
                nn.ModuleList(
                    [
                        block(2 * c_skip, c_out),
                        block(c_out, c_out),
                        nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1)
                        if i > 0
                        else nn.Identity(),
                    ]
                )
            )

        self.head = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], input_dim, 1),
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int | float,
        global_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample (B,T,Da), timestep (B,) or scalar, global_cond (B,C) -> (B,T,Da)."""
        batch, horizon, _ = sample.shape
        stride = 2 ** (self.n_levels - 1)
        if horizon % stride:
            raise ValueError(
                f"sequence length {horizon} must be divisible by {stride} for {self.n_levels} U-Net levels"
            )
        steps = torch.as_tensor(timestep, device=sample.device)
        if steps.ndim == 0:
            steps = steps.expand(batch)
        cond = self.step_encoder(steps)
        if self.global_cond_dim:
            if global_cond is None:
                raise ValueError(f"this U-Net needs a global_cond of size {self.global_cond_dim}")
            cond = torch.cat([cond, global_cond], dim=-1)

        x = sample.transpose(1, 2)  # (B, Da, T): convolve over time
        skips = []
        for block_a, block_b, downsample in self.down:
            x = block_b(block_a(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for mid_block in self.mid:
            x = mid_block(x, cond)
        for block_a, block_b, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = block_b(block_a(x, cond), cond)
            x = upsample(x)
        return self.head(x).transpose(1, 2)
