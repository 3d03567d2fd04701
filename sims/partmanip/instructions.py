"""Natural-language instructions for tasks and skills, from templates with paraphrases.

Every class has several whole-task phrasings (picked by `paraphrase`); per-skill instructions
are generated from the skill and its parameters. Category and part names are written as words
("kitchen_pot" -> "kitchen pot", "screen_frame" -> "screen frame").
"""

from __future__ import annotations

from sims.partmanip.classes import TaskParams
from sims.partmanip.skills import SkillCall

DIRECTION_WORDS = {"front": "towards you", "back": "away from you", "left": "to the left",
                   "right": "to the right", "top": "up", "bottom": "down"}
FACING_WORDS = {"front": "towards you", "back": "away from you", "left": "to the left",
                "right": "to the right"}
GENERIC_OBJECT = "object"  # the object's name in generic skill instructions

# {obj} object, {p} part P, {q} part Q, {r} rotated part R, {f} facing words, {d1}..{d3} moves
_TASK_TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("Grasp the {obj} by its {p}.", "Pick the {obj} by the {p}.", "Hold the {obj} at its {p}."),
    2: ("Touch the {p} of the {obj}.", "Put your gripper on the {obj}'s {p}.",
        "Tap the {obj} on its {p}."),
    3: ("Grasp the {obj} by its {p} and move it {d1}.",
        "Take the {obj} by the {p}, then move it {d1}.",
        "Hold the {obj} at its {p} and bring it {d1}."),
    4: ("Push the {obj} {d1} by its {p}.", "Touch the {obj}'s {p} and slide it {d1}.",
        "Slide the {obj} {d1}, pushing on its {p}."),
    5: ("Grasp the {obj} by its {p}, move it {d1} and let go.",
        "Move the {obj} {d1} holding it by the {p}, then release it.",
        "Take the {obj} by its {p}, bring it {d1} and put it down."),
    6: ("Push the {obj} {d1} by its {p}, then let go.",
        "Slide the {obj} {d1} by touching its {p} and move your hand away.",
        "Touch the {obj}'s {p}, push it {d1} and release."),
    7: ("Grasp the {obj} by its {p}, move it {d1}, then {d2}.",
        "Holding the {obj} by the {p}, bring it {d1} and then {d2}.",
        "Take the {obj} by its {p} and move it {d1}, followed by {d2}."),
    8: ("Pick up the {obj} by its {p} and turn its {r} {f}.",
        "Lift the {obj} by the {p}, then rotate it so its {r} points {f}.",
        "Pick up the {obj} by its {p} and show me the {r}."),
    9: ("Grasp the {obj} by its {p} and move it {d1}, {d2}, then {d3}.",
        "Holding the {obj} by its {p}, bring it {d1}, then {d2}, then {d3}.",
        "Take the {obj} by the {p} and move it {d1}, {d2} and finally {d3}."),
    10: ("Grasp the {obj} by its {p}, move it {d1} and {d2}, then turn its {r} {f}.",
         "Holding the {obj} by the {p}, bring it {d1}, then {d2}, and rotate it so its {r} points {f}.",
         "Take the {obj} by its {p}, move it {d1} then {d2}, and face its {r} {f}."),
    11: ("Pick up the {obj} by its {p}, turn its {r} {f}, then put it back down.",
         "Lift the {obj} by the {p}, rotate it so the {r} points {f}, and set it down again.",
         "Show me the {obj}'s {r} by lifting it by its {p}, then return it to the table."),
    12: ("Push the {obj} {d1} by its {p}, then pick it up by its {q}.",
         "Slide the {obj} {d1} touching its {p}; after that, lift it by the {q}.",
         "First push the {obj} {d1} at its {p}, then grasp its {q} and lift it."),
    13: ("Push the {obj} {d1} by its {p}, then push it {d2} by its {q}.",
         "Slide the {obj} {d1} touching its {p}; after that, slide it {d2} touching its {q}.",
         "First push the {obj} {d1} at its {p}, then {d2} at its {q}."),
    14: ("Pick up the {obj} by its {p}, turn its {r} {f} and put it down, then push it {d1} by its {q}.",
         "Lift the {obj} by the {p}, rotate it so its {r} points {f}, set it down; then slide it {d1} touching its {q}.",
         "First turn the {obj}'s {r} {f} (holding it by its {p}) and put it back, then push it {d1} at its {q}."),
    15: ("Push the {obj} {d1} by touching its {p}, then pick it up by its {q} and turn its {r} {f}.",
         "Slide the {obj} {d1} at its {p}; after that, lift it by the {q} and rotate it so its {r} points {f}.",
         "First push the {obj} {d1} at its {p}, then grasp its {q}, lift it and face its {r} {f}."),
    16: ("Move the {obj} {d1} holding its {p} and let go, then move it {d2} holding its {q}.",
         "Grasp the {obj} by its {p}, bring it {d1} and release; then grasp its {q}, bring it {d2} and release.",
         "First carry the {obj} {d1} by its {p}, put it down, then carry it {d2} by its {q}."),
}


def words(name: str | None) -> str:
    """An identifier as words ("kitchen_pot" -> "kitchen pot")."""
    return (name or "").replace("_", " ")


def object_words(category: str) -> str:
    """A category name as words ("kitchen_pot" -> "kitchen pot")."""
    return words(category)


def n_paraphrases(task_class: int) -> int:
    """How many whole-task phrasings a class has."""
    return len(_TASK_TEMPLATES[task_class])


def skill_instruction(category: str, call: SkillCall) -> str:
    """The instruction for one skill of a chain."""
    obj = object_words(category)
    p = call.params
    if call.skill == "grasp":
        return f"Grasp the {obj} by its {words(p['part'])}."
    if call.skill == "touch":
        return f"Touch the {words(p['part'])} of the {obj}."
    if call.skill == "move":
        return f"Move the {obj} {DIRECTION_WORDS[p['direction']]}."
    if call.skill == "rotate":
        return f"Rotate the {obj} so its {words(p['part'])} points {FACING_WORDS[p['direction']]}."
    if call.skill == "release":
        return f"Release the {obj}."
    raise ValueError(f"unknown skill {call.skill!r}")


def generic_skill_instruction(call: SkillCall) -> str:
    """A skill's instruction naming the object only "object" ("Grasp the object by its
    handle."): the part and direction stay, the category's name goes, so a skill policy
    conditioned on it meets no unseen word on an unseen category."""
    return skill_instruction(GENERIC_OBJECT, call)


def task_instruction(task_class: int, category: str, params: TaskParams, paraphrase: int = 0) -> str:
    """The whole-task instruction; `paraphrase` picks one of the class's templates."""
    # "show me the cap" means turning it towards the user: only for facing = front
    templates = [t for t in _TASK_TEMPLATES[task_class]
                 if "how me" not in t or params.facing == "front"]
    d = [DIRECTION_WORDS[x] for x in params.directions] + ["", "", ""]
    return templates[paraphrase % len(templates)].format(
        obj=object_words(category), p=words(params.part), q=words(params.part2),
        r=words(params.rotate_part), f=FACING_WORDS.get(params.facing or "", ""),
        d1=d[0], d2=d[1], d3=d[2])
