"""Where an episode's task comes from: the suite's catalog (a split's fixed episode list) or a
small TaskPool (a product of classes x categories x parts, as the quickstart uses).

Both answer `task(i)` with the TaskSpec of episode i; `task_source(config)` picks one from
the `suite.tasks` config (`source: catalog` or `source: pool`, the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sims.core.config import ConfigMixin
from sims.partmanip.tasks import TaskPool, TaskSpec


@dataclass(frozen=True)
class CatalogTasks(ConfigMixin):
    """Episode i of a catalog split: its task, instance and initial state, fixed by the
    catalog's seed (see `sims.partmanip.catalog`)."""

    source: str = "catalog"
    split: str = "train"
    catalog_seed: int = 0
    train_episodes: int = 10_000
    episodes_per_cell: int = 16
    val_per_category: int = 4

    def __post_init__(self):
        from sims.partmanip.catalog import SPLITS

        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r} (known: {', '.join(SPLITS)})")

    @cached_property
    def catalog(self) -> dict:
        from sims.partmanip.catalog import load_catalog

        return load_catalog(self.catalog_seed, self.train_episodes, self.episodes_per_cell,
                            self.val_per_category)

    def __len__(self) -> int:
        return len(self.catalog["episodes"][self.split])

    def task(self, index: int) -> TaskSpec:
        """The task of the split's episode `index`."""
        from sims.partmanip.catalog import task_spec

        episodes = self.catalog["episodes"][self.split]
        if not 0 <= index < len(episodes):
            raise IndexError(f"split {self.split} has {len(episodes)} episodes; episode {index} "
                             "does not exist")
        return task_spec(self.catalog, episodes[index], self.split)


def task_source(config: dict) -> TaskPool | CatalogTasks:
    """The task source a `suite.tasks` config describes."""
    cfg = dict(config)
    kind = cfg.pop("source", "pool")
    if kind == "catalog":
        return CatalogTasks.from_config({**cfg, "source": kind})
    if kind == "pool":
        return TaskPool.from_config(cfg)
    raise ValueError(f"unknown task source {kind!r} (known: catalog, pool)")
