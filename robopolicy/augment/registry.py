"""Augmenters by name (`configs/augment/<name>.yaml` names one): built-ins are imported only when
asked for."""

from __future__ import annotations

from robopolicy.registry import Registry

AUGMENTERS = Registry("augmenter", {
    "pose": "robopolicy.augment.pose_aug:PoseAugmenter",
    "swap": "robopolicy.augment.swap_aug:SwapAugmenter",
    "lighting": "robopolicy.augment.rerender_aug:LightingAugmenter",
    "camera": "robopolicy.augment.rerender_aug:CameraAugmenter",
    "image2d": "robopolicy.augment.image2d_aug:Image2dAugmenter",
    "appearance": "robopolicy.augment.appearance_aug:AppearanceAugmenter",
})
register_augmenter = AUGMENTERS.register


def augmenter_class(name: str) -> type:
    """The augmenter class called `name`; an unknown name is a one-line RobopolicyError."""
    return AUGMENTERS.get_class(name)
