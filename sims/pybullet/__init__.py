"""PyBullet backend: the Backend protocol on PyBullet (DIRECT mode, headless)."""

from __future__ import annotations

from sims.pybullet.backend import PybulletBackend

__all__ = ["PybulletBackend"]
