"""Shared plumbing of the verb apps: the configs folder, hydra decoration, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from robopolicy.errors import RobopolicyError


def config_dir() -> Path:
    """The hydra configs folder: `configs/` of the checkout (override: ROBOPOLICY_CONFIGS)."""
    env = os.environ.get("ROBOPOLICY_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], object]], Callable[[], None]]:
    """Make `fn(cfg)` a hydra app on `configs/<config_name>.yaml` whose user errors
    (RobopolicyError, missing files) print as one line and exit with status 2."""

    def decorate(fn: Callable[[DictConfig], object]) -> Callable[[], None]:
        @functools.wraps(fn)
        def guarded(cfg: DictConfig) -> None:
            try:
                fn(cfg)
            except (RobopolicyError, FileNotFoundError) as e:
                logging.getLogger(fn.__module__).debug("user error", exc_info=True)
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)

        return hydra.main(version_base="1.3", config_path=str(config_dir()),
                          config_name=config_name)(guarded)

    return decorate


def output_dir() -> Path:
    """This run's output folder (hydra's run dir)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)
