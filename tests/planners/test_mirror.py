"""The planner's left-right mirror augmentation (`planners.augmentation.mirrored`) on real vocabularies."""

from __future__ import annotations

from robopolicy.planners.augmentation import mirrored
from robopolicy.planners.data import PlannerEpisode, part_vocabulary
from sims.partmanip.skills import SkillCall


def _episode(category: str, instruction: str, chain: list[tuple]) -> PlannerEpisode:
    calls = [SkillCall(name, dict(params)) for name, params in chain]
    return PlannerEpisode(instruction, part_vocabulary(category), calls)


def test_mirror_swaps_sides_in_the_words_and_the_skills_alike():
    ep = _episode("dispenser", "Push the dispenser to the left by its right, then pick it up by "
                  "its head.", [("touch", {"part": "right"}),
                                ("move", {"direction": "left", "distance": 0.12}),
                                ("release", {}), ("grasp", {"part": "head"}),
                                ("move", {"direction": "top", "distance": 0.12})])
    m = mirrored(ep)
    assert m.instruction == ("Push the dispenser to the right by its left, then pick it up by "
                             "its head.")
    assert [c.params for c in m.chain] == [{"part": "left"},
                                           {"direction": "right", "distance": 0.12}, {},
                                           {"part": "head"},
                                           {"direction": "top", "distance": 0.12}]
    assert m.parts == ep.parts and m.frames is ep.frames
    assert mirrored(m).instruction == ep.instruction and mirrored(m).chain == ep.chain


def test_mirror_swaps_sided_part_names_and_keeps_capitals():
    parts = ("leg_left", "leg_right", "left", "right")  # a user's category with sided parts
    ep = PlannerEpisode("Left of you: grasp the stool by the leg left and move it to the right.",
                        parts, [SkillCall("grasp", {"part": "leg_left"}),
                                SkillCall("move", {"direction": "right", "distance": 0.12})])
    m = mirrored(ep)
    assert m.instruction.startswith("Right of you: grasp the stool by the leg right")
    assert m.instruction.endswith("to the left.")
    assert m.chain[0].params["part"] == "leg_right" and m.chain[1].params["direction"] == "left"
    # words that only contain a side are not sides
    assert mirrored(_episode("mug", "Hold the mug upright.", [])).instruction == "Hold the mug upright."


def test_mirror_refuses_a_part_without_a_counterpart():
    ep = PlannerEpisode("Grasp the thing by its left handle.", ("left_handle", "body"),
                        [SkillCall("grasp", {"part": "left_handle"})])
    assert mirrored(ep) is None
