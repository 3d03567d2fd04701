"""`make_env`: the one way PartManipEnv is built, from an EnvConfig or a plain (dict or hydra)
config and a task source or its config; and the gymnasium entry points built on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sims.partmanip.env import EnvConfig, PartManipEnv
from sims.partmanip.task_source import CatalogTasks, task_source
from sims.partmanip.tasks import TaskPool

TaskSource = TaskPool | CatalogTasks


def env_config(cfg: EnvConfig | Mapping[str, Any] | None) -> EnvConfig:
    """An EnvConfig from itself, a mapping of its fields (`suite.env`), or None (defaults)."""
    if cfg is None:
        return EnvConfig()
    if isinstance(cfg, EnvConfig):
        return cfg
    if isinstance(cfg, Mapping):
        return EnvConfig.from_config(cfg)
    raise TypeError(f"env config: expected an EnvConfig or a mapping, got {type(cfg).__name__}")


def make_env(cfg: EnvConfig | Mapping[str, Any] | None = None,
             tasks: TaskSource | Mapping[str, Any] | None = None,
             render_mode: str | None = "rgb_array") -> PartManipEnv:
    """A PartManipEnv. `cfg`: its EnvConfig (or `suite.env`'s mapping); `tasks`: a task source
    (TaskPool, CatalogTasks) or its config (`suite.tasks`); None gives the mug-lift pool.
    Cheap: the simulator is built at the first reset, inside the process that steps it."""
    source = task_source(tasks) if isinstance(tasks, Mapping) else tasks
    return PartManipEnv(env_config(cfg), source, render_mode=render_mode)


def partmanip_env(env: EnvConfig | Mapping[str, Any] | None = None,
                  tasks: Mapping[str, Any] | None = None,
                  render_mode: str | None = "rgb_array") -> PartManipEnv:
    """`robopolicy/PartManip-v0`: the suite's catalog episodes (`tasks` overrides the catalog
    config, e.g. ``{"split": "test1"}``)."""
    return make_env(env, {"source": "catalog", **(tasks or {})}, render_mode)


def mug_lift_env(env: EnvConfig | Mapping[str, Any] | None = None,
                 tasks: Mapping[str, Any] | None = None,
                 render_mode: str | None = "rgb_array") -> PartManipEnv:
    """`robopolicy/MugLift-v0`: the mug-lift task pool (`configs/suite/mug_lift.yaml`;
    `tasks` overrides its fields)."""
    return make_env(env, {"source": "pool", **(tasks or {})}, render_mode)
