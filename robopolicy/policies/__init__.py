"""Policies: the registry of policy classes by name, plus lazy access to the base class and save/load.

Importing this package is cheap (no torch): built-in policies are listed as
``name -> "module:Class"`` and imported on first use. A policy class registers itself with
``@register_policy("name")`` (a built-in with ``@register_policy()``: its name is its entry in
the built-in table), which also sets its ``name`` attribute (the name written to checkpoints and
typed by users: ``policy=diffusion_unet``).

    cls = get_policy_class("diffusion_unet")
    from robopolicy.policies import Policy, load_policy, save_policy
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from robopolicy.registry import Registry

if TYPE_CHECKING:
    from robopolicy.policies.base import Policy
    from robopolicy.policies.io import load_policy, save_policy

__all__ = [
    "Policy",
    "available_policies",
    "get_policy_class",
    "load_policy",
    "policy_target",
    "policy_targets",
    "register_policy",
    "save_policy",
]

# Built-in policies, imported only when asked for by name.
_REGISTRY = Registry("policy", {
    "diffusion_unet": "robopolicy.policies.diffusion:DiffusionPolicy",
    "flow_matching": "robopolicy.policies.flow_matching:FlowMatchingPolicy",
    "bc": "robopolicy.policies.robomimic_adapter:BCPolicy",
    "bc_rnn": "robopolicy.policies.robomimic_adapter:BCRNNPolicy",
})

# Names re-exported lazily so `import robopolicy.policies` does not import torch.
_LAZY_ATTRS = {
    "Policy": "robopolicy.policies.base:Policy",
    "save_policy": "robopolicy.policies.io:save_policy",
    "load_policy": "robopolicy.policies.io:load_policy",
}

T = TypeVar("T", bound=type)


def register_policy(name: str | None = None) -> Callable[[T], T]:
    """Class decorator: register a Policy subclass under ``name`` and set ``cls.name``. A
    built-in policy passes no name: its name is its entry in the built-in table."""
    return _REGISTRY.register(name)


def available_policies() -> list[str]:
    """Names of all known policies (built-in and registered)."""
    return _REGISTRY.available()


def policy_target(name: str) -> str:
    """The dotted class path a config's ``_target_`` names for policy ``name`` (no import)."""
    return _REGISTRY.target(name)


def policy_targets() -> dict[str, str]:
    """Every known policy's class path (``_target_``) -> its registry name."""
    return _REGISTRY.targets()


def get_policy_class(name: str) -> type[Policy]:
    """The policy class registered as ``name``; imports built-in policies on demand."""
    return _REGISTRY.get_class(name)


def __getattr__(attr: str) -> Any:
    if attr in _LAZY_ATTRS:
        module, obj = _LAZY_ATTRS[attr].split(":")
        return getattr(importlib.import_module(module), obj)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
