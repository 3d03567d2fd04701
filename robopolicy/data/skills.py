"""Each episode's skill chain, read from a store, and the skill-conditioning vector.

An episode records when each skill began (``skill_starts``: obs ``starts[k]`` is the first
observation of skill k, so it is also the first one in which skill k-1's goal holds), each
skill's instruction (``skill_instructions``) and, in stores that have it, the structured chain
(``chain``: ``[{"skill": "grasp", "params": {"part": "handle"}}, ...]``).

``encode_skill`` turns one skill call into the fixed vector a skill policy can be conditioned on
(``skill_params: true``): a one-hot over the 5 skills of ``sims.partmanip.skills.SKILLS``, then a
one-hot over the 6 directions of ``sims.core.directions.DIRECTIONS`` (zeros for a skill without
a direction). The part is not in it: part names are open-vocabulary and reach the policy
through the instruction's text embedding. ``SKILL_TEXTS`` names which text: the recorded
instruction, or the ``generic`` one that names the object only "object" (rebuilt from the
chain, so a policy trained on it never sees a category's name). ``with_next`` appends the next
call's vector (zeros after the last skill): the expert touches and turns depending on what
follows (a touch before a push comes from the side opposite the push), so a skill policy needs
it to tell those apart.

    vec = encode_skill("move", {"direction": "top"})      # (11,) float32
    chains = skill_chains(store)                          # one SkillChain per episode
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from robopolicy.errors import RobopolicyError
from sims.core.directions import DIRECTIONS
from sims.partmanip.instructions import generic_skill_instruction
from sims.partmanip.skill_source import call_from_dict
from sims.partmanip.skills import SKILLS

if TYPE_CHECKING:
    from robopolicy.data.store import EpisodeStore

DIRECTION_NAMES: tuple[str, ...] = tuple(DIRECTIONS)
SKILL_PARAMS_DIM = len(SKILLS) + len(DIRECTION_NAMES)
SKILL_TEXTS = ("instruction", "generic")  # what text conditions a skill policy


def check_skill_text(mode: str) -> str:
    """`mode` if it is one of ``SKILL_TEXTS``, else a one-line error."""
    if mode not in SKILL_TEXTS:
        raise RobopolicyError(f"skill_text '{mode}' is not one of {', '.join(SKILL_TEXTS)}")
    return mode


def skill_text(call: Any, instruction: str, mode: str) -> str:
    """The text a skill policy is conditioned on for one call (a SkillCall or its dict):
    ``instruction`` as given (mode ``instruction``) or rebuilt without the object's name
    (mode ``generic``)."""
    if check_skill_text(mode) == "instruction":
        return instruction
    return generic_skill_instruction(call_from_dict(call))


def encode_skill(skill: str, params: Mapping[str, Any] | None = None) -> np.ndarray:
    """One skill call -> its conditioning vector (SKILL_PARAMS_DIM,) float32: skill one-hot,
    then direction one-hot (``params["direction"]``, zeros when absent)."""
    if skill not in SKILLS:
        raise RobopolicyError(f"skill '{skill}' is not one of {', '.join(SKILLS)}")
    out = np.zeros(SKILL_PARAMS_DIM, np.float32)
    out[SKILLS.index(skill)] = 1.0
    direction = (params or {}).get("direction")
    if direction is not None:
        if direction not in DIRECTION_NAMES:
            raise RobopolicyError(f"skill '{skill}': direction '{direction}' is not one of "
                                  f"{', '.join(DIRECTION_NAMES)}")
        out[len(SKILLS) + DIRECTION_NAMES.index(direction)] = 1.0
    return out


def with_next(params: np.ndarray) -> np.ndarray:
    """A chain's (n, P) skill vectors -> (n, 2P): each skill's, then the next one's (zeros for
    the last skill)."""
    params = np.asarray(params, np.float32)
    following = np.concatenate([params[1:], np.zeros((1, params.shape[1]), np.float32)])
    return np.concatenate([params, following], axis=1)


@dataclass(frozen=True)
class SkillChain:
    """One episode's skills over time.

    Attributes:
        starts: (n_begun,) int64, the step at which each begun skill began (``starts[0] == 0``).
        instructions: every skill's instruction, begun or not.
        length: the episode's number of steps.
        params: (len(instructions), SKILL_PARAMS_DIM) float32 from the structured chain, or None
            when the store has no ``chain`` for the episode.
        calls: the structured chain ({"skill", "params"} per skill), or None without one.
    """

    starts: np.ndarray
    instructions: list[str]
    length: int
    params: np.ndarray | None = None
    calls: list[dict] | None = None

    def with_text(self, mode: str, where: str) -> SkillChain:
        """This chain with its instructions replaced by ``skill_text(..., mode)``."""
        if check_skill_text(mode) == "instruction":
            return self
        if self.calls is None:
            raise RobopolicyError(f"{where}: skill_text: {mode} rebuilds each skill's text from the "
                                  "episode's structured chain, which the store does not record")
        texts = [skill_text(c, s, mode) for c, s in zip(self.calls, self.instructions, strict=True)]
        return replace(self, instructions=texts)

    def active(self, t: np.ndarray) -> np.ndarray:
        """The skill index active at steps ``t`` (int64, same shape)."""
        return np.searchsorted(self.starts[1:], t, side="right").astype(np.int64)

    @property
    def goal_steps(self) -> np.ndarray:
        """(n_begun,) int64: the first step whose observation shows skill k's goal held, i.e.
        the next skill's start; ``length`` (no recorded observation) for the last begun skill,
        whose goal, if reached, holds only after the episode's final action."""
        return np.append(self.starts[1:], self.length).astype(np.int64)


def _parse_chain(raw: Any, where: str) -> list[dict] | None:
    """A ``chain`` meta value (JSON text or a list) -> list of {"skill", "params"} or None."""
    if raw is None or raw == "" or raw == []:
        return None
    try:
        chain = json.loads(raw) if isinstance(raw, str) else raw
        return [{"skill": c["skill"], "params": dict(c.get("params") or {})} for c in chain]
    except (ValueError, TypeError, KeyError) as exc:
        raise RobopolicyError(f"{where}: chain is not a JSON list of "
                              f"{{'skill', 'params'}} ({exc})") from None


def chain_from_meta(meta: Mapping[str, Any], where: str) -> SkillChain:
    """An episode's SkillChain from its metadata (as ``EpisodeStore.episodes()`` gives it)."""
    try:
        starts = np.asarray(json.loads(meta.get("skill_starts") or "[]"), np.int64).reshape(-1)
        instructions = [str(s) for s in json.loads(meta.get("skill_instructions") or "[]")]
    except (ValueError, TypeError) as exc:
        raise RobopolicyError(f"{where}: unreadable skill_starts/skill_instructions ({exc})") from None
    length = int(meta["length"])
    if not len(starts) or not instructions:
        raise RobopolicyError(f"{where}: no skill_starts/skill_instructions recorded; skill "
                              "conditioning needs a store collected with them")
    if (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] >= max(length, 1)
            or len(starts) > len(instructions)):
        raise RobopolicyError(f"{where}: skill_starts {starts.tolist()} do not fit "
                              f"{len(instructions)} skills over {length} steps")
    chain = _parse_chain(meta.get("chain"), where)
    params = None
    if chain is not None:
        if len(chain) != len(instructions):
            raise RobopolicyError(f"{where}: chain has {len(chain)} skills, "
                                  f"skill_instructions {len(instructions)}")
        params = np.stack([encode_skill(c["skill"], c["params"]) for c in chain])
    return SkillChain(starts, instructions, length, params, chain)


def skill_chains(store: EpisodeStore, text: str = "instruction") -> list[SkillChain]:
    """Every committed episode's SkillChain, in order, its texts as ``skill_text`` mode ``text``
    gives them."""
    where = f"dataset {store.path}: episode {{}}"
    return [chain_from_meta(m, where.format(i)).with_text(text, where.format(i))
            for i, m in enumerate(store.episodes())]
