"""The Policy base class: what every policy exposes to training and evaluation.

A policy is an ``nn.Module`` with two verbs, ``compute_loss(batch)`` and
``predict_action(obs)``, and it owns its ``LinearNormalizer`` (in its state dict, so a saved
policy carries its data statistics). Shapes follow ``shape_meta`` from the dataset:

    shape_meta = {"obs": {"proprio": {"shape": [17], "type": "low_dim"},
                          "rgb.agentview": {"shape": [128, 128, 3], "type": "rgb"}},
                  "action": {"shape": [10]}}
    batch = {"obs": {key: Tensor (B, To, *shape)}, "action": Tensor (B, horizon, Da)}

Time windows follow Chi et al.: the policy sees ``n_obs_steps`` (To) frames, predicts
``horizon`` actions and returns ``n_action_steps`` (Ta) of them, starting at the action that
goes with the last observed frame.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from robopolicy.data.normalizer import LinearNormalizer
from robopolicy.errors import RobopolicyError
from robopolicy.models.obs_encoder import obs_type


def to_plain(value: Any) -> Any:
    """OmegaConf containers (as hydra passes them) -> plain dicts/lists; anything else unchanged."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_shape_meta(shape_meta: Any) -> dict:
    """Validate shape_meta's layout and return it as plain dicts/lists."""
    meta = to_plain(shape_meta)
    if not isinstance(meta, Mapping) or not isinstance(meta.get("obs"), Mapping) or not meta["obs"]:
        raise RobopolicyError("shape_meta must be a mapping with a non-empty 'obs' mapping")
    for key, attrs in meta["obs"].items():
        if not isinstance(attrs, Mapping) or "shape" not in attrs:
            raise RobopolicyError(f"shape_meta obs key '{key}' needs a 'shape'")
        obs_type(key, attrs)
    action = meta.get("action")
    if not isinstance(action, Mapping) or len(action.get("shape", ())) != 1:
        raise RobopolicyError("shape_meta['action'] must have a 1-D 'shape', e.g. {'shape': [10]}")
    return dict(meta)


class Policy(nn.Module, abc.ABC):
    """Base class of all policies.

    Args:
        shape_meta: dataset shape metadata (see module docstring).
        horizon: actions predicted per call.
        n_obs_steps: To, observation frames per call.
        n_action_steps: Ta, actions returned per call (executed before the next call).
        name: accepted so a config's ``name`` key can be passed through; must match the
            registered name when given.
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        shape_meta: Mapping,
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if name is not None and name != type(self).name:
            raise RobopolicyError(
                f"config name '{name}' does not match policy class {type(self).__name__} ('{type(self).name}')"
            )
        if n_obs_steps < 1 or n_action_steps < 1:
            raise RobopolicyError(
                f"n_obs_steps ({n_obs_steps}) and n_action_steps ({n_action_steps}) must be >= 1"
            )
        if n_obs_steps - 1 + n_action_steps > horizon:
            raise RobopolicyError(
                f"horizon {horizon} is too short for n_obs_steps {n_obs_steps} + n_action_steps "
                f"{n_action_steps} (needs >= n_obs_steps - 1 + n_action_steps)"
            )
        self.shape_meta = check_shape_meta(shape_meta)
        self.horizon = int(horizon)
        self.n_obs_steps = int(n_obs_steps)
        self.n_action_steps = int(n_action_steps)
        self.action_dim = int(self.shape_meta["action"]["shape"][0])
        self.low_dim_keys = sorted(
            k for k, v in self.shape_meta["obs"].items() if v.get("type", "low_dim") == "low_dim"
        )
        shapes = {"action": (self.action_dim,)}
        shapes |= {k: tuple(self.shape_meta["obs"][k]["shape"]) for k in self.low_dim_keys}
        self.normalizer = LinearNormalizer(shapes)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def fit_normalizer(self, data: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """Fit the normalizer from {"action": (N, Da), <low_dim obs key>: (N, *shape), ...}.

        Other keys (e.g. images) are ignored, so the dataset's arrays can be passed as they are.
        """
        needed = ["action", *self.low_dim_keys]
        missing = [k for k in needed if k not in data]
        if missing:
            raise RobopolicyError(f"fit_normalizer: data is missing key(s) {', '.join(missing)}")
        self.normalizer.fit({k: data[k] for k in needed})

    def check_obs(self, obs: Mapping[str, torch.Tensor]) -> int:
        """Validate an observation window {key: (B, >=To, *shape)}; returns B."""
        batch = None
        for key, attrs in self.shape_meta["obs"].items():
            if key not in obs:
                raise RobopolicyError(f"observation is missing key '{key}' listed in shape_meta")
            x = obs[key]
            expected = tuple(attrs["shape"])
            if (
                x.ndim != 2 + len(expected)
                or tuple(x.shape[2:]) != expected
                or x.shape[1] < self.n_obs_steps
            ):
                raise RobopolicyError(
                    f"observation '{key}' has shape {list(x.shape)}, expected "
                    f"[B, >={self.n_obs_steps}, {', '.join(map(str, expected))}]"
                )
            if batch is not None and x.shape[0] != batch:
                raise RobopolicyError(
                    f"observation '{key}' has batch size {x.shape[0]}, others have {batch}"
                )
            batch = x.shape[0]
        assert batch is not None  # shape_meta has at least one obs key
        return batch

    @abc.abstractmethod
    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Training loss on a batch; the returned dict has at least "loss" (a scalar)."""

    @abc.abstractmethod
    def predict_action(
        self,
        obs: Mapping[str, torch.Tensor],
        text: list[str] | None = None,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """obs {key: (B, To, *shape)} (+ optional instructions) -> actions (B, Ta, Da).

        Sampling policies take their initial noise (B, horizon, Da) from ``noise`` when given,
        else from ``generator``, else from torch's global RNG; deterministic policies ignore both.
        """

    def reset(self) -> None:
        """Clear any per-episode state (called at the start of each episode). No-op by default."""
