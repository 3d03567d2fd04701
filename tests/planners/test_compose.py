"""The planner's composition augmentation (`planners.augmentation.composed`)."""

from __future__ import annotations

import numpy as np
import pytest

from robopolicy.planners.augmentation import can_compose, composed, composites_of
from robopolicy.planners.data import PlannerEpisode, part_vocabulary
from sims.partmanip.skills import SkillCall

PUSH = [SkillCall("touch", {"part": "right"}),
        SkillCall("move", {"direction": "left", "distance": 0.12}), SkillCall("release", {})]
LIFT = [SkillCall("grasp", {"part": "handle"}),
        SkillCall("move", {"direction": "top", "distance": 0.12})]


def _episode(instruction: str, chain: list[SkillCall], fill: int, category: str = "mug"):
    # one frame stack per query (n + 1), each filled with its own value to follow it
    frames = np.stack([np.full((3, 4, 4, 3), fill + k, np.uint8) for k in range(len(chain) + 1)])
    return PlannerEpisode(instruction, part_vocabulary(category), chain, frames)


def test_two_demos_become_one_task_told_in_order():
    first = _episode("Push the mug to the left by its right, then let go.", PUSH, 10)
    second = _episode("Pick up the mug by its handle.", LIFT, 50)
    ep = composed(first, second)
    assert ep.instruction == ("Push the mug to the left by its right, then let go, then pick up "
                              "the mug by its handle.")
    assert ep.chain == [*PUSH, *LIFT] and ep.parts == first.parts
    # queries 0-2 see the push's frames, 3-5 the lift's (its done frames last)
    assert ep.frames.shape == (6, 3, 4, 4, 3)
    assert [int(f[0, 0, 0, 0]) for f in ep.frames] == [10, 11, 12, 50, 51, 52]


def test_only_a_demo_that_frees_the_hand_of_the_same_object_comes_first():
    push = _episode("Push the mug to the left by its right, then let go.", PUSH, 0)
    lift = _episode("Pick up the mug by its handle.", LIFT, 0)
    other = _episode("Push the kettle to the left by its right, then let go.", PUSH, 0, "kettle")
    assert can_compose(push, lift) and can_compose(push, push)
    assert not can_compose(lift, push)            # the hand still holds the mug
    assert not can_compose(other, lift)           # another object's parts
    assert not can_compose(push, push, max_skills=5)
    with pytest.raises(ValueError, match="release"):
        composed(lift, push)


def test_frames_are_kept_only_when_both_have_them():
    first = PlannerEpisode("Push the mug, then let go.", part_vocabulary("mug"), PUSH)
    ep = composed(first, _episode("Pick up the mug by its handle.", LIFT, 0))
    assert ep.frames is None and len(ep.chain) == 5


def test_each_episode_gets_one_composite_after_a_demo_of_its_object():
    push = _episode("Push the mug to the left by its right, then let go.", PUSH, 0)
    lift = _episode("Pick up the mug by its handle.", LIFT, 0)
    kettle = _episode("Pick up the kettle by its handle.", LIFT, 0, "kettle")
    out = composites_of([push, lift, kettle], 16, np.random.default_rng(0))
    # the mug's only demo that frees the hand is the push: it goes first in both mug composites
    assert [c.chain for c in out[:2]] == [[*PUSH, *PUSH], [*PUSH, *LIFT]]
    assert out[1].instruction.endswith("then let go, then pick up the mug by its handle.")
    assert out[2] is None  # no kettle demo frees the hand
    assert composites_of([push, lift], 4, np.random.default_rng(0)) == [None, None]  # too long
