"""Evaluation episode lists: a task source's episodes from a seed, or a catalog split's
episodes by PartInstruct's protocol (a prefix of each category)."""

from __future__ import annotations

from dataclasses import dataclass

from robopolicy.errors import RobopolicyError


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: its index in its episode list, its task (TaskSpec as a dict),
    the group (a split's subfolder, "" for the run folder) and the position in that group
    (the first `videos` positions of each group are recorded)."""

    index: int
    task: dict
    group: str = ""
    position: int | None = None

    @property
    def key(self) -> int:
        """A number unique over all groups of a run (seeds the episode's sampling noise)."""
        return self.index + 1_000_000 * _group_number(self.group)


def _group_number(group: str) -> int:
    """A split's number (a perturbed split's too: it keeps the nominal split's policy noise)."""
    from sims.partmanip.catalog import SPLITS

    split = group.split("-")[0]
    return SPLITS.index(split) + 1 if split in SPLITS else 0


def split_group(split: str, perturb: str | None = None) -> str:
    """The group (subfolder and report key) of a split's episodes: the split, or
    `<split>-<perturb>` for a perturbation test split (so it never mixes with the nominal)."""
    return f"{split}-{perturb}" if perturb else split


def episode_list(task_config: dict, n: int, seed: int) -> list[EpisodeSpec]:
    """The fixed episode list of a run: the pool's tasks for seeds seed..seed+n-1."""
    from sims.partmanip.task_source import task_source

    try:
        pool = task_source(task_config)
    except ValueError as e:  # an unknown split, class or parameter of the suite's tasks
        raise RobopolicyError(f"eval: suite.tasks: {e}") from None
    if hasattr(pool, "episodes") and seed + n > len(pool):  # a catalog split: a fixed list
        raise RobopolicyError(f"split {pool.split} has {len(pool)} episodes; episodes={n} from "
                              f"seed={seed} runs past its end (use seed=0 episodes<={len(pool)})")
    return [EpisodeSpec(i, pool.task(seed + i).to_dict(), position=i) for i in range(n)]


def split_episodes(task_config: dict, split: str, per_cell: int | None = None,
                   perturb: str | None = None) -> list[EpisodeSpec]:
    """A catalog split's episodes: the first `per_cell` of each category (the catalog spreads
    each category's block round-robin over its task classes, so a prefix stays spread); all
    of them when `per_cell` is None. `perturb` names the group (`split_group`)."""
    from sims.partmanip.task_source import CatalogTasks, task_source

    if task_config.get("source", "pool") != "catalog":
        raise RobopolicyError("eval: splits=[...] are splits of the task catalog; evaluate with "
                              "suite=partmanip (suite.tasks.source=catalog)")
    try:
        pool = task_source({**task_config, "split": split})
    except ValueError as e:
        raise RobopolicyError(f"eval: splits: {e}") from None
    assert isinstance(pool, CatalogTasks)
    if per_cell is not None and per_cell > pool.episodes_per_cell:
        raise RobopolicyError(f"eval: episodes_per_cell={per_cell} exceeds the catalog's "
                              f"{pool.episodes_per_cell}; set suite.tasks.episodes_per_cell="
                              f"{per_cell} too (the catalog is rebuilt once)")
    taken: dict[str, int] = {}
    specs = []
    for i in range(len(pool)):
        task = pool.task(i)
        if per_cell is not None and taken.get(task.category, 0) >= per_cell:
            continue
        taken[task.category] = taken.get(task.category, 0) + 1
        specs.append(EpisodeSpec(i, task.to_dict(), split_group(split, perturb),
                                 position=len(specs)))
    return specs
