"""Skill planners: the registry of planner classes by name, and `make_planner(cfg)`.

Importing this package is cheap (no torch, no transformers): built-in planners are listed as
``name -> "module:Class"`` and imported on first use (`robopolicy.registry.Registry`). A planner
class registers itself with ``@register_planner()`` (a built-in; its name is its entry in
the built-in table) or ``@register_planner("name")``, which also sets its ``name`` attribute.

    planner = make_planner({"name": "openai", "base_url": "http://127.0.0.1:8000/v1",
                            "model": "qwen2-vl"}, log_path=run / "test1" / "planner_log.jsonl")

A planner config (``configs/planner/<name>.yaml``) names the planner (``name``), may name its
class (``_target_``, which must be the registered class; `robopolicy.policies.io.check_targets`
also admits registered planners) and gives the constructor's keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from robopolicy.errors import RobopolicyError
from robopolicy.registry import Registry

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

_REGISTRY = Registry("planner", {
    "oracle": "robopolicy.planners.oracle:OraclePlanner",
    "openai": "robopolicy.planners.openai_compat:OpenAIPlanner",
    "transformers": "robopolicy.planners.local_vlm:TransformersPlanner",
    "learned": "robopolicy.planners.learned:LearnedPlanner",
})
# Keys a planner config holds that are not constructor arguments.
_CONFIG_ONLY = ("name", "_target_")

T = TypeVar("T", bound=type)


def register_planner(name: str | None = None) -> Callable[[T], T]:
    """Class decorator: register a Planner subclass under ``name`` and set ``cls.name``; a
    built-in passes no name (its name is its entry in the built-in table)."""
    return _REGISTRY.register(name)


def available_planners() -> list[str]:
    """Names of all known planners (built-in and registered)."""
    return _REGISTRY.available()


def planner_target(name: str) -> str:
    """The dotted class path a config's ``_target_`` names for planner ``name`` (no import)."""
    return _REGISTRY.target(name)


def planner_targets() -> dict[str, str]:
    """Every known planner's class path (``_target_``) -> its registry name."""
    return _REGISTRY.targets()


def get_planner_class(name: str) -> type[Planner]:
    """The planner class registered as ``name``; imports built-in planners on demand."""
    return _REGISTRY.get_class(name)


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
        raise _REGISTRY.unknown(name)
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
