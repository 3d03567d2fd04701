"""Task specifications: skill chains over object parts, with their split and horizon.

Directions are in the robot base frame (PartInstruct's convention): left = +y, right = -y,
top = +z, bottom = -z, front = -x (towards the robot), back = +x (away from it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from sims.core.config import ConfigMixin

Skill = Literal["grasp", "touch", "move", "rotate", "release"]
Direction = Literal["front", "back", "left", "right", "top", "bottom"]
SKILLS: tuple[str, ...] = ("grasp", "touch", "move", "rotate", "release")
DIRECTIONS: dict[str, np.ndarray] = {
    "front": np.array([-1.0, 0.0, 0.0]),
    "back": np.array([1.0, 0.0, 0.0]),
    "left": np.array([0.0, 1.0, 0.0]),
    "right": np.array([0.0, -1.0, 0.0]),
    "top": np.array([0.0, 0.0, 1.0]),
    "bottom": np.array([0.0, 0.0, -1.0]),
}
MOVE_DISTANCE = 0.12  # metres
DEFAULT_HORIZON = 250  # control steps (400 for the novel task class split)


@dataclass(frozen=True)
class SkillCall:
    """One skill with its parameters, e.g. SkillCall("grasp", {"part": "handle"})."""

    skill: Skill
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.skill}({args})"


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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chain"] = [{"skill": s.skill, "params": dict(s.params)} for s in self.chain]
        d["skill_instructions"] = list(self.skill_instructions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        d = dict(d)
        d["chain"] = tuple(SkillCall(s["skill"], dict(s["params"])) for s in d["chain"])
        d["skill_instructions"] = tuple(d["skill_instructions"])
        return cls(**d)


def chain_for_class(task_class: int, part: str, direction: str | None = None) -> tuple[SkillCall, ...]:
    """The skill chain of a task class (classes 1 and 3 so far; the suite issue adds the rest)."""
    if task_class == 1:
        return (SkillCall("grasp", {"part": part}),)
    if task_class == 3:
        if direction not in DIRECTIONS:
            raise ValueError(f"task class 3 needs a direction in {sorted(DIRECTIONS)}, got {direction!r}")
        return (SkillCall("grasp", {"part": part}),
                SkillCall("move", {"direction": direction, "distance": MOVE_DISTANCE}))
    raise ValueError(f"task class {task_class} is not implemented yet (known: 1, 3)")


def make_task(task_class: int, category: str, part: str, direction: str | None = None,
              instance_id: int = 0, init_seed: int = 0, split: str = "train",
              horizon: int = DEFAULT_HORIZON, paraphrase: int = 0) -> TaskSpec:
    """Build a TaskSpec with its instructions; `task_id` names the task, not the episode."""
    from sims.partmanip.instructions import skill_instruction, task_instruction

    chain = chain_for_class(task_class, part, direction)
    params = f"{part}" + (f"-{direction}" if direction else "")
    return TaskSpec(
        task_id=f"c{task_class:02d}-{category}-{instance_id:04d}-{params}",
        task_class=task_class, category=category, instance_id=instance_id, init_seed=init_seed,
        chain=chain, instruction=task_instruction(task_class, category, chain, paraphrase),
        skill_instructions=tuple(skill_instruction(category, s) for s in chain),
        split=split, horizon=horizon,
    )


@dataclass(frozen=True)
class TaskPool(ConfigMixin):
    """The tasks episodes are drawn from, one per episode seed.

    A product of task classes x parts x directions x instances of one category; the task
    catalog (with splits) replaces it for the full suite. `task(seed)` is a pure function.
    """

    classes: tuple[int, ...] = (3,)
    category: str = "mug"
    parts: tuple[str, ...] = ("handle",)
    directions: tuple[str, ...] = ("top",)
    instances: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    split: str = "train"
    horizon: int = DEFAULT_HORIZON

    def task(self, seed: int) -> TaskSpec:
        """The task of episode `seed` (its initial state is drawn from the same seed)."""
        rng = np.random.default_rng([seed, 7919])
        task_class = int(rng.choice(self.classes))
        part = str(rng.choice(self.parts))
        direction = str(rng.choice(self.directions)) if task_class != 1 else None
        instance = int(rng.choice(self.instances))
        return make_task(task_class, self.category, part, direction, instance_id=instance,
                         init_seed=seed, split=self.split, horizon=self.horizon,
                         paraphrase=int(rng.integers(3)))
