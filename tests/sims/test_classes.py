"""The 16 task classes: chains, phases and instructions."""

import pytest

from sims.partmanip.classes import CLASSES, n_directions, placeholders
from sims.partmanip.instructions import n_paraphrases
from sims.partmanip.tasks import TaskSpec, make_task

ARGS = {"P": {}, "Q": {"part2": "handle"}, "R": {"rotate_part": "handle"}, "F": {"facing": "front"}}


def example(task_class, paraphrase=0):
    kw = {}
    for ph in placeholders(task_class):
        kw.update(ARGS.get(ph, {}))
    kw["directions"] = ("left", "top", "back")[: n_directions(task_class)]
    return make_task(task_class, "kitchen_pot", "body", paraphrase=paraphrase, **kw)


def test_sixteen_classes_with_the_reference_chains():
    assert CLASSES == tuple(range(1, 17))
    skills = {c: [s.skill for s in example(c).chain] for c in CLASSES}
    assert skills[1] == ["grasp"] and skills[2] == ["touch"]
    assert skills[4] == ["touch", "move"] and skills[6] == ["touch", "move", "release"]
    assert skills[8] == ["grasp", "move", "rotate"] and skills[9] == ["grasp", "move", "move", "move"]
    assert example(8).chain[1].params["direction"] == "top"


@pytest.mark.parametrize("task_class", CLASSES)
def test_chain_phases_and_instructions(task_class):
    task = example(task_class)
    two_phase = task_class >= 12
    assert len(task.phases) == (2 if two_phase else 1) and task.phases[0] == 0
    if two_phase:  # phase 1 of every two-phase class ends by letting go
        assert task.chain[task.phases[1] - 1].skill == "release"
    assert len(task.skill_instructions) == len(task.chain)
    texts = {example(task_class, k).instruction for k in range(n_paraphrases(task_class))}
    assert len(texts) >= 2, texts  # real paraphrases
    for text in texts:
        assert "kitchen pot" in text and "{" not in text and "  " not in text
    assert TaskSpec.from_dict(task.to_dict()) == task


def test_show_me_only_when_turning_towards_the_user():
    show = make_task(8, "bottle", "body", rotate_part="lid", facing="front", paraphrase=2)
    assert show.instruction == "Pick up the bottle by its body and show me the lid."
    away = [make_task(8, "bottle", "body", rotate_part="lid", facing="back", paraphrase=k).instruction
            for k in range(3)]
    assert not any("show me" in t for t in away)
