"""Shared plumbing of the verb apps: the configs folder, hydra decoration, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robopolicy.errors import RobopolicyError


def config_dir() -> Path:
    """The hydra configs folder: `configs/` of the checkout (override: ROBOPOLICY_CONFIGS)."""
    env = os.environ.get("ROBOPOLICY_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def is_eval_only(config_file: Path) -> bool:
    """Whether a policy config is evaluated only (`path: expert`, `path: bilevel`)."""
    return "\npath:" in "\n" + config_file.read_text()


def config_summaries(group: str, trainable: bool = False) -> str:
    """One help line per `configs/<group>/*.yaml`: its name and the first line of its leading
    comment (so a config file's first line is its one-line summary); `trainable`: not the
    eval-only configs (expert, bilevel: those that name their policy by a top-level `path`)."""
    files = sorted((config_dir() / group).glob("*.yaml"))
    if trainable:
        files = [f for f in files if not is_eval_only(f)]
    if not files:
        return f"  (no configs in {config_dir() / group})"
    width = max(len(f.stem) for f in files)
    lines = []
    for f in files:
        # hydra's `# @package` header lines come before the summary
        lines_ = [ln for ln in f.read_text().lstrip().splitlines() if not ln.startswith("# @")]
        first = lines_[0] if lines_ else ""
        summary = first.lstrip("#").strip() if first.startswith("#") else ""
        lines.append(f"  {f.stem:<{width}}  {summary}".rstrip())
    return "\n".join(lines)


# `${config_summaries:policy}` in a help header lists the group's configs as they are on disk,
# so a new config file shows up in `--help` without anyone editing the header.
OmegaConf.register_new_resolver("config_summaries", config_summaries, replace=True)
# `${dash_suffix:${perturb}}`: "-lighting" in a default run folder's name, "" when unset
OmegaConf.register_new_resolver("dash_suffix", lambda v: f"-{v}" if v else "", replace=True)


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], object]], Callable[[], None]]:
    """Make `fn(cfg)` a hydra app on `configs/<config_name>.yaml` whose user errors
    (RobopolicyError, missing files) print as one line and exit with status 2; Ctrl-C prints
    "interrupted" and exits with 130, as a shell reports it (what was written stays)."""

    def decorate(fn: Callable[[DictConfig], object]) -> Callable[[], None]:
        @functools.wraps(fn)
        def guarded(cfg: DictConfig) -> None:
            try:
                fn(cfg)
            except (RobopolicyError, FileNotFoundError) as e:
                logging.getLogger(fn.__module__).debug("user error", exc_info=True)
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                sys.exit(130)

        return hydra.main(version_base="1.3", config_path=str(config_dir()),
                          config_name=config_name)(guarded)

    return decorate


def output_dir() -> Path:
    """This run's output folder (hydra's run dir)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)
