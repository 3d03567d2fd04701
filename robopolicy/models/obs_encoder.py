"""Observation encoder: turns a dict of observation tensors into one feature vector per frame.

Built from ``shape_meta["obs"]`` (``{key: {"shape": [...], "type": "low_dim" | "rgb"}}``):

- ``low_dim`` keys (e.g. ``proprio``, ``state``) are flattened and passed through unchanged
  (the policy normalizes them before encoding);
- ``rgb`` keys (e.g. ``rgb.agentview``, uint8 (H, W, 3) in the batch) go through their own small
  CNN trained from scratch: [stride-2 conv, conv] x stages with GroupNorm + Mish, a 1x1 conv to
  keypoint heatmaps, a spatial softmax (expected x, y of each heatmap in [-1, 1]) and a linear
  layer to ``rgb_feature_dim``. Images are converted to float CHW in [0, 1] inside the encoder,
  so they can stay uint8 until they reach the device.

Features are concatenated in sorted key order. Other observation types raise RobopolicyError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from robopolicy.errors import RobopolicyError

SUPPORTED_OBS_TYPES = ("low_dim", "rgb")


def module_name(key: str) -> str:
    """A module/buffer name for an observation key ('.' is not allowed there): 'rgb.a' -> 'rgb__a'."""
    return key.replace(".", "__")


def obs_type(key: str, attrs: Mapping) -> str:
    """The declared type of an obs key in shape_meta ('low_dim' when not given)."""
    kind = attrs.get("type", "low_dim")
    if kind not in SUPPORTED_OBS_TYPES:
        raise RobopolicyError(
            f"shape_meta obs key '{key}' has type '{kind}', which the policy encoder does not "
            f"support (supported: {', '.join(SUPPORTED_OBS_TYPES)})"
        )
    return kind


class SpatialSoftmax(nn.Module):
    """(N, K, H, W) heatmaps -> (N, 2K) expected (x, y) positions in [-1, 1], one pair per map."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        self.register_buffer(
            "grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1), persistent=False
        )

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        n, k = heatmaps.shape[:2]
        attention = heatmaps.reshape(n, k, -1).softmax(dim=-1)  # (N, K, H*W)
        return (attention @ self.grid).reshape(n, 2 * k)


class RgbEncoder(nn.Module):
    """Small from-scratch CNN for one camera: uint8 (N, H, W, 3) -> (N, feature_dim)."""

    def __init__(
        self,
        image_hw: tuple[int, int],
        feature_dim: int,
        channels: Sequence[int],
        num_keypoints: int,
        n_groups: int,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        height, width = image_hw
        for c_out in channels:
            if c_out % n_groups:
                raise ValueError(
                    f"rgb channels {list(channels)} must be divisible by n_groups={n_groups}"
                )
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.GroupNorm(n_groups, c_out),
                nn.Mish(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.GroupNorm(n_groups, c_out),
                nn.Mish(),
            ]
            c_in = c_out
            height, width = math.ceil(height / 2), math.ceil(width / 2)
        layers.append(nn.Conv2d(c_in, num_keypoints, 1))
        self.backbone = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(height, width)
        self.project = nn.Linear(2 * num_keypoints, feature_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        x = image.permute(0, 3, 1, 2)  # HWC -> CHW
        return self.project(self.keypoints(self.backbone(x)))


class ObsEncoder(nn.Module):
    """Encodes {key: (N, *shape)} observation tensors to (N, output_dim) features.

    Args:
        shape_meta: the dataset's shape metadata; only ``shape_meta["obs"]`` is read. rgb shapes
            are (H, W, 3), as stored in the dataset.
        rgb_feature_dim: feature size per rgb camera.
        rgb_channels: CNN channels per stage; each stage halves the image size.
        num_keypoints: heatmaps per camera fed to the spatial softmax.
        n_groups: GroupNorm groups in the CNN.
    """

    def __init__(
        self,
        shape_meta: Mapping,
        rgb_feature_dim: int = 64,
        rgb_channels: Sequence[int] = (32, 64, 128),
        num_keypoints: int = 32,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        obs_meta = shape_meta.get("obs") or {}
        if not obs_meta:
            raise RobopolicyError(
                "shape_meta has no 'obs' entries; the policy needs at least one observation key"
            )
        self.keys: list[str] = sorted(obs_meta)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.types: dict[str, str] = {}
        self.rgb = nn.ModuleDict()
        self._output_dim = 0
        names = {}
        for key in self.keys:
            attrs = obs_meta[key]
            kind = obs_type(key, attrs)
            shape = tuple(int(s) for s in attrs["shape"])
            name = module_name(key)
            if name in names:
                raise RobopolicyError(
                    f"shape_meta obs keys '{names[name]}' and '{key}' map to the same module name"
                )
            names[name] = key
            self.shapes[key], self.types[key] = shape, kind
            if kind == "rgb":
                if len(shape) != 3 or shape[2] != 3:
                    raise RobopolicyError(
                        f"shape_meta obs key '{key}' (rgb) has shape {list(shape)}; expected [H, W, 3]"
                    )
                self.rgb[name] = RgbEncoder(
                    shape[:2], rgb_feature_dim, rgb_channels, num_keypoints, n_groups
                )
                self._output_dim += rgb_feature_dim
            else:
                self._output_dim += math.prod(shape)

    @property
    def output_dim(self) -> int:
        """Size of the feature vector per frame."""
        return self._output_dim

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """obs: {key: (N, *shape)} (rgb uint8 HWC) -> (N, output_dim)."""
        features = []
        for key in self.keys:
            if key not in obs:
                raise RobopolicyError(f"observation is missing key '{key}' listed in shape_meta")
            x = obs[key]
            if tuple(x.shape[1:]) != self.shapes[key]:
                raise RobopolicyError(
                    f"observation '{key}' has per-frame shape {list(x.shape[1:])}, "
                    f"shape_meta says {list(self.shapes[key])}"
                )
            if self.types[key] == "rgb":
                features.append(self.rgb[module_name(key)](x))
            else:
                features.append(x.reshape(x.shape[0], -1).float())
        return torch.cat(features, dim=-1)
