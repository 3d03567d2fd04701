"""Observation encoder: turns a dict of observation tensors into one feature vector per frame.

Built from ``shape_meta["obs"]`` (``{key: {"shape": [...], "type": ...}}``), by type:

- ``low_dim`` (e.g. ``proprio``, ``state``): flattened and passed through unchanged (the policy
  normalizes them before encoding);
- ``rgb`` (e.g. ``rgb.agentview``, uint8 (H, W, 3) in the batch): one image encoder per camera,
  trained from scratch, ending in keypoint heatmaps, a spatial softmax (expected x, y of each
  heatmap in [-1, 1]) and a linear layer to ``rgb_feature_dim``. ``rgb_backbone`` picks the
  trunk: ``small_cnn`` ([stride-2 conv, conv] x stages, GroupNorm + Mish) or ``resnet18``
  (Chi et al.'s ResNet-18 with GroupNorm, see ``robopolicy.models.resnet``). With
  ``crop_ratio`` < 1 images are cropped to that fraction of H and W, at a random place per
  sample in training and at the centre in eval. Images stay uint8 until they reach the encoder;
- ``mask`` (``part_mask.<cam>``, bool (H, W)): not encoded on its own; it becomes a 4th input
  channel of the ``rgb.<cam>`` encoder (cropped with the same window), so that camera's first
  conv takes 4 channels;
- ``pcd`` (``pcd``, float32 (P, 4): xyz in metres + is-target-part flag): a light PointNet
  (``robopolicy.models.pointnet``) to ``pcd_feature_dim``.

Features are concatenated in sorted key order. Other observation types raise RobopolicyError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from robopolicy.errors import RobopolicyError
from robopolicy.models.image import SpatialSoftmax, crop_images, crop_size, stack_mask, to_float_chw
from robopolicy.models.pointnet import PointNetEncoder
from robopolicy.models.resnet import ResNet18Encoder

SUPPORTED_OBS_TYPES = ("low_dim", "rgb", "mask", "pcd")
RGB_BACKBONES = ("small_cnn", "resnet18")

__all__ = ["ObsEncoder", "RgbEncoder", "SpatialSoftmax", "module_name", "obs_type"]


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


def camera_of(key: str) -> str:
    """The camera an image key belongs to: 'rgb.agentview' -> 'agentview'."""
    return key.partition(".")[2]


class RgbEncoder(nn.Module):
    """Small from-scratch CNN for one camera: float (N, C, H, W) in [0, 1] -> (N, feature_dim)."""

    def __init__(
        self,
        image_hw: tuple[int, int],
        feature_dim: int,
        channels: Sequence[int],
        num_keypoints: int,
        n_groups: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
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
        return self.project(self.keypoints(self.backbone(image)))


class ObsEncoder(nn.Module):
    """Encodes {key: (N, *shape)} observation tensors to (N, output_dim) features.

    Args:
        shape_meta: the dataset's shape metadata; only ``shape_meta["obs"]`` is read. rgb shapes
            are (H, W, 3), mask shapes (H, W), pcd shapes (P, 4), as stored in the dataset.
        rgb_backbone: ``small_cnn`` (default) or ``resnet18``.
        rgb_feature_dim: feature size per rgb camera.
        rgb_channels: small_cnn channels per stage; each stage halves the image size.
        num_keypoints: heatmaps per camera fed to the spatial softmax.
        n_groups: GroupNorm groups in the small_cnn (resnet18 uses channels // 16).
        crop_ratio: fraction of H and W kept by the crop (1.0 = no crop; Chi et al. use ~0.9).
        pcd_feature_dim: feature size of the point-cloud encoder.
        pcd_channels: widths of the PointNet's shared per-point MLP.
    """

    def __init__(
        self,
        shape_meta: Mapping,
        rgb_backbone: str = "small_cnn",
        rgb_feature_dim: int = 64,
        rgb_channels: Sequence[int] = (32, 64, 128),
        num_keypoints: int = 32,
        n_groups: int = 8,
        crop_ratio: float = 1.0,
        pcd_feature_dim: int = 64,
        pcd_channels: Sequence[int] = (64, 128, 256),
    ) -> None:
        super().__init__()
        obs_meta = shape_meta.get("obs") or {}
        if not obs_meta:
            raise RobopolicyError(
                "shape_meta has no 'obs' entries; the policy needs at least one observation key"
            )
        if rgb_backbone not in RGB_BACKBONES:
            raise RobopolicyError(
                f"obs_encoder.rgb_backbone '{rgb_backbone}' is not one of {', '.join(RGB_BACKBONES)}"
            )
        if not 0.0 < crop_ratio <= 1.0:
            raise RobopolicyError(f"obs_encoder.crop_ratio {crop_ratio} must be in (0, 1]")
        self.keys: list[str] = sorted(obs_meta)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.types: dict[str, str] = {}
        self.crop_ratio = float(crop_ratio)
        self.crop_sizes: dict[str, tuple[int, int]] = {}
        self.masks: dict[str, str] = {}  # rgb key -> the mask key stacked onto it
        self.rgb = nn.ModuleDict()
        self.pcd = nn.ModuleDict()
        self._output_dim = 0
        names: dict[str, str] = {}
        for key in self.keys:
            attrs = obs_meta[key]
            self.types[key] = obs_type(key, attrs)
            self.shapes[key] = tuple(int(s) for s in attrs["shape"])
            name = module_name(key)
            if name in names:
                raise RobopolicyError(
                    f"shape_meta obs keys '{names[name]}' and '{key}' map to the same module name"
                )
            names[name] = key
        rgb_by_camera = {camera_of(k): k for k in self.keys if self.types[k] == "rgb"}
        for key in self.keys:
            if self.types[key] != "mask":
                continue
            rgb_key = rgb_by_camera.get(camera_of(key))
            if rgb_key is None:
                raise RobopolicyError(
                    f"shape_meta obs key '{key}' (mask) has no rgb key of the same camera "
                    f"(rgb.{camera_of(key)}) to be stacked onto"
                )
            if rgb_key in self.masks:
                raise RobopolicyError(
                    f"shape_meta obs keys '{self.masks[rgb_key]}' and '{key}' are both masks "
                    f"for '{rgb_key}'"
                )
            if self.shapes[key] != self.shapes[rgb_key][:2]:
                raise RobopolicyError(
                    f"shape_meta obs key '{key}' (mask) has shape {list(self.shapes[key])}; "
                    f"expected [H, W] of '{rgb_key}', {list(self.shapes[rgb_key][:2])}"
                )
            self.masks[rgb_key] = key
        for key in self.keys:
            kind, shape, name = self.types[key], self.shapes[key], module_name(key)
            if kind == "rgb":
                if len(shape) != 3 or shape[2] != 3:
                    raise RobopolicyError(
                        f"shape_meta obs key '{key}' (rgb) has shape {list(shape)}; expected [H, W, 3]"
                    )
                size = self.crop_sizes[key] = crop_size(shape[:2], self.crop_ratio)
                in_channels = 4 if key in self.masks else 3
                if rgb_backbone == "resnet18":
                    self.rgb[name] = ResNet18Encoder(
                        size, rgb_feature_dim, num_keypoints, in_channels
                    )
                else:
                    self.rgb[name] = RgbEncoder(
                        size, rgb_feature_dim, rgb_channels, num_keypoints, n_groups, in_channels
                    )
                self._output_dim += rgb_feature_dim
            elif kind == "pcd":
                if len(shape) != 2 or shape[1] < 3:
                    raise RobopolicyError(
                        f"shape_meta obs key '{key}' (pcd) has shape {list(shape)}; expected "
                        "[points, 3 + extra channels], e.g. [512, 4]"
                    )
                self.pcd[name] = PointNetEncoder(shape[1], pcd_feature_dim, pcd_channels)
                self._output_dim += pcd_feature_dim
            elif kind == "low_dim":
                self._output_dim += math.prod(shape)
            # mask keys add nothing: their rgb encoder consumes them

    @property
    def output_dim(self) -> int:
        """Size of the feature vector per frame."""
        return self._output_dim

    def _check(self, obs: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        if key not in obs:
            raise RobopolicyError(f"observation is missing key '{key}' listed in shape_meta")
        x = obs[key]
        if tuple(x.shape[1:]) != self.shapes[key]:
            raise RobopolicyError(
                f"observation '{key}' has per-frame shape {list(x.shape[1:])}, "
                f"shape_meta says {list(self.shapes[key])}"
            )
        return x

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """obs: {key: (N, *shape)} (rgb uint8 HWC, masks bool HW) -> (N, output_dim)."""
        features = []
        for key in self.keys:
            x = self._check(obs, key)
            kind = self.types[key]
            if kind == "rgb":
                mask_key = self.masks.get(key)
                x = stack_mask(x, self._check(obs, mask_key) if mask_key else None)
                x = crop_images(x, self.crop_sizes[key], random=self.training)
                features.append(self.rgb[module_name(key)](to_float_chw(x)))
            elif kind == "pcd":
                features.append(self.pcd[module_name(key)](x))
            elif kind == "low_dim":
                features.append(x.reshape(x.shape[0], -1).float())
        return torch.cat(features, dim=-1)
