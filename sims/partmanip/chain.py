"""Tracks an episode's progress through its skill chain by evaluating goal predicates."""

from __future__ import annotations

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip import predicates as P
from sims.partmanip.tasks import SkillCall, TaskSpec


def held_part(chain: tuple[SkillCall, ...], index: int) -> tuple[str | None, str | None]:
    """The (skill, part) of the last grasp/touch before `index`: what a move must keep holding."""
    for call in reversed(chain[:index]):
        if call.skill in ("grasp", "touch"):
            return call.skill, call.params["part"]
    return None, None


def target_part(chain: tuple[SkillCall, ...], index: int) -> str | None:
    """The part the skill at `index` acts on (for move/release: the held part)."""
    if index < len(chain) and "part" in chain[index].params:
        return chain[index].params["part"]
    return held_part(chain, min(index, len(chain)))[1]


class ChainTracker:
    """Advances through the chain when the current skill's goal predicates all hold.

    Skills are checked in order, so a later skill never counts before an earlier one.
    `completion` is the fraction of skills whose goals have been met.
    """

    def __init__(self, task: TaskSpec):
        self.task = task
        self.index = 0
        self.predicates: dict[str, bool] = {}
        self._move_start: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.task.chain)

    @property
    def completion(self) -> float:
        return self.index / len(self.task.chain)

    def reset(self, snap: P.Snapshot) -> None:
        self.index = 0
        self._begin_skill(snap)
        self.predicates = self.evaluate(snap)

    def _begin_skill(self, snap: P.Snapshot) -> None:
        self._move_start = snap.object_pos.copy()

    @property
    def move_start(self) -> np.ndarray:
        """Where the object was when the current skill began (after the chain: the last one)."""
        return self._move_start.copy()

    def restore(self, index: int, move_start: np.ndarray, snap: P.Snapshot) -> None:
        """Put the tracker at chain `index`, its skill begun with the object at `move_start`
        (an explicit state), and evaluate the skill's goal predicates in `snap`."""
        if not 0 <= index <= len(self.task.chain):
            raise ValueError(f"skill index {index} outside the chain of {len(self.task.chain)} skills")
        self.index = int(index)
        self._move_start = np.asarray(move_start, float).copy()
        self.predicates = self.evaluate(snap)

    def move_target(self) -> np.ndarray | None:
        """Where the current move skill must bring the object (None if not a move)."""
        if self.done or self.task.chain[self.index].skill != "move":
            return None
        p = self.task.chain[self.index].params
        return self._move_start + DIRECTIONS[p["direction"]] * p.get("distance", 0.12)

    def skill_goal(self) -> np.ndarray:
        """Where the object should be when the current skill ends: the move target for a move,
        else where the object was when the skill began (after the chain, where it ended).

        Observable in `state` because a policy that sees two frames cannot otherwise tell
        where a move started once the object has left the table."""
        target = self.move_target()
        return (target if target is not None else self._move_start).copy()

    def evaluate(self, snap: P.Snapshot) -> dict[str, bool]:
        """The current skill's goal predicates, by name."""
        if self.done:
            return {}
        call = self.task.chain[self.index]
        if call.skill == "grasp":
            return {"grasping": P.grasping(snap, call.params["part"])}
        if call.skill == "touch":
            return {"touching": P.touching(snap, call.params["part"])}
        if call.skill == "move":
            out = {"at_position": P.at_position(snap, self.move_target())}
            how, part = held_part(self.task.chain, self.index)
            if how == "grasp":
                out["grasping"] = P.grasping(snap, part)
            elif how == "touch":
                out["touching"] = P.touching(snap, part)
                out["on_table"] = P.on_table(snap)
            return out
        if call.skill == "rotate":
            out = {"facing": P.facing(snap, call.params["part"], call.params["direction"])}
            how, part = held_part(self.task.chain, self.index)
            if how == "grasp":
                out["grasping"] = P.grasping(snap, part)
            return out
        if call.skill == "release":
            return {"released": P.released(snap)}
        raise NotImplementedError(f"skill {call.skill!r} has no goal predicates yet")

    def update(self, snap: P.Snapshot) -> bool:
        """Evaluate the current skill; advance if met. Returns True if a skill was completed."""
        self.predicates = self.evaluate(snap)
        if self.predicates and all(self.predicates.values()):
            self.index += 1
            if not self.done:
                self._begin_skill(snap)
            return True
        return False
