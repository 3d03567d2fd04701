"""Where `sims` finds its data: the repository's `assets/` folder (override: ROBOPOLICY_ASSETS)."""

from __future__ import annotations

import os
from pathlib import Path


def assets_dir() -> Path:
    """The assets folder with category specs (`assets/categories/<name>.yaml`)."""
    env = os.environ.get("ROBOPOLICY_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "assets"
