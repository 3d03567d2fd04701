"""ResNet-18 image encoder as in Diffusion Policy (Chi et al.) and PartInstruct's DP-S baseline.

torchvision's ``resnet18(weights=None)`` trained from scratch, with every BatchNorm replaced by
GroupNorm (channels // 16 groups: BatchNorm's running statistics misbehave with the small,
highly correlated batches of behaviour cloning and with EMA weights), and its avgpool + fc
replaced by a 1x1 conv to keypoint heatmaps, a spatial softmax and a linear projection.
"""

from __future__ import annotations

import math

import torch
import torchvision
from torch import nn

from robopolicy.errors import RobopolicyError
from robopolicy.models.image import SpatialSoftmax

RESNET_DOWNSAMPLING = 5  # stride-2 steps in a ResNet trunk: conv1, maxpool, layer2..layer4


def batchnorm_to_groupnorm(module: nn.Module, channels_per_group: int = 16) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` (in place) by GroupNorm(C // 16, C)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(max(1, c // channels_per_group), c))
        else:
            batchnorm_to_groupnorm(child, channels_per_group)
    return module


class ResNet18Encoder(nn.Module):
    """One camera: float (N, C, H, W) in [0, 1] -> (N, feature_dim).

    Args:
        image_hw: input height and width (after cropping).
        feature_dim: output features.
        num_keypoints: heatmaps fed to the spatial softmax.
        in_channels: 3 (rgb) or 4 (rgb + target-part mask); a 4-channel input gets a wider
            first conv, initialised like torchvision's.
    """

    def __init__(
        self,
        image_hw: tuple[int, int],
        feature_dim: int,
        num_keypoints: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        net = torchvision.models.resnet18(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        batchnorm_to_groupnorm(net)
        # conv1, bn1, relu, maxpool, layer1..layer4; avgpool and fc dropped
        self.backbone = nn.Sequential(*list(net.children())[:-2])
        self.heatmaps = nn.Conv2d(512, num_keypoints, kernel_size=1)
        height, width = image_hw
        for _ in range(RESNET_DOWNSAMPLING):  # every stride-2 step maps s to ceil(s / 2)
            height, width = math.ceil(height / 2), math.ceil(width / 2)
        if min(height, width) < 2:  # a 1-pixel axis makes that keypoint coordinate a constant
            raise RobopolicyError(
                f"resnet18 input {list(image_hw)} (after cropping) is too small: its last feature "
                f"map would be {height}x{width}; use images of at least 33 pixels a side after cropping"
            )
        self.keypoints = SpatialSoftmax(height, width)
        self.project = nn.Linear(2 * num_keypoints, feature_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.project(self.keypoints(self.heatmaps(self.backbone(image))))
