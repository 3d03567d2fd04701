"""Procedural part-annotated object categories.

Each category has a spec `assets/categories/<category>.yaml` and a generator module
`sims/objects/<category>.py` with `generate(instance_id) -> ObjectAsset`.
`make_instance(category, instance_id)` is the one entry point; generation is deterministic
from (category, instance_id).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache

from sims.core.types import ObjectAsset

CATEGORIES: tuple[str, ...] = (
    "scissors", "kitchen_pot", "laptop", "eyeglasses", "bucket", "display", "pliers",
    "bottle", "knife", "stapler", "kettle", "mug", "box", "dispenser",
)


def categories() -> list[str]:
    """Names of the object categories, in PartInstruct's order."""
    return list(CATEGORIES)


def generator(category: str) -> Callable[[int], ObjectAsset]:
    """The `generate(instance_id)` function of a category."""
    if category not in CATEGORIES:
        raise KeyError(f"unknown object category {category!r}; known: {', '.join(CATEGORIES)}")
    return importlib.import_module(f"sims.objects.{category}").generate


@lru_cache(maxsize=256)
def make_instance(category: str, instance_id: int) -> ObjectAsset:
    """The object instance `instance_id` of `category` (cached; treat the result as read-only)."""
    return generator(category)(int(instance_id))
