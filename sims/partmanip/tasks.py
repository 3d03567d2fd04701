"""Task specifications: skill chains over object parts, with their split and horizon.

Task classes and their chains live in `sims.partmanip.classes`; directions are in the robot
base frame (`sims.core.directions`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sims.core.config import ConfigMixin
from sims.partmanip.classes import TaskParams, build_chain, n_directions, placeholders
from sims.partmanip.instructions import skill_instruction, task_instruction
from sims.partmanip.skills import SKILLS as SKILLS  # re-exported: chains are built of them
from sims.partmanip.skills import Direction as Direction
from sims.partmanip.skills import Skill as Skill
from sims.partmanip.skills import SkillCall

DEFAULT_HORIZON = 250  # control steps (400 for the novel task class split)


@dataclass(frozen=True)
class TaskSpec:
    """A task: a skill chain on one object instance, started from the state drawn by `init_seed`."""

    task_id: str
    task_class: int
    category: str
    instance_id: int
    init_seed: int
    chain: tuple[SkillCall, ...]
    instruction: str
    skill_instructions: tuple[str, ...]
    split: str = "train"
    horizon: int = DEFAULT_HORIZON
    phases: tuple[int, ...] = (0,)  # chain index where each phase starts (two-phase classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chain"] = [{"skill": s.skill, "params": dict(s.params)} for s in self.chain]
        d["skill_instructions"] = list(self.skill_instructions)
        d["phases"] = list(self.phases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        d = dict(d)
        d["chain"] = tuple(SkillCall(s["skill"], dict(s["params"])) for s in d["chain"])
        d["skill_instructions"] = tuple(d["skill_instructions"])
        d["phases"] = tuple(d.get("phases", (0,)))
        return cls(**d)


def chain_for_class(task_class: int, params: TaskParams) -> tuple[tuple[SkillCall, ...], tuple[int, ...]]:
    """The skill chain of a task class (see `sims.partmanip.classes`) and its phase starts."""
    chain, starts = build_chain(task_class, params)
    return tuple(SkillCall(skill, p) for skill, p in chain), starts


def make_task(task_class: int, category: str, part: str, direction: str | None = None, *,
              directions: tuple[str, ...] = (), rotate_part: str | None = None,
              facing: str | None = None, part2: str | None = None, instance_id: int = 0,
              init_seed: int = 0, split: str = "train", horizon: int = DEFAULT_HORIZON,
              paraphrase: int = 0) -> TaskSpec:
    """Build a TaskSpec with its instructions. `direction` is shorthand for a single move
    direction; `task_id` names the task (class, category, parameters), not the instance."""
    dirs = ((direction,) if direction else ()) + tuple(directions)
    params = TaskParams(part, dirs, rotate_part, facing, part2)
    chain, phases = chain_for_class(task_class, params)
    return TaskSpec(
        task_id=f"c{task_class:02d}-{category}-{params.key()}",
        task_class=task_class, category=category, instance_id=instance_id, init_seed=init_seed,
        chain=chain, instruction=task_instruction(task_class, category, params, paraphrase),
        skill_instructions=tuple(skill_instruction(category, s) for s in chain),
        split=split, horizon=horizon, phases=phases,
    )


@dataclass(frozen=True)
class TaskPool(ConfigMixin):
    """The tasks episodes are drawn from, one per episode seed.

    A product of task classes x categories x instances x parts x directions; the task
    catalog (with splits) replaces it for the full suite. `task(seed)` is a pure function.
    `instances` applies to every category (ids beyond a category's count are skipped); empty
    means the category's training instances from the library's split manifest. `parts` that
    a category lacks are skipped; empty means the category's grasp parts.
    """

    classes: tuple[int, ...] = (3,)
    categories: tuple[str, ...] = ("mug",)
    parts: tuple[str, ...] = ("handle",)
    directions: tuple[str, ...] = ("top",)
    instances: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    split: str = "train"
    horizon: int = DEFAULT_HORIZON

    def __post_init__(self):
        for c in self.classes:
            extra = sorted(placeholders(c) - {"P", "D1", "D2", "D3"})
            if extra:
                raise ValueError(f"task pool: class {c} also needs {extra} (a second part, a "
                                 "rotation); the pool draws a part and move directions only: "
                                 "use suite.tasks.source=catalog")
        for c in self.categories:
            if not self.instances_of(c):
                raise ValueError(f"task pool: no instances of {c!r} among {list(self.instances)}")
            if not self.parts_of(c):
                raise ValueError(f"task pool: category {c!r} has none of the parts "
                                 f"{list(self.parts)}")

    def instances_of(self, category: str) -> list[int]:
        """The instance ids episodes of `category` draw from."""
        from sims.objects.library import n_instances, split_manifest

        if not self.instances:
            return list(split_manifest()["categories"][category]["train_instances"])
        n = n_instances(category)
        return [i for i in self.instances if 0 <= i < n]

    def parts_of(self, category: str) -> list[str]:
        """The parts episodes of `category` grasp."""
        from sims.objects.geometry import load_category_spec

        spec = load_category_spec(category)
        if not self.parts:
            return list(spec["grasp_parts"])
        return [p for p in self.parts if p in spec["parts"]]

    def _parts_of_instance(self, category: str, instance: int) -> list[str]:
        """The pool's parts of `category` that this instance has (some parts are optional, e.g.
        a bottle's neck exists only on uncapped bottles); if it has none of them, its grasp
        parts."""
        from sims.objects import make_instance
        from sims.objects.geometry import load_category_spec

        have = make_instance(category, instance).parts
        return ([p for p in self.parts_of(category) if p in have]
                or [p for p in load_category_spec(category)["grasp_parts"] if p in have])

    def task(self, seed: int) -> TaskSpec:
        """The task of episode `seed` (its initial state is drawn from the same seed)."""
        rng = np.random.default_rng([seed, 7919])
        task_class = int(rng.choice(self.classes))
        category = str(rng.choice(self.categories))
        instance = int(rng.choice(self.instances_of(category)))
        part = str(rng.choice(self._parts_of_instance(category, instance)))
        directions = tuple(str(d) for d in rng.choice(self.directions, n_directions(task_class)))
        return make_task(task_class, category, part, directions=directions, instance_id=instance,
                         init_seed=seed, split=self.split, horizon=self.horizon,
                         paraphrase=int(rng.integers(3)))
