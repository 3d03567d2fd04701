"""Who says what the current skill is: the env's skill source.

The oracle is the ground-truth `ChainTracker` (PartInstruct's "ground-truth skill sequence"
setting); a planner source holds the skill a planner chose (`env.set_skill(call)`). Either
way the skill-level observations are computed from the skill's own parameters: its part (for
move/release, the part the last grasp or touch of the source's history holds), its direction,
and its goal (a move's: where the object was when the skill began plus direction x distance;
any other skill's: where the object was when it began). The task's success is the tracker's
alone, whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip.chain import ChainTracker, held_part
from sims.partmanip.classes import MOVE_DISTANCE
from sims.partmanip.obs_layout import DIRECTION_NAMES, SKILL_STATE_DIM
from sims.partmanip.skills import SKILLS, SkillCall

ORACLE, PLANNER = "oracle", "planner"


def call_to_dict(call: SkillCall) -> dict:
    return {"skill": call.skill, "params": dict(call.params)}


def call_from_dict(d: dict | SkillCall) -> SkillCall:
    return d if isinstance(d, SkillCall) else SkillCall(d["skill"], dict(d["params"]))


def skill_goal(call: SkillCall | None, start: np.ndarray) -> np.ndarray:
    """Where the object should be when `call` ends, begun with the object at `start`."""
    if call is None or call.skill != "move":
        return np.asarray(start, float).copy()
    p = call.params
    return np.asarray(start, float) + DIRECTIONS[p["direction"]] * p.get("distance", MOVE_DISTANCE)


@dataclass(frozen=True)
class CurrentSkill:
    """The current skill as the skill-level observations see it (`call` None: none is left)."""

    call: SkillCall | None
    history: tuple[SkillCall, ...]  # the source's calls before it
    goal: np.ndarray  # (3,) world frame

    @property
    def part(self) -> str | None:
        """The part the skill acts on (move/release: the part held since the last grasp/touch)."""
        if self.call is not None and "part" in self.call.params:
            return self.call.params["part"]
        return held_part(self.history, len(self.history))[1]

    def one_hots(self) -> np.ndarray:
        """Skill type one-hot (5) + direction one-hot (6); zeros when no skill is left."""
        out = np.zeros(len(SKILLS) + len(DIRECTION_NAMES))
        if self.call is not None:
            out[SKILLS.index(self.call.skill)] = 1.0
            direction = self.call.params.get("direction")
            if direction is not None:
                out[len(SKILLS) + DIRECTION_NAMES.index(direction)] = 1.0
        return out


class SkillSource:
    """The oracle (the tracker) until `set(call, ...)`; `set(None)` returns to the oracle."""

    def __init__(self, tracker: ChainTracker):
        self.tracker = tracker
        self.call: SkillCall | None = None
        self.history: tuple[SkillCall, ...] = ()
        self.start: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return ORACLE if self.call is None else PLANNER

    def set(self, call: SkillCall | None, object_pos: np.ndarray,
            history: tuple[SkillCall, ...] | None = None) -> None:
        """Make `call` the current skill, begun with the object at `object_pos`; `history`: the
        calls done before it (default: the planner calls set before, in order)."""
        if call is None:
            self.call, self.history, self.start = None, (), None
            return
        if history is None:
            history = self.history + ((self.call,) if self.call is not None else ())
        self.call, self.history = call, tuple(history)
        self.start = np.asarray(object_pos, float).copy()

    def current(self) -> CurrentSkill:
        if self.call is not None:
            return CurrentSkill(self.call, self.history, skill_goal(self.call, self.start))
        t, chain = self.tracker, self.tracker.task.chain
        call = chain[t.index] if t.index < len(chain) else None
        return CurrentSkill(call, tuple(chain[: t.index]), t.skill_goal())

    def to_dict(self) -> dict | None:
        """The planner skill (JSON-able), None for the oracle."""
        if self.call is None:
            return None
        return {"call": call_to_dict(self.call), "history": [call_to_dict(c) for c in self.history],
                "start": self.start.tolist()}

    def load(self, d: dict | None) -> None:
        if d is None:
            self.call, self.history, self.start = None, (), None
            return
        self.call = call_from_dict(d["call"])
        self.history = tuple(call_from_dict(c) for c in d["history"])
        self.start = np.asarray(d["start"], float)


def skill_state(skill: CurrentSkill, centroid: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The `skill_state` vector (SKILL_STATE_DIM,) float32."""
    out = np.concatenate([centroid, axis, skill.goal, skill.one_hots()]).astype(np.float32)
    assert out.shape == (SKILL_STATE_DIM,)
    return out
