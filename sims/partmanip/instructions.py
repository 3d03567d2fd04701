"""Natural-language instructions for tasks and skills, from templates with paraphrases."""

from __future__ import annotations

from sims.partmanip.tasks import SkillCall

DIRECTION_WORDS = {"front": "towards you", "back": "away from you", "left": "to the left",
                   "right": "to the right", "top": "up", "bottom": "down"}

_TASK_TEMPLATES = {
    1: ["Grasp the {obj} by its {part}.", "Pick the {obj} by the {part}.",
        "Hold the {obj} at its {part}."],
    3: ["Grasp the {obj} by its {part} and move it {dir}.",
        "Take the {obj} by the {part}, then move it {dir}.",
        "Hold the {obj} at its {part} and bring it {dir}."],
}


def object_words(category: str) -> str:
    """A category name as words ("kitchen_pot" -> "kitchen pot")."""
    return category.replace("_", " ")


def skill_instruction(category: str, call: SkillCall) -> str:
    """The instruction for one skill of a chain."""
    obj = object_words(category)
    p = call.params
    if call.skill == "grasp":
        return f"Grasp the {obj} by its {p['part'].replace('_', ' ')}."
    if call.skill == "touch":
        return f"Touch the {p['part'].replace('_', ' ')} of the {obj}."
    if call.skill == "move":
        return f"Move the {obj} {DIRECTION_WORDS[p['direction']]}."
    if call.skill == "rotate":
        return f"Rotate the {obj} so its {p['part'].replace('_', ' ')} faces {p['direction']}."
    if call.skill == "release":
        return f"Release the {obj}."
    raise ValueError(f"unknown skill {call.skill!r}")


def task_instruction(task_class: int, category: str, chain: tuple[SkillCall, ...],
                     paraphrase: int = 0) -> str:
    """The whole-task instruction; `paraphrase` picks one of the class's templates."""
    templates = _TASK_TEMPLATES.get(task_class)
    if templates is None:
        return " Then ".join(skill_instruction(category, c) for c in chain)
    part = chain[0].params.get("part", "").replace("_", " ")
    direction = next((DIRECTION_WORDS[c.params["direction"]] for c in chain if c.skill == "move"), "")
    return templates[paraphrase % len(templates)].format(obj=object_words(category), part=part,
                                                         dir=direction)
