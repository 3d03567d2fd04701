"""The skill grammar: parsing answers (JSON, fenced, in prose) and validating calls, as tables."""

from __future__ import annotations

import pytest

from robopolicy.planners.grammar import (
    DIRECTIONS,
    DONE,
    PlannerAnswerError,
    SkillCall,
    parse_next_skill,
    parse_skill_calls,
    validate,
)
from robopolicy.planners.vocabulary import PartVocabulary
from sims.partmanip.classes import CLASSES, TaskParams, n_directions
from sims.partmanip.tasks import chain_for_class

MUG = PartVocabulary(("handle", "body", "contents"), category="mug")


def test_six_directions():
    assert set(DIRECTIONS) == {"front", "back", "left", "right", "top", "bottom"}


@pytest.mark.parametrize("text, expected", [
    ('{"skills": [{"skill": "grasp", "part": "handle"}, {"skill": "move", "direction": "top"}]}',
     [SkillCall("grasp", {"part": "handle"}), SkillCall("move", {"direction": "top"})]),
    ('Sure! Here is the plan:\n```json\n{"skills": [{"skill": "release"}]}\n```\nGood luck.',
     [SkillCall("release", {})]),
    ('I think {"skills": [{"skill": "touch", "part": "left", "reasoning": "push"}]} works.',
     [SkillCall("touch", {"part": "left"})]),
    ('{"skill": "grasp", "part": "body"}', [SkillCall("grasp", {"part": "body"})]),
])
def test_parse_plan(text, expected):
    assert parse_skill_calls(text) == expected


@pytest.mark.parametrize("text, error", [
    ("", "empty"),
    ("I'm sorry, I can't help with that.", "no JSON object"),
    ('{"skills": []}', "'skills' is empty"),
    ('{"skills": {"skill": "grasp"}}', "not a list"),
    ('{"plan": [{"skill": "grasp"}]}', "no 'skills' list"),
    ('{"skills": [{"skill": "grasp"}], "extra": 1}', "unexpected key 'extra'"),
    ('{"skills": [{"part": "handle"}]}', "skills[0] has no 'skill' key"),
    ('{"skills": [{"skill": "grasp", "part": ["handle"]}]}', "not a string or number"),
    ('[{"skill": "grasp"}]', "not an object"),
])
def test_parse_plan_rejects(text, error):
    with pytest.raises(PlannerAnswerError) as info:
        parse_skill_calls(text)
    assert error in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ('{"done": true}', DONE),
    ('```json\n{"skill": "rotate", "part": "handle", "direction": "left"}\n```',
     SkillCall("rotate", {"part": "handle", "direction": "left"})),
])
def test_parse_next(text, expected):
    assert parse_next_skill(text) == expected


@pytest.mark.parametrize("text, error", [
    ('{"done": false}', "'done' is false"),
    ('{"done": true, "skill": "grasp"}', "unexpected key 'skill'"),
    ('{"skills": [{"skill": "grasp", "part": "handle"}]}', "next skill only"),
])
def test_parse_next_rejects(text, error):
    with pytest.raises(PlannerAnswerError) as info:
        parse_next_skill(text)
    assert error in str(info.value)


@pytest.mark.parametrize("call, expected", [
    (SkillCall("grasp", {"part": "handle"}), SkillCall("grasp", {"part": "handle"})),
    (SkillCall("touch", {"part": "left"}), SkillCall("touch", {"part": "left"})),
    (SkillCall("touch", {"part": "The Handle"}), SkillCall("touch", {"part": "handle"})),
    (SkillCall("move", {"direction": "top"}), SkillCall("move", {"direction": "top", "distance": 0.12})),
    (SkillCall("move", {"direction": "Left", "distance": 0.05}),
     SkillCall("move", {"direction": "left", "distance": 0.05})),
    (SkillCall("rotate", {"part": "handle", "direction": "front"}),
     SkillCall("rotate", {"part": "handle", "direction": "front"})),
    (SkillCall("release", {}), SkillCall("release", {})),
])
def test_validate_accepts(call, expected):
    assert validate(call, MUG) == expected


@pytest.mark.parametrize("call, error", [
    (SkillCall("pick", {"part": "handle"}), "unknown skill 'pick'"),
    (SkillCall("grasp", {}), "skill 'grasp' is missing parameter 'part'"),
    (SkillCall("release", {"part": "handle"}), "skill 'release' takes no parameter 'part'"),
    (SkillCall("grasp", {"part": "handle", "direction": "top"}), "takes no parameter 'direction'"),
    (SkillCall("move", {"direction": "up"}), "unknown direction 'up'"),
    (SkillCall("rotate", {"part": "handle", "direction": "top"}), "unknown direction 'top'"),
    (SkillCall("rotate", {"direction": "left"}), "missing parameter 'part'"),
    (SkillCall("move", {"direction": "top", "distance": 2.0}), "distance 2.0"),
    (SkillCall("move", {"direction": "top", "distance": "far"}), "distance 'far'"),
    (SkillCall("grasp", {"part": 3}), "not a string"),
    (SkillCall("grasp", {"part": "spout"}), "part 'spout' is not a part of the mug"),
])
def test_validate_rejects(call, error):
    with pytest.raises(PlannerAnswerError) as info:
        validate(call, MUG)
    msg = str(info.value)
    assert error in msg and "\n" not in msg


def test_every_class_chain_is_valid():
    """The suite's own chains pass the grammar unchanged (the oracle's answers are valid)."""
    vocab = PartVocabulary(("handle", "body"), category="mug")
    for c in CLASSES:
        params = TaskParams("handle", ("top", "left", "back")[:n_directions(c)],
                            rotate_part="handle", facing="left", part2="body")
        chain, _ = chain_for_class(c, params)
        assert [validate(s, vocab) for s in chain] == list(chain), c
