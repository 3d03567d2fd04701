"""Image helpers shared by the rgb encoders: mask stacking, train/eval crops, spatial softmax.

Images arrive as the dataset stores them, channel-last (N, H, W, C) and usually uint8; they are
cropped there (cheap on uint8) and only then turned into float (N, C, h, w) in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn


def stack_mask(image: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(N, H, W, 3) image + optional (N, H, W) bool mask -> (N, H, W, 3 or 4), image's dtype.

    The mask becomes a 4th channel on the image's scale (255 for uint8, 1 for float), so one
    crop window and one conversion serve both.
    """
    if mask is None:
        return image
    m = mask.to(image.dtype).unsqueeze(-1)
    if image.dtype == torch.uint8:
        m = m * 255
    return torch.cat([image, m], dim=-1)


def crop_size(image_hw: tuple[int, int], crop_ratio: float) -> tuple[int, int]:
    """Height and width of the crop window: ``crop_ratio`` of each side, at least 1 pixel."""
    return tuple(max(1, round(s * crop_ratio)) for s in image_hw)  # type: ignore[return-value]


def crop_images(x: torch.Tensor, size: tuple[int, int], random: bool) -> torch.Tensor:
    """Crop (N, H, W, C) to (N, h, w, C): a random window per sample, or the centre window.

    Random offsets come from torch's global RNG, so ``torch.manual_seed`` fixes them.
    """
    n, height, width = x.shape[:3]
    h, w = size
    if (h, w) == (height, width):
        return x
    if not random:
        top, left = (height - h) // 2, (width - w) // 2
        return x[:, top : top + h, left : left + w]
    top = torch.randint(0, height - h + 1, (n, 1), device=x.device)
    left = torch.randint(0, width - w + 1, (n, 1), device=x.device)
    rows = (top + torch.arange(h, device=x.device))[:, :, None]  # (N, h, 1)
    cols = (left + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return x[batch, rows, cols]  # one gather for the whole batch, no loop over samples


def to_float_chw(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) uint8 (0..255) or float (0..1) -> float (N, C, H, W) in [0, 1]."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.permute(0, 3, 1, 2)


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
