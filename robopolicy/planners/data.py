"""Training sequences of the learned skill planner, read from a demo store, and their batches.

An episode of a demo store becomes one planner sequence: the instruction, the object's part
vocabulary (its category's parts plus the spatial parts), the recorded skill chain and, for
each query position k = 0..n, the agentview frames the planner sees when it is asked for
skill k (the first frames of skill k; for k = n, the last frames, where the answer is DONE).
Position k's input is the skill finished before it (k - 1; a start token at k = 0), so one
sequence trains every query of the episode at once, as a translation model is trained.

    episodes = planner_episodes(store)                  # list[PlannerEpisode]
    batch = PlannerBatcher(text_encoder)(episodes[:64], rng)   # dict of tensors
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.progress import progress
from sims.core.directions import DIRECTIONS
from sims.partmanip.skills import SKILLS, SkillCall

if TYPE_CHECKING:
    from robopolicy.data.store import EpisodeStore
    from robopolicy.models.text_encoder import TextEncoder

#: what the planner's skill head chooses from: the 5 skills, then "done"
SKILL_CLASSES: tuple[str, ...] = (*SKILLS, "done")
DONE_CLASS = len(SKILLS)
START_TOKEN = len(SKILL_CLASSES)  # the input skill of query 0 (nothing finished yet)
DIRECTION_NAMES: tuple[str, ...] = tuple(DIRECTIONS)
NO_DIRECTION = len(DIRECTION_NAMES)
IMAGE_KEY = "rgb.agentview"
#: frames kept per query: the query's own frame and a few steps later (training jitter)
FRAME_OFFSETS = (0, 2, 5)
IGNORE = -100  # target of a head that does not apply (a release has no part)
#: how the pointer matches part names to the instruction: "name" compares each instruction
#: token with the bare name's sentence embedding; "context" with the name embedded where an
#: instruction names a part (`PART_CONTEXT`), plus a literal word match (`part_match`)
POINTERS = ("name", "context")
PART_CONTEXT = "by its {}."


@dataclass
class PlannerEpisode:
    """One demo as a planner sequence.

    Attributes:
        instruction: the task's instruction.
        parts: the part names a skill may name (semantic parts, then spatial parts).
        chain: the skills in order.
        frames: (n + 1, len(FRAME_OFFSETS), H, W, 3) uint8 agentview frames per query, or None.
    """

    instruction: str
    parts: tuple[str, ...]
    chain: list[SkillCall]
    frames: np.ndarray | None = None


def part_vocabulary(category: str, parts: Sequence[str] | None = None) -> tuple[str, ...]:
    """The candidates a planner points at: the object's parts (default: its category's) and
    the spatial parts, in `PartVocabulary` order."""
    from robopolicy.planners.vocabulary import PartVocabulary

    if parts is None:
        from sims.objects.geometry import load_category_spec

        parts = load_category_spec(category)["parts"]
    return PartVocabulary(tuple(parts), category=category).entries


def _query_frames(images: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """Per query k: the frames at starts[k] + offsets (the last query: the final frames)."""
    last = len(images) - 1
    rows = []
    for k in range(len(starts) + 1):
        if k < len(starts):
            idx = [min(starts[k] + o, last) for o in FRAME_OFFSETS]
        else:
            idx = [max(last - o, 0) for o in FRAME_OFFSETS]
        rows.append(images[idx])
    return np.stack(rows)


def planner_episodes(store: EpisodeStore, indices: Sequence[int] | None = None,
                     images: bool = True) -> list[PlannerEpisode]:
    """The store's successful episodes with a complete recorded chain as planner sequences
    (`images`: read each query's agentview frames; the store must hold `rgb.agentview`)."""
    if images and IMAGE_KEY not in store.keys:
        raise RobopolicyError(f"dataset {store.path}: no '{IMAGE_KEY}' (the learned planner looks "
                              "at the agentview camera; collect with it in suite.env.obs_keys, or "
                              "train with policy.use_image=false)")
    metas = store.episodes()
    indices = range(len(metas)) if indices is None else indices
    out, vocab = [], {}
    for i in progress(indices, desc="planner data", unit="ep"):
        meta = metas[i]
        where = f"dataset {store.path}: episode {i}"
        try:
            chain = [SkillCall(c["skill"], dict(c.get("params") or {}))
                     for c in json.loads(meta.get("chain") or "[]")]
            starts = [int(s) for s in json.loads(meta.get("skill_starts") or "[]")]
        except (ValueError, TypeError, KeyError) as exc:
            raise RobopolicyError(f"{where}: unreadable chain/skill_starts ({exc})") from None
        if not chain:
            raise RobopolicyError(f"{where}: no skill chain recorded; the learned planner needs "
                                  "a store collected with per-episode chains")
        if not meta["success"] or len(starts) != len(chain):
            continue  # a failed demo does not show the whole chain
        category = meta["category"]
        if category not in vocab:
            vocab[category] = part_vocabulary(category)
        frames = None
        if images:
            frames = _query_frames(store.get_episode(i, [IMAGE_KEY])[IMAGE_KEY], starts)
        out.append(PlannerEpisode(meta["instruction"], vocab[category], chain, frames))
    if not out:
        raise RobopolicyError(f"dataset {store.path}: no successful episode with a recorded chain")
    return out


def encode_call(call: SkillCall, parts: Sequence[str]) -> tuple[int, int, int]:
    """(skill class, direction index or IGNORE, part index or IGNORE) of a call."""
    direction = call.params.get("direction")
    part = call.params.get("part")
    if part is not None and part not in parts:
        raise RobopolicyError(f"skill {call}: part '{part}' is not in the vocabulary {list(parts)}")
    return (SKILLS.index(call.skill),
            IGNORE if direction is None else DIRECTION_NAMES.index(direction),
            IGNORE if part is None else list(parts).index(part))


class PlannerBatcher:
    """Episodes (or one episode's query so far) -> the planner network's input tensors.

    Text goes in as MiniLM token embeddings, parts as MiniLM embeddings of their names, and
    `part_sim` (candidate x token cosine similarity) lets the pointer match a part's name
    to where the instruction mentions it, for part names never seen in training. With
    `pointer="context"` a part's name is embedded inside `PART_CONTEXT`, and `part_match`
    (candidate x token: 1 where the token is one of the name's words) adds the literal match.
    """

    def __init__(self, text: TextEncoder, pointer: str = "name") -> None:
        if pointer not in POINTERS:
            raise RobopolicyError(f"planner pointer {pointer!r}: unknown (known: {', '.join(POINTERS)})")
        self.text = text
        self.pointer = pointer
        # every batch repeats the same vocabularies and instructions: built once each
        self._part_cache: dict[tuple[str, ...], torch.Tensor] = {}
        self._match_cache: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}

    def _parts(self, names: Sequence[str]) -> torch.Tensor:
        key = tuple(names)
        if key not in self._part_cache:
            phrases = [n.replace("_", " ") for n in names]
            self._part_cache[key] = (self.text.in_context(phrases, PART_CONTEXT)
                                     if self.pointer == "context" else self.text(phrases))
        return self._part_cache[key]

    def _match(self, names: Sequence[str], instruction: str) -> torch.Tensor:
        """(P, T): 1 where instruction token t is one of part p's words (as tokenized)."""
        key = (tuple(names), instruction)
        if key not in self._match_cache:
            pieces = self.text.wordpieces([instruction])[0]
            words = self.text.wordpieces([n.replace("_", " ") for n in names])
            self._match_cache[key] = torch.tensor([[float(t in w[1:-1]) for t in pieces]
                                                   for w in words])
        return self._match_cache[key]

    def __call__(self, episodes: Sequence[PlannerEpisode], rng: np.random.Generator | None = None,
                 history: Sequence[Sequence[SkillCall]] | None = None,
                 frames: Sequence[np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """Training batch (targets included) of whole episodes; or, with `history` (the calls
        finished so far per episode) and `frames` ((k + 1, H, W, 3) per episode, the frame
        of each query so far), the inputs of the next query (no targets)."""
        infer = history is not None
        calls = [list(h) for h in history] if infer else [e.chain for e in episodes]
        B = len(episodes)
        L = max(len(c) for c in calls) + 1
        tokens = self.text.tokens([e.instruction for e in episodes])
        T = max(len(t) for t in tokens)
        P = max(len(e.parts) for e in episodes)
        out = {
            "tokens": torch.zeros(B, T, self.text.dim), "token_mask": torch.zeros(B, T, dtype=torch.bool),
            "parts": torch.zeros(B, P, self.text.dim), "part_mask": torch.zeros(B, P, dtype=torch.bool),
            "part_sim": torch.zeros(B, P, T),
            **({"part_match": torch.zeros(B, P, T)} if self.pointer == "context" else {}),
            "in_skill": torch.full((B, L), START_TOKEN, dtype=torch.long),
            "in_direction": torch.full((B, L), NO_DIRECTION, dtype=torch.long),
            "in_part": torch.full((B, L), IGNORE, dtype=torch.long),
            "position_mask": torch.zeros(B, L, dtype=torch.bool),
        }
        if not infer:
            out |= {k: torch.full((B, L), IGNORE, dtype=torch.long)
                    for k in ("skill", "direction", "part")}
        has_frames = (frames is not None) if infer else all(e.frames is not None for e in episodes)
        if has_frames:
            h, w = (frames[0] if infer else episodes[0].frames).shape[-3:-1]
            out["images"] = torch.zeros(B, L, h, w, 3, dtype=torch.uint8)
        for b, (ep, chain) in enumerate(zip(episodes, calls, strict=True)):
            tok = torch.from_numpy(tokens[b])
            emb = self._parts(ep.parts)
            out["tokens"][b, :len(tok)] = tok
            out["token_mask"][b, :len(tok)] = True
            out["parts"][b, :len(emb)] = emb
            out["part_mask"][b, :len(emb)] = True
            out["part_sim"][b, :len(emb), :len(tok)] = emb @ tok.T
            if self.pointer == "context":
                out["part_match"][b, :len(emb), :len(tok)] = self._match(ep.parts, ep.instruction)
            n = len(chain)
            out["position_mask"][b, :n + 1] = True
            for k, call in enumerate(chain):
                s, d, p = encode_call(call, ep.parts)
                out["in_skill"][b, k + 1], out["in_part"][b, k + 1] = s, p
                out["in_direction"][b, k + 1] = NO_DIRECTION if d == IGNORE else d
                if not infer:
                    out["skill"][b, k], out["direction"][b, k], out["part"][b, k] = s, d, p
            if not infer:
                out["skill"][b, n] = DONE_CLASS
            if has_frames:
                if infer:
                    img = torch.from_numpy(np.asarray(frames[b]))
                else:  # each query sees one of its frames, drawn per batch
                    pick = (rng.integers(len(FRAME_OFFSETS), size=n + 1) if rng is not None
                            else np.zeros(n + 1, np.int64))
                    img = torch.from_numpy(ep.frames[np.arange(n + 1), pick])
                out["images"][b, :len(img)] = img
        return out
