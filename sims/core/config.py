"""Dataclass <-> plain-config conversion for settings that arrive from hydra (lists, dicts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="ConfigMixin")


class ConfigMixin:
    """`from_config` builds a (frozen) dataclass from a mapping (a dict or a hydra DictConfig),
    sequences (lists, hydra ListConfigs) becoming tuples and unknown keys an error; `to_config` gives the mapping back with lists (YAML/JSON friendly)."""

    @classmethod
    def from_config(cls: type[T], cfg: Mapping[str, Any]) -> T:
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)} (known: {sorted(known)})")
        return cls(**{k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
                      for k, v in cfg.items()})

    def to_config(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
