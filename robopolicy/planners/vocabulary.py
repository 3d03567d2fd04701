"""The object's part vocabulary a planner may name, and near-miss snapping into it.

The vocabulary is the object's semantic parts (its category's part names, e.g. a mug's
handle, body, contents) plus the spatial parts every object has (left, right, front, back,
top, bottom, middle: `sims.objects.spatial`; pushes touch a side, e.g. "touch the left of the
box"). A name outside it is first normalised (case, spaces, hyphens, a leading "the"); if it
still misses, it is snapped to the most similar entry by MiniLM cosine similarity when that
similarity reaches `threshold`, else rejected.

Threshold 0.75 (measured with the shipped all-MiniLM-L6-v2): phrases that contain the part's
name score 0.78-0.90 against it ("the handle" 0.88, "top lid" -> lid 0.90, "front side" ->
front 0.83, "left side" -> left 0.79, "screenframe" -> screen frame 0.87), while the closest
pairs of different parts stay at or below 0.58 (front/back 0.58, grip/handle 0.58, neck/mouth
0.51, lid/cap 0.48). MiniLM does not see through misspellings ("handel" -> handle 0.45,
"lefft" -> left 0.18): those are rejected, and the planner is asked again with the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from robopolicy.planners.grammar import PlannerAnswerError
from sims.objects.spatial import SPATIAL_PARTS

if TYPE_CHECKING:
    from sims.partmanip.tasks import TaskSpec

DEFAULT_SNAP_THRESHOLD = 0.75


@lru_cache(maxsize=1)
def _encoder():
    from robopolicy.models.text_encoder import TextEncoder

    return TextEncoder("minilm")


def _words(name: str) -> str:
    return name.replace("_", " ")


def normalise(name: str) -> str:
    """A part name as the vocabulary spells it: lower case, words joined by "_", no "the"."""
    words = name.strip().lower().replace("-", " ").replace("_", " ").split()
    if words and words[0] == "the":
        words = words[1:]
    return "_".join(words)


@dataclass(frozen=True)
class ObjectInfo:
    """What a planner knows about the object: its category and semantic part names.

    `task` is privileged (the ground-truth chain): only the oracle planner reads it.
    """

    category: str
    parts: tuple[str, ...]
    task: TaskSpec | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_task(cls, task: TaskSpec, parts: Sequence[str] | None = None) -> ObjectInfo:
        """The task's object; `parts` default to its category's part names (an instance may
        lack an optional one: pass the instance's own parts, e.g. the env's asset.parts)."""
        if parts is None:
            from sims.objects.geometry import load_category_spec

            parts = load_category_spec(task.category)["parts"]
        return cls(task.category, tuple(parts), task)


class PartVocabulary:
    """The part names a planner's answer may use for one object; `resolve` maps a name into it."""

    def __init__(self, parts: Sequence[str], *, spatial: Sequence[str] = SPATIAL_PARTS,
                 threshold: float = DEFAULT_SNAP_THRESHOLD, category: str = "object") -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"snap threshold must be in (0, 1], got {threshold}")
        self.semantic = tuple(parts)
        self.spatial = tuple(p for p in spatial if p not in self.semantic)
        self.entries: tuple[str, ...] = self.semantic + self.spatial
        self.threshold = threshold
        self.category = category

    @classmethod
    def for_object(cls, info: ObjectInfo, threshold: float = DEFAULT_SNAP_THRESHOLD) -> PartVocabulary:
        return cls(info.parts, threshold=threshold, category=info.category)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def similarities(self, name: str) -> dict[str, float]:
        """MiniLM cosine similarity of `name` to every entry (entries written as words)."""
        enc = _encoder()
        query = enc([_words(normalise(name))])
        table = enc([_words(e) for e in self.entries])
        scores = (table @ query[0]).tolist()
        return dict(zip(self.entries, scores, strict=True))

    def resolve(self, name: str) -> str:
        """`name` as a vocabulary entry: itself, its normalised form, or the most similar entry
        when similarity >= threshold. Raises PlannerAnswerError naming the parts otherwise."""
        if name in self.entries:
            return name
        norm = normalise(name)
        if norm in self.entries:
            return norm
        if norm:
            scores = self.similarities(name)
            best = max(scores, key=scores.get)
            if scores[best] >= self.threshold:
                return best
            near = f"; nearest '{best}' at similarity {scores[best]:.2f} < {self.threshold}"
        else:
            near = ""
        raise PlannerAnswerError(f"part {name!r} is not a part of the {_words(self.category)} "
                                 f"(parts: {', '.join(self.entries)}){near}")
