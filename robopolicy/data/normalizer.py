"""Per-key, per-dimension min-max normalizer to [-1, 1] that lives in a policy's state dict.

Fit it once on the training data (arrays (N, *shape) per key); it stores, for every key, the
data min/max and the affine map ``x_norm = x * scale + offset`` as buffers, so it is saved and
loaded with the policy's weights (safetensors, no pickling). A dimension whose range is below
``min_range`` (in data units) is centred on 0 and scaled as if its range were ``min_range``:
stretching a (nearly) constant dimension to [-1, 1] would turn a tiny deviation at test time
(a 0.7 degree gripper tilt where the demos held it exactly level) into a huge input.

Example::

    normalizer = LinearNormalizer({"action": (10,), "proprio": (17,)})
    normalizer.fit({"action": actions, "proprio": proprio})       # numpy or torch, (N, dim)
    x = normalizer.normalize("action", batch_actions)             # (..., 10) in [-1, 1]

Keys may contain dots (``rgb.agentview``); buffer names cannot, so they are mapped
('.' -> '__') and the original key is kept in a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robopolicy.errors import RobopolicyError


def _buffer_name(key: str) -> str:
    return key.replace(".", "__")


class _KeyStats(nn.Module):
    """The buffers of one key: data min/max, the affine map and whether it was fitted."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("min", torch.zeros(shape))
        self.register_buffer("max", torch.zeros(shape))
        self.register_buffer("scale", torch.ones(shape))
        self.register_buffer("offset", torch.zeros(shape))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))


class LinearNormalizer(nn.Module):
    """Min-max normalizer to [-1, 1] per key and per dimension.

    Args:
        shapes: optional {key: per-sample shape} to create the buffers up front (needed to
            load a state dict into a fresh, unfitted normalizer). ``fit`` adds missing keys.
        min_range: the smallest range (max - min, data units) a dimension is stretched over;
            narrower dimensions map into a sub-interval of [-1, 1] around 0.
    """

    def __init__(
        self, shapes: Mapping[str, Sequence[int]] | None = None, min_range: float = 0.05
    ) -> None:
        super().__init__()
        self.min_range = min_range
        self.stats = nn.ModuleDict()
        self._keys: dict[str, str] = {}  # buffer name -> original key
        for key, shape in (shapes or {}).items():
            self._add_key(key, tuple(int(s) for s in shape))

    def _add_key(self, key: str, shape: tuple[int, ...]) -> _KeyStats:
        name = _buffer_name(key)
        if name in self._keys and self._keys[name] != key:
            raise RobopolicyError(
                f"normalizer keys '{self._keys[name]}' and '{key}' map to the same buffer name"
            )
        self._keys[name] = key
        self.stats[name] = _KeyStats(shape)
        return self.stats[name]

    @property
    def keys(self) -> list[str]:
        """The keys this normalizer has buffers for."""
        return list(self._keys.values())

    def __contains__(self, key: str) -> bool:
        return _buffer_name(key) in self._keys

    def _get(self, key: str) -> _KeyStats:
        name = _buffer_name(key)
        if name not in self._keys:
            raise RobopolicyError(
                f"normalizer has no key '{key}' (has: {', '.join(self.keys) or 'none'})"
            )
        return self.stats[name]

    @torch.no_grad()
    def fit(self, data: Mapping[str, np.ndarray | torch.Tensor]) -> LinearNormalizer:
        """Fit min-max statistics per key from arrays of shape (N, *shape); returns self."""
        for key, array in data.items():
            values = torch.as_tensor(np.asarray(array) if not torch.is_tensor(array) else array)
            values = values.detach().to("cpu", torch.float64)
            if values.ndim == 0 or values.shape[0] == 0:
                raise RobopolicyError(
                    f"cannot fit normalizer key '{key}': no samples (shape {list(values.shape)})"
                )
            if not torch.isfinite(values).all():
                raise RobopolicyError(
                    f"cannot fit normalizer key '{key}': data contains NaN or inf"
                )
            shape = tuple(values.shape[1:])
            if key in self:
                stats = self._get(key)
                if tuple(stats.scale.shape) != shape:
                    raise RobopolicyError(
                        f"cannot fit normalizer key '{key}': data has per-sample shape {list(shape)}, "
                        f"expected {list(stats.scale.shape)}"
                    )
            else:
                stats = self._add_key(key, shape).to(self._device())
            lo, hi = values.amin(dim=0), values.amax(dim=0)
            # Wide dims: lo -> -1, hi -> +1. Narrow ones: centred, scaled by min_range.
            scale = 2.0 / (hi - lo).clamp_min(self.min_range)
            offset = -(lo + hi) / 2 * scale
            for buffer, value in (("min", lo), ("max", hi), ("scale", scale), ("offset", offset)):
                getattr(stats, buffer).copy_(value)
            stats.fitted.fill_(True)
        return self

    def _device(self) -> torch.device:
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    def _fitted(self, key: str) -> _KeyStats:
        stats = self._get(key)
        if not bool(stats.fitted):
            raise RobopolicyError(
                f"normalizer key '{key}' was never fitted; call policy.fit_normalizer(data) before training"
            )
        return stats

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """x (..., *shape) in data units -> roughly [-1, 1], same dtype."""
        stats = self._fitted(key)
        return (x * stats.scale + stats.offset).to(x.dtype)

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``normalize``."""
        stats = self._fitted(key)
        return ((x - stats.offset) / stats.scale).to(x.dtype)
