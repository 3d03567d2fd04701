"""What the expert knows about the skill it executes: the call's context in its plan, the
state of its attempts, and what the hand is doing to the object across skills."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip import predicates as P
from sims.partmanip.chain import held_part
from sims.partmanip.classes import MOVE_DISTANCE
from sims.partmanip.tasks import SkillCall


@dataclass(frozen=True)
class SkillContext:
    """What executing one skill call needs beyond the call itself.

    `before`: the calls done earlier in the plan (a move or turn carries the part the last
    grasp or touch among them took); `after`: the rest of the plan, next call first (a touch
    pushes the way the next move goes; a last push hurries to end by the deadline).
    `goal`: where the object should be when the skill ends, world frame, metres: a move's
    target, else where the object was as the skill began; None: taken from the scene when the
    expert plans the skill. `deadline`: the env step (as `env.elapsed_steps` counts) by which
    the plan must end; None: the task's horizon."""

    before: tuple[SkillCall, ...] = ()
    after: tuple[SkillCall, ...] = ()
    goal: np.ndarray | None = None
    deadline: int | None = None

    @classmethod
    def starting(cls, call: SkillCall, start: P.Snapshot, before: tuple[SkillCall, ...] = (),
                 after: tuple[SkillCall, ...] = (), deadline: int | None = None) -> SkillContext:
        """The context of `call` begun in the scene `start` (its goal placed as the chain
        tracker places it)."""
        return cls(tuple(before), tuple(after), goal_from(call, start), deadline)

    @property
    def next_call(self) -> SkillCall | None:
        return self.after[0] if self.after else None

    def held(self, call: SkillCall) -> tuple[str | None, str | None]:
        """The (skill, part) of the last grasp or touch before `call`: what it carries."""
        return held_part((*self.before, call), len(self.before))


def goal_from(call: SkillCall, start: P.Snapshot) -> np.ndarray:
    """Where the object should be when `call` ends, begun in `start`: a move's target, else
    where the object is in `start`."""
    if call.skill != "move":
        return start.object_pos.copy()
    return start.object_pos.copy() + DIRECTIONS[call.params["direction"]] * call.params.get("distance", MOVE_DISTANCE)


def goal_predicates(snap: P.Snapshot, call: SkillCall, ctx: SkillContext, goal: np.ndarray) -> dict[str, bool]:
    """`call`'s goal predicates in `snap`, by name, as the env's chain tracker judges them."""
    part = call.params.get("part")
    if call.skill == "grasp":
        return {"grasping": P.grasping(snap, part)}
    if call.skill == "touch":
        return {"touching": P.touching(snap, part)}
    how, held = ctx.held(call)
    out: dict[str, bool] = {}
    if call.skill == "move":
        out["at_position"] = P.at_position(snap, goal)
        if how == "touch":
            out["touching"] = P.touching(snap, held)
            out["on_table"] = P.on_table(snap)
    elif call.skill == "rotate":
        out["facing"] = P.facing(snap, part, call.params["direction"])
    elif call.skill == "release":
        return {"released": P.released(snap)}
    if how == "grasp":
        out["grasping"] = P.grasping(snap, held)
    return out


@dataclass
class SkillState:
    """The attempts on the skill in progress; fresh for every skill."""

    call: SkillCall
    ctx: SkillContext  # its goal set
    idle: int = 0  # steps waited with nothing queued and the goal unmet
    replans: int = 0
    lost: int = 0  # consecutive steps the held object has been out of the fingers
    recovering: bool = False  # a dropped object is being taken again: no drop checks
    push_target: np.ndarray | None = None  # where the current push brings the object
    avoid: list[np.ndarray] = field(default_factory=list)  # object-frame points a re-aimed push keeps clear of
    reaims: int = 0  # pushes re-aimed on this skill
    reaim: str | None = None  # push direction to re-aim once the hand has backed off
    hand_clear: bool = False  # the hand pushed the object: a re-aimed push keeps it clear
    unplanned: bool = False  # the last plan found no way: the hand backed off, nothing to mend


@dataclass
class HandState:
    """What the hand does to the object, carried from skill to skill within an episode."""

    push_dir: np.ndarray | None = None  # set while the fingers push the object
    push_from: np.ndarray | None = None  # the object's position as the push began
    top_from: np.ndarray | None = None  # the object's position as a top touch was planned
    grasp_tries: dict[str, int] = field(default_factory=dict)  # part -> grasps planned on it
