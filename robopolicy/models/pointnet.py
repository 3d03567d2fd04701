"""Light PointNet point-cloud encoder, as in 3D Diffusion Policy (DP3, Ze et al., RSS 2024).

A shared per-point MLP (Linear + LayerNorm + ReLU per layer), a max-pool over points (so the
point order does not matter) and a linear projection with LayerNorm. DP3 found this small
encoder, without PointNet's T-nets or BatchNorm, works better for policies than deeper ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PointNetEncoder(nn.Module):
    """(N, P, C) points (xyz metres + extra channels, e.g. an is-target-part flag) -> (N, feature_dim).

    Args:
        in_channels: values per point (4 for xyz + target flag).
        feature_dim: output features.
        channels: widths of the shared per-point MLP.
    """

    def __init__(
        self, in_channels: int = 4, feature_dim: int = 64, channels: Sequence[int] = (64, 128, 256)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers += [nn.Linear(c_in, c_out), nn.LayerNorm(c_out), nn.ReLU()]
            c_in = c_out
        self.mlp = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(c_in, feature_dim), nn.LayerNorm(feature_dim))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.project(self.mlp(points.float()).amax(dim=1))
