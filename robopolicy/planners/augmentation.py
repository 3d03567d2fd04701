"""Training-time augmentations of the learned planner's sequences (`PlannerEpisode`).

- `mirrored`: left and right swapped in the words and the skills alike.
- `composed`: two demos of one object told as one task ("<first>, then <second>"), their
  chains and query frames joined. Long tasks are sequences of short ones; joined demos
  teach the planner to read the clause that comes next rather than recognise a whole
  instruction, which is what a task class never seen as a whole (test4) asks of it.
"""

from __future__ import annotations

import re

import numpy as np

from robopolicy.planners.data import PlannerEpisode
from sims.partmanip.skills import SkillCall

_SIDES = {"left": "right", "right": "left"}
_SIDE_WORD = re.compile(r"\b(left|right)\b", re.IGNORECASE)
#: how a composed instruction joins its two tasks
JOIN = ", then "


def mirrored(episode: PlannerEpisode) -> PlannerEpisode | None:
    """`episode` with left and right swapped in its instruction and its skills (directions,
    spatial parts, part names such as ``leg_left``), or None when a swapped part name is not
    in its vocabulary. The frames are the episode's own: the agentview looks from the front
    left, so no image flip mirrors the scene, and a skill's side comes from the words.
    Training on both halves keeps the planner reading which mention is the direction and
    which the part ("push it to the left by its right")."""
    def word(m: re.Match) -> str:
        w = _SIDES[m.group(0).lower()]
        return w.capitalize() if m.group(0)[0].isupper() else w

    chain = []
    for call in episode.chain:
        params = dict(call.params)
        if params.get("direction") in _SIDES:
            params["direction"] = _SIDES[params["direction"]]
        if "part" in params:
            part = "_".join(_SIDES.get(t, t) for t in params["part"].split("_"))
            if part not in episode.parts:
                return None
            params["part"] = part
        chain.append(SkillCall(call.skill, params))
    return PlannerEpisode(_SIDE_WORD.sub(word, episode.instruction), episode.parts, chain,
                          episode.frames)


def can_compose(first: PlannerEpisode, second: PlannerEpisode, max_skills: int = 16) -> bool:
    """Whether `second` can follow `first`: the same part vocabulary (one object), `first`
    ends with the hand free (a release), and the joined chain fits `max_skills`."""
    return (first.parts == second.parts and bool(first.chain) and bool(second.chain)
            and first.chain[-1].skill == "release"
            and len(first.chain) + len(second.chain) <= max_skills)


def composed(first: PlannerEpisode, second: PlannerEpisode) -> PlannerEpisode:
    """`first` then `second` as one episode: "<first's instruction>, then <second's>", the
    chains joined, and the query frames of `first`'s skills followed by all of `second`'s
    (its done frames last). Frames are kept only when both have them."""
    if not can_compose(first, second, max_skills=len(first.chain) + len(second.chain)):
        # the length limit is the caller's (`can_compose`); here only what makes it a sequence
        raise ValueError("composed: the first episode must end with a release and name the "
                         "same parts as the second")
    rest = second.instruction
    instruction = first.instruction.rstrip(" .") + JOIN + rest[:1].lower() + rest[1:]
    frames = None
    if first.frames is not None and second.frames is not None:
        frames = np.concatenate([first.frames[:len(first.chain)], second.frames])
    return PlannerEpisode(instruction, first.parts, [*first.chain, *second.chain], frames)


def composites_of(episodes: list[PlannerEpisode], max_skills: int,
                  rng: np.random.Generator) -> list[PlannerEpisode | None]:
    """Per episode, one composite: the episode after a random demo of its object that frees
    the hand (None where there is none). Drawn once per training run, so the instructions the
    text encoder embeds stay a fixed set (each new string costs a MiniLM pass and a cache
    entry)."""
    firsts: dict[tuple[str, ...], list[int]] = {}
    for i, e in enumerate(episodes):
        if e.chain and e.chain[-1].skill == "release":
            firsts.setdefault(e.parts, []).append(i)
    out: list[PlannerEpisode | None] = []
    for e in episodes:
        pool = firsts.get(e.parts, [])
        first = episodes[pool[rng.integers(len(pool))]] if pool else None
        out.append(composed(first, e) if first is not None and can_compose(first, e, max_skills)
                   else None)
    return out
