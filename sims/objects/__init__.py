"""Procedural part-annotated object categories.

`make_instance(category, instance_id)` is the one entry point; each category registers a
generator in `GENERATORS`. Generation is deterministic from (category, instance_id).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sims.core.types import ObjectAsset
from sims.objects.mug import make_mug

GENERATORS: dict[str, Callable[[int], ObjectAsset]] = {
    "mug": make_mug,
}


def categories() -> list[str]:
    """Names of the registered categories."""
    return sorted(GENERATORS)


@lru_cache(maxsize=256)
def make_instance(category: str, instance_id: int) -> ObjectAsset:
    """The object instance `instance_id` of `category` (cached; treat the result as read-only)."""
    if category not in GENERATORS:
        raise KeyError(f"unknown object category {category!r}; known: {', '.join(categories())}")
    return GENERATORS[category](int(instance_id))
