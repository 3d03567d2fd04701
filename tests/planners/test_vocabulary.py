"""Part vocabulary: spatial parts are included; near-miss names snap by real MiniLM similarity."""

from __future__ import annotations

import pytest

from robopolicy.planners.grammar import PlannerAnswerError
from robopolicy.planners.vocabulary import DEFAULT_SNAP_THRESHOLD, ObjectInfo, PartVocabulary
from sims.partmanip.catalog import SIDES
from sims.partmanip.tasks import make_task

LAPTOP = PartVocabulary(("base", "screen", "touchpad", "keyboard", "screen_frame"), category="laptop")
BOTTLE = PartVocabulary(("mouth", "lid", "body", "neck"), category="bottle")


def test_vocabulary_holds_object_and_spatial_parts():
    info = ObjectInfo.from_task(make_task(4, "box", "left", "right"))
    vocab = PartVocabulary.for_object(info)
    assert vocab.semantic == ("lid", "body")
    assert set(SIDES) <= set(vocab.spatial) and "top" in vocab
    assert vocab.resolve("left") == "left"


@pytest.mark.parametrize("vocab, name, expected", [
    (LAPTOP, "screen frame", "screen_frame"),       # normalised, no model needed
    (LAPTOP, "Screen-Frame", "screen_frame"),
    (LAPTOP, "screenframe", "screen_frame"),        # MiniLM 0.87
    (BOTTLE, "the top lid", "lid"),                 # MiniLM 0.90
    (BOTTLE, "front side", "front"),                # MiniLM 0.83
])
def test_near_miss_snaps(vocab, name, expected):
    assert vocab.resolve(name) == expected


@pytest.mark.parametrize("vocab, name", [
    (BOTTLE, "cap"),      # lid 0.48: another word, not a near miss
    (BOTTLE, "spout"),
    (LAPTOP, "wheel"),
])
def test_far_names_are_rejected(vocab, name):
    with pytest.raises(PlannerAnswerError) as info:
        vocab.resolve(name)
    msg = str(info.value)
    assert f"part {name!r} is not a part of the" in msg and "nearest" in msg and "\n" not in msg


def test_threshold_is_between_near_misses_and_other_parts():
    """The default threshold separates a phrase naming a part from the nearest other part."""
    near = BOTTLE.similarities("the top lid")["lid"]
    other = max(v for k, v in BOTTLE.similarities("cap").items())
    assert other < DEFAULT_SNAP_THRESHOLD < near
    strict = PartVocabulary(BOTTLE.semantic, threshold=0.95, category="bottle")
    with pytest.raises(PlannerAnswerError):
        strict.resolve("the top lid")
