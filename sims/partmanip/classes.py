"""The suite's 16 task classes as skill-chain templates (PartInstruct's design).

A template is a sequence of skills over placeholders: P = the part grasped or touched first,
Q = the part of the second phase, R = the part a rotation turns to face F, D1..D3 = move
directions. Classes 12-16 have two phases; phase 2 counts only once phase 1 is done (the
chain tracker checks skills in order), and a phase always ends with the object released or
held as its last skill says.

| class | chain |
|---|---|
| 1 | grasp(P) |
| 2 | touch(P) |
| 3 | grasp(P) move(D1) |
| 4 | touch(P) move(D1): push, the object stays on the table |
| 5 | grasp(P) move(D1) release |
| 6 | touch(P) move(D1) release |
| 7 | grasp(P) move(D1) move(D2) |
| 8 | grasp(P) move(top) rotate(R, F): "pick up the bottle and show me the cap" |
| 9 | grasp(P) move(D1) move(D2) move(D3) |
| 10 | grasp(P) move(D1) move(D2) rotate(R, F) |
| 11 | grasp(P) move(top) rotate(R, F) move(bottom) release: show it, then put it back |
| 12 | touch(P) move(D1) release / grasp(Q) move(top) |
| 13 | touch(P) move(D1) release / touch(Q) move(D2) release |
| 14 | grasp(P) move(top) rotate(R, F) move(bottom) release / touch(Q) move(D1) release |
| 15 | touch(P) move(D1) release / grasp(Q) move(top) rotate(R, F) |
| 16 | grasp(P) move(D1) release / grasp(Q) move(D2) release |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sims.core.directions import DIRECTIONS

MOVE_DISTANCE = 0.12  # metres
HORIZONTAL = ("front", "back", "left", "right")

TEMPLATES: dict[int, tuple[str, ...]] = {  # one string per phase
    1: ("grasp(P)",),
    2: ("touch(P)",),
    3: ("grasp(P) move(D1)",),
    4: ("touch(P) move(D1)",),
    5: ("grasp(P) move(D1) release",),
    6: ("touch(P) move(D1) release",),
    7: ("grasp(P) move(D1) move(D2)",),
    8: ("grasp(P) move(top) rotate(R,F)",),
    9: ("grasp(P) move(D1) move(D2) move(D3)",),
    10: ("grasp(P) move(D1) move(D2) rotate(R,F)",),
    11: ("grasp(P) move(top) rotate(R,F) move(bottom) release",),
    12: ("touch(P) move(D1) release", "grasp(Q) move(top)"),
    13: ("touch(P) move(D1) release", "touch(Q) move(D2) release"),
    14: ("grasp(P) move(top) rotate(R,F) move(bottom) release", "touch(Q) move(D1) release"),
    15: ("touch(P) move(D1) release", "grasp(Q) move(top) rotate(R,F)"),
    16: ("grasp(P) move(D1) release", "grasp(Q) move(D2) release"),
}
CLASSES: tuple[int, ...] = tuple(sorted(TEMPLATES))
_TOKEN = re.compile(r"(\w+)(?:\(([^)]*)\))?")


@dataclass(frozen=True)
class TaskParams:
    """The values a class template's placeholders take."""

    part: str  # P
    directions: tuple[str, ...] = ()  # D1, D2, D3
    rotate_part: str | None = None  # R
    facing: str | None = None  # F
    part2: str | None = None  # Q

    def key(self) -> str:
        """A short stable id of the parameters, e.g. "handle-top-left" or "body-r.handle.front"."""
        bits = [self.part, *self.directions]
        if self.rotate_part:
            bits.append(f"r.{self.rotate_part}.{self.facing}")
        if self.part2:
            bits.append(f"q.{self.part2}")
        return "-".join(bits)


def placeholders(task_class: int) -> set[str]:
    """The placeholders a class's template uses (P, Q, R, F, D1, D2, D3)."""
    _check_class(task_class)
    out = set()
    for phase in TEMPLATES[task_class]:
        for _, args in _TOKEN.findall(phase):
            out |= {a.strip() for a in args.split(",") if a.strip() and a.strip() not in DIRECTIONS}
    return out


def n_directions(task_class: int) -> int:
    """How many free move directions (D1..D3) a class takes."""
    return sum(p.startswith("D") for p in placeholders(task_class))


def _check_class(task_class: int) -> None:
    if task_class not in TEMPLATES:
        raise ValueError(f"unknown task class {task_class!r} (known: 1..{len(TEMPLATES)})")


def build_chain(task_class: int, params: TaskParams) -> tuple[tuple, tuple[int, ...]]:
    """The skill chain of a class with its placeholders filled, and the chain index where each
    phase starts. Returns (tuple of (skill, params dict)), phase starts)."""
    _check_class(task_class)
    need = placeholders(task_class)
    values = {"P": params.part, "Q": params.part2, "R": params.rotate_part, "F": params.facing}
    ds = params.directions
    if len(ds) != n_directions(task_class):
        raise ValueError(f"task class {task_class} takes {n_directions(task_class)} move "
                         f"directions, got {list(ds)}")
    for i, d in enumerate(ds):
        if d not in DIRECTIONS:
            raise ValueError(f"task class {task_class}: direction {d!r} is not one of {sorted(DIRECTIONS)}")
        values[f"D{i + 1}"] = d
    missing = sorted(k for k in need if k in values and values[k] is None)
    if missing:
        raise ValueError(f"task class {task_class} needs {', '.join(missing)} "
                         "(Q = part2, R = rotate_part, F = facing)")
    if "F" in need and params.facing not in HORIZONTAL:
        raise ValueError(f"task class {task_class}: facing must be one of {HORIZONTAL}, "
                         f"got {params.facing!r}")
    chain, starts = [], []
    for phase in TEMPLATES[task_class]:
        starts.append(len(chain))
        for skill, args in _TOKEN.findall(phase):
            a = [values.get(x.strip(), x.strip()) for x in args.split(",") if x.strip()]
            if skill in ("grasp", "touch"):
                chain.append((skill, {"part": a[0]}))
            elif skill == "move":
                chain.append((skill, {"direction": a[0], "distance": MOVE_DISTANCE}))
            elif skill == "rotate":
                chain.append((skill, {"part": a[0], "direction": a[1]}))
            else:
                chain.append((skill, {}))
    return tuple(chain), tuple(starts)
