"""Skills and skill calls: the vocabulary task chains, instructions and the expert share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Skill = Literal["grasp", "touch", "move", "rotate", "release"]
Direction = Literal["front", "back", "left", "right", "top", "bottom"]
SKILLS: tuple[str, ...] = ("grasp", "touch", "move", "rotate", "release")


@dataclass(frozen=True)
class SkillCall:
    """One skill with its parameters, e.g. SkillCall("grasp", {"part": "handle"})."""

    skill: Skill
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.skill}({args})"
