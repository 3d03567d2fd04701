"""Skill planners: the registry of planner classes by name, and `make_planner(cfg)`.

Importing this package is cheap (no torch, no transformers): built-in planners are listed as
``name -> "module:Class"`` and imported on first use, as the policy registry does. A planner
class registers itself with ``@register_planner()`` (a built-in; its name is its entry in
``_BUILTIN``) or ``@register_planner("name")``, which also sets its ``name`` attribute.

    planner = make_planner({"name": "openai", "base_url": "http://127.0.0.1:8000/v1",
                            "model": "qwen2-vl"}, log_path=run / "test1" / "planner_log.jsonl")

A planner config (``configs/planner/<name>.yaml``) names the planner (``name``), may name its
class (``_target_``, which must be the registered class; `robopolicy.policies.io.check_targets`
also admits registered planners) and gives the constructor's keyword arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from robopolicy.errors import RobopolicyError

if TYPE_CHECKING:
    from robopolicy.planners.base import Planner

__all__ = [
    "available_planners",
    "get_planner_class",
    "make_planner",
    "planner_target",
    "planner_targets",
    "register_planner",
]

_BUILTIN: dict[str, str] = {
    "oracle": "robopolicy.planners.oracle:OraclePlanner",
    "openai": "robopolicy.planners.openai_compat:OpenAIPlanner",
    "transformers": "robopolicy.planners.local_vlm:TransformersPlanner",
    "learned": "robopolicy.planners.learned:LearnedPlanner",
}
_REGISTRY: dict[str, type] = {}
# Keys a planner config holds that are not constructor arguments.
_CONFIG_ONLY = ("name", "_target_")

T = TypeVar("T", bound=type)


def register_planner(name: str | None = None) -> Callable[[T], T]:
    """Class decorator: register a Planner subclass under ``name`` and set ``cls.name``; a
    built-in passes no name (its name is its entry in the built-in table)."""

    def decorator(cls: T) -> T:
        nonlocal name
        path = f"{cls.__module__}:{cls.__qualname__}"
        if name is None:
            names = [n for n, p in _BUILTIN.items() if p == path]
            if not names:
                raise RobopolicyError(f"{cls.__module__}.{cls.__qualname__} is not a built-in "
                                      "planner: register it with a name, @register_planner(\"name\")")
            name = names[0]
        builtin = _BUILTIN.get(name)
        if builtin is not None and builtin != path:
            raise RobopolicyError(f"planner name '{name}' is the built-in {builtin}; "
                                  f"{cls.__module__}.{cls.__qualname__} cannot take it")
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise RobopolicyError(f"planner name '{name}' is already registered by "
                                  f"{known.__module__}.{known.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_planners() -> list[str]:
    """Names of all known planners (built-in and registered)."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def _unknown(name: Any) -> RobopolicyError:
    return RobopolicyError(f"unknown planner '{name}' (known: {', '.join(available_planners())})")


def planner_target(name: str) -> str:
    """The dotted class path a config's ``_target_`` names for planner ``name`` (no import)."""
    if name in _REGISTRY:
        cls = _REGISTRY[name]
        return f"{cls.__module__}.{cls.__qualname__}"
    if name in _BUILTIN:
        return _BUILTIN[name].replace(":", ".")
    raise _unknown(name)


def planner_targets() -> dict[str, str]:
    """Every known planner's class path (``_target_``) -> its registry name."""
    return {planner_target(name): name for name in available_planners()}


def get_planner_class(name: str) -> type[Planner]:
    """The planner class registered as ``name``; imports built-in planners on demand."""
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name].split(":")[0])
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def make_planner(cfg: Mapping[str, Any], **runtime: Any) -> Planner:
    """Build the planner a config names: ``cfg["name"]`` picks the class, the other keys (and
    ``runtime``, e.g. ``log_path``, which win) are its keyword arguments. An unknown name, a
    ``_target_`` other than the registered class, or an unknown key fails in one line."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise RobopolicyError("planner config needs a 'name' (e.g. planner=oracle; known: "
                              f"{', '.join(available_planners())})")
    name = cfg["name"]
    if not isinstance(name, str):
        raise _unknown(name)
    cls = get_planner_class(name)
    # nothing a config names is imported: `_target_` may only repeat the registered class
    if "_target_" in cfg and cfg["_target_"] != planner_target(name):
        raise RobopolicyError(f"planner config '{name}': _target_ {cfg['_target_']!r} is not "
                              f"the '{name}' planner ({planner_target(name)})")
    kwargs = {k: v for k, v in cfg.items() if k not in _CONFIG_ONLY} | runtime
    try:
        return cls(**kwargs)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise RobopolicyError(f"planner '{name}': {str(exc).splitlines()[0]}") from None
