"""The learned planner's part pointer: part names embedded in context match their own word in
an instruction best (the bare word "right" does not), the literal word match, and both
pointer kinds building and running (planners trained with `pointer=name` still load)."""

from __future__ import annotations

import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.models.text_encoder import TextEncoder
from robopolicy.planners.data import PART_CONTEXT, PlannerBatcher, PlannerEpisode
from robopolicy.planners.grammar import SkillCall
from robopolicy.planners.network import SkillPlannerNet

INSTRUCTION = "Push the mug to the left by its right."


@pytest.fixture(scope="module")
def text():
    return TextEncoder()


def _sims(text, parts: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    pieces = text.wordpieces([INSTRUCTION])[0]
    tokens = torch.from_numpy(text.tokens([INSTRUCTION])[0])
    assert len(pieces) == len(tokens)
    return parts @ tokens.T, pieces


def test_a_part_named_in_context_matches_its_own_word_best(text):
    sims, pieces = _sims(text, text.in_context(["left", "right"], PART_CONTEXT))
    at_left, at_right = pieces.index("left"), pieces.index("right")
    assert sims[1, at_right] > sims[0, at_right] + 0.05  # "by its right" is the part "right"
    assert sims[0, at_left] > sims[1, at_left] + 0.05
    # the bare words get it backwards at the part's mention: why the context is needed
    bare, _ = _sims(text, text(["left", "right"]))
    assert bare[0, at_right] > bare[1, at_right]


def test_part_match_marks_each_part_s_words(text):
    ep = PlannerEpisode("Grasp the table by its leg left and move it to the right.",
                        ("leg_left", "leg_right", "left", "handle"),
                        [SkillCall("grasp", {"part": "leg_left"}), SkillCall("move", {"direction": "right"})])
    batch = PlannerBatcher(text, pointer="context")([ep])
    pieces = text.wordpieces([ep.instruction])[0]
    marked = {p: [pieces[t] for t in batch["part_match"][0, i].nonzero().flatten().tolist()]
              for i, p in enumerate(ep.parts)}
    assert marked == {"leg_left": ["leg", "left"], "leg_right": ["leg", "right"],
                      "left": ["left"], "handle": []}
    assert "part_match" not in PlannerBatcher(text)([ep])  # the "name" pointer has none


def test_an_unknown_pointer_is_a_one_line_error(text):
    for build in (lambda: SkillPlannerNet(pointer="words"),
                  lambda: PlannerBatcher(text, pointer="words")):
        with pytest.raises(RobopolicyError, match="'words'") as e:
            build()
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("pointer", ["name", "context"])
def test_each_pointer_scores_every_part(text, pointer):
    torch.manual_seed(0)
    ep = PlannerEpisode(INSTRUCTION, ("handle", "left", "right"),
                        [SkillCall("touch", {"part": "right"}), SkillCall("move", {"direction": "left"})])
    net = SkillPlannerNet(d_model=32, n_layers=1, n_heads=2, use_image=False, pointer=pointer)
    # a planner trained before the context pointer has no match_scale: its weights still load
    assert ("match_scale" in net.state_dict()) == (pointer == "context")
    out = net(PlannerBatcher(text, pointer=pointer)([ep]))
    assert out["part"].shape == (1, 3, 3) and torch.isfinite(out["part"]).all()
