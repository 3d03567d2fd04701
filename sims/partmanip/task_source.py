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
    catalog's seed (see `sims.partmanip.catalog`). `classes` keeps only the split's episodes of
    those task classes (in catalog order), e.g. (1, 2, 3) for a small multi-task study.
    `stratify: class` reorders them round-robin over task classes (each class in catalog
    order), so any prefix holds every class about equally (a class-stratified store)."""

    source: str = "catalog"
    split: str = "train"
    catalog_seed: int = 0
    train_episodes: int = 10_000
    episodes_per_cell: int = 16
    val_per_category: int = 4
    classes: tuple[int, ...] | None = None
    stratify: str | None = None

    def __post_init__(self):
        from sims.partmanip.catalog import SPLITS
        from sims.partmanip.classes import CLASSES

        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r} (known: {', '.join(SPLITS)})")
        unknown = sorted(set(self.classes or ()) - set(CLASSES))
        if unknown:
            raise ValueError(f"unknown task classes {unknown} (known: 1..{max(CLASSES)})")
        if self.stratify not in (None, "class"):
            raise ValueError(f"unknown stratify {self.stratify!r} (known: class, or null)")

    @cached_property
    def catalog(self) -> dict:
        from sims.partmanip.catalog import load_catalog

        return load_catalog(self.catalog_seed, self.train_episodes, self.episodes_per_cell,
                            self.val_per_category)

    @cached_property
    def episodes(self) -> list[dict]:
        """The split's episodes (of `classes` only, when given; class round-robin when
        stratified)."""
        episodes = self.catalog["episodes"][self.split]
        class_of = {t["task_id"]: t["task_class"] for t in self.catalog["tasks"]}
        if self.classes is not None:
            episodes = [e for e in episodes if class_of[e["task_id"]] in self.classes]
        if self.stratify == "class":
            by_class: dict[int, list[dict]] = {}
            for e in episodes:
                by_class.setdefault(class_of[e["task_id"]], []).append(e)
            queues = [by_class[k] for k in sorted(by_class)]
            episodes = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
        return episodes

    def __len__(self) -> int:
        return len(self.episodes)

    def task(self, index: int) -> TaskSpec:
        """The task of the split's episode `index`."""
        from sims.partmanip.catalog import task_spec

        episodes = self.episodes
        if not 0 <= index < len(episodes):
            which = f"split {self.split}" + (f" (classes {list(self.classes)})" if self.classes else "")
            raise IndexError(f"{which} has {len(episodes)} episodes; episode {index} does not exist")
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
