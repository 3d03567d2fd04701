"""Simulator backends by name: `make_backend(EnvConfig.backend)` builds one.

A backend registers a zero-argument factory, or a "module:Class" string imported only when the
backend is made (so naming a backend costs nothing until it is used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sims.core.backend import Backend

BackendFactory = Callable[[], Backend]
_BACKENDS: dict[str, str | BackendFactory] = {
    "mujoco": "sims.mujoco:MujocoBackend",  # importing sims.mujoco chooses a headless GL first
    "pybullet": "sims.pybullet:PybulletBackend",
}


def register_backend(name: str, factory: str | BackendFactory) -> None:
    """Make `name` build backends with `factory` (a callable or "module:Class")."""
    if isinstance(factory, str) and factory.count(":") != 1:
        raise ValueError(f"backend {name!r}: {factory!r} is not 'module:Class'")
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    """The registered backends' names."""
    return sorted(_BACKENDS)


def check_backend(name: str) -> None:
    """Raise a one-line ValueError unless `name` is a registered backend."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(backend_names())})")


def make_backend(name: str) -> Backend:
    """A new backend `name` (not yet built: call `build(scene)`)."""
    check_backend(name)
    factory = _BACKENDS[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory()
