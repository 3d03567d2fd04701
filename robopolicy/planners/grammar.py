"""The skill grammar planners answer in, its JSON answer format, and the checks an answer passes.

Skills and their parameters (as the suite's task chains use them, `sims.partmanip.classes`):

| skill | parameters |
|---|---|
| grasp | part |
| touch | part |
| move | direction (one of the 6), distance (metres, optional, default 0.12) |
| rotate | part, direction (the way the part turns to face: front, back, left or right) |
| release | none |

Directions are in the robot base frame (`sims.core.directions`): front (towards the robot),
back, left, right, top, bottom. Parts are the object's part names or its spatial parts
(`robopolicy.planners.vocabulary`).

Answers are one JSON object, optionally in a ```json fenced block and surrounded by prose:

- a whole plan: ``{"skills": [{"skill": "grasp", "part": "handle"},
  {"skill": "move", "direction": "top"}, {"skill": "release"}]}``
- the next skill: ``{"skill": "move", "direction": "left"}``, or ``{"done": true}`` when the
  task is finished.

Each object may also carry a "reasoning" string, which is ignored. Anything else (another
key, a parameter of the wrong type, an unknown skill or direction, a part the object lacks)
is an invalid answer: `PlannerAnswerError`, one line saying what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from robopolicy.errors import RobopolicyError
from sims.core.directions import DIRECTIONS as _DIRECTION_VECTORS
from sims.partmanip.classes import HORIZONTAL, MOVE_DISTANCE
from sims.partmanip.skills import SKILLS, SkillCall

__all__ = [
    "DIRECTIONS", "DONE", "Done", "FACINGS", "MAX_MOVE_DISTANCE", "PlannerAnswerError", "SKILLS",
    "SKILL_PARAMS", "SkillCall", "Vocabulary", "parse_next_skill", "parse_skill_calls", "validate",
]

DIRECTIONS: tuple[str, ...] = tuple(_DIRECTION_VECTORS)
FACINGS: tuple[str, ...] = tuple(HORIZONTAL)  # a rotate turns a part to face a horizontal way
MAX_MOVE_DISTANCE = 0.3  # metres: beyond this a move leaves the workspace
# skill -> (required parameters, optional parameters)
SKILL_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "grasp": (("part",), ()),
    "touch": (("part",), ()),
    "move": (("direction",), ("distance",)),
    "rotate": (("part", "direction"), ()),
    "release": ((), ()),
}
assert tuple(SKILL_PARAMS) == tuple(SKILLS)
_IGNORED_KEYS = ("reasoning",)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class Vocabulary(Protocol):
    """What `validate` needs of a part vocabulary (`robopolicy.planners.vocabulary.PartVocabulary`)."""

    def resolve(self, name: str) -> str:
        """`name` as a vocabulary entry; raises PlannerAnswerError when it has none."""
        ...


class PlannerAnswerError(RobopolicyError):
    """A planner's answer does not parse or breaks the grammar (one line saying what is wrong)."""


@dataclass(frozen=True)
class Done:
    """The planner's answer that the task is finished (no further skill)."""

    def __str__(self) -> str:
        return "done"


DONE = Done()


def _json_object(text: str) -> dict:
    """The answer's JSON object: the whole text, a fenced block, or the first object in prose."""
    if not isinstance(text, str) or not text.strip():
        raise PlannerAnswerError("the answer is empty")
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    for c in candidates:
        try:
            value = json.loads(c)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
        raise PlannerAnswerError(f"the answer's JSON is a {type(value).__name__}, not an object")
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                value, _ = decoder.raw_decode(text, i)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    snippet = " ".join(text.split())[:80]
    raise PlannerAnswerError(f"the answer holds no JSON object: {snippet!r}")


def _call(obj: Any, where: str) -> SkillCall:
    """One {"skill": ..., <parameters>} object -> SkillCall (structure only; see `validate`)."""
    if not isinstance(obj, dict):
        raise PlannerAnswerError(f"{where} is a {type(obj).__name__}, not an object")
    if "skill" not in obj:
        raise PlannerAnswerError(f"{where} has no 'skill' key (keys: {', '.join(map(str, obj)) or 'none'})")
    skill = obj["skill"]
    if not isinstance(skill, str):
        raise PlannerAnswerError(f"{where}: 'skill' is {skill!r}, not a string")
    params = {}
    for key, value in obj.items():
        if key == "skill" or key in _IGNORED_KEYS:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise PlannerAnswerError(f"{where}: parameter '{key}' is {json.dumps(value)}, "
                                     "not a string or number")
        params[key] = value
    return SkillCall(skill.strip().lower(), params)


def _check_keys(obj: dict, allowed: tuple[str, ...], what: str) -> None:
    extra = [k for k in obj if k not in allowed and k not in _IGNORED_KEYS]
    if extra:
        raise PlannerAnswerError(f"{what} has an unexpected key '{extra[0]}' "
                                 f"(expected: {', '.join(allowed)})")


def parse_skill_calls(text: str) -> list[SkillCall]:
    """A plan answer -> its skill calls, in order: {"skills": [...]} (a single {"skill": ...}
    object is a one-skill plan). Checks the structure only; `validate` checks each call."""
    obj = _json_object(text)
    if "skills" not in obj:
        if "skill" in obj:
            return [_call(obj, "the answer")]
        raise PlannerAnswerError(f"the answer has no 'skills' list (keys: {', '.join(map(str, obj)) or 'none'})")
    _check_keys(obj, ("skills",), "the answer")
    skills = obj["skills"]
    if not isinstance(skills, list):
        raise PlannerAnswerError(f"'skills' is a {type(skills).__name__}, not a list")
    if not skills:
        raise PlannerAnswerError("'skills' is empty: a plan needs at least one skill")
    return [_call(s, f"skills[{i}]") for i, s in enumerate(skills)]


def parse_next_skill(text: str) -> SkillCall | Done:
    """A next-skill answer -> its skill call, or DONE for {"done": true}."""
    obj = _json_object(text)
    if "done" in obj:
        _check_keys(obj, ("done",), "a 'done' answer")
        if obj["done"] is not True:
            raise PlannerAnswerError(f"'done' is {json.dumps(obj['done'])}: answer {{\"done\": true}} "
                                     "or the next skill")
        return DONE
    if "skills" in obj:
        raise PlannerAnswerError("the answer is a plan ('skills'); answer the next skill only: "
                                 '{"skill": ...} or {"done": true}')
    return _call(obj, "the answer")


def validate(call: SkillCall, vocabulary: Vocabulary) -> SkillCall:
    """Check one call against the grammar and the object's parts; returns it normalised (its
    part snapped to the vocabulary, a move's distance filled in). Raises PlannerAnswerError."""
    if call.skill not in SKILL_PARAMS:
        raise PlannerAnswerError(f"unknown skill '{call.skill}' (skills: {', '.join(SKILLS)})")
    required, optional = SKILL_PARAMS[call.skill]
    for name in required:
        if name not in call.params:
            raise PlannerAnswerError(f"skill '{call.skill}' is missing parameter '{name}'")
    for name in call.params:
        if name not in required + optional:
            takes = ", ".join(required + optional) or "no parameters"
            raise PlannerAnswerError(f"skill '{call.skill}' takes no parameter '{name}' (it takes {takes})")
    params: dict[str, Any] = {}
    if "part" in call.params:
        part = call.params["part"]
        if not isinstance(part, str):
            raise PlannerAnswerError(f"skill '{call.skill}': part {part!r} is not a string")
        params["part"] = vocabulary.resolve(part)
    if "direction" in call.params:
        d = call.params["direction"]
        allowed = FACINGS if call.skill == "rotate" else DIRECTIONS
        d_norm = d.strip().lower() if isinstance(d, str) else d
        if d_norm not in allowed:
            raise PlannerAnswerError(f"skill '{call.skill}': unknown direction {d!r} "
                                     f"(directions: {', '.join(allowed)})")
        params["direction"] = d_norm
    if call.skill == "move":
        dist = call.params.get("distance", MOVE_DISTANCE)
        if isinstance(dist, str) or not math.isfinite(dist) or not 0 < dist <= MAX_MOVE_DISTANCE:
            raise PlannerAnswerError(f"skill 'move': distance {dist!r} is not a number in "
                                     f"(0, {MAX_MOVE_DISTANCE}] metres")
        params["distance"] = float(dist)
    return SkillCall(call.skill, params)
