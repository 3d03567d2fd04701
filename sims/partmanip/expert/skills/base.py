"""The base the skill planners share: the waypoints they queue, the tunings, and the state of
the hand and of the skill in progress, with the moves every skill makes (go, approach, back off)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sims.partmanip.expert.params import ExpertParams
from sims.partmanip.expert.state import HandState, SkillContext, SkillState
from sims.partmanip.expert.trajectory import Waypoints
from sims.partmanip.tasks import SkillCall


class ExpertFailure(RuntimeError):
    """The expert found no way to do the current skill (e.g. no feasible grasp)."""


class Core:
    """The mutable state one expert's planners share within an episode."""

    def __init__(self, params: ExpertParams, path: Waypoints):
        self.params = params
        self.path = path
        self.hand = HandState()
        self.skill: SkillState | None = None  # the skill whose waypoints are planned
        self.counts: Counter[str] = Counter()  # recoveries this episode, by kind


class SkillPlanner:
    """Plans one kind of skill as TCP waypoints appended to the shared queue."""

    def __init__(self, core: Core):
        self.core = core

    @property
    def p(self) -> ExpertParams:
        return self.core.params

    @property
    def path(self) -> Waypoints:
        return self.core.path

    @property
    def hand(self) -> HandState:
        return self.core.hand

    @property
    def skill(self) -> SkillState:
        return self.core.skill

    def plan(self, env, call: SkillCall, ctx: SkillContext) -> None:
        """Queue the waypoints that do `call` from where the queued ones end."""
        raise NotImplementedError

    def go(self, pos, mat, gripper: float, speed: float | None = None, steps: int | None = None,
           rot_speed: float | None = None) -> None:
        """Queue a segment at `speed` / `rot_speed` (default: the free hand's)."""
        self.path.go(pos, mat, gripper, speed or self.p.speed, rot_speed or self.p.rot_speed, steps)

    def approach(self, snap, pos, mat, gripper: float, final_speed: float | None = None,
                 rot_speed: float | None = None) -> None:
        """Come down onto `pos` from `approach_height` above it, travelling there above the
        object: a straight line from where the hand is could sweep through a tall object.
        `rot_speed`: how fast the hand turns on the way (default `rot_speed`)."""
        start, start_mat = self.path.end()
        above = np.asarray(pos, float) + [0.0, 0.0, self.p.approach_height]
        clear = float(snap.object_points()[:, 2].max()) + self.p.approach_clearance
        if min(start[2], above[2]) < clear and np.linalg.norm((above - start)[:2]) > self.p.detour_min:
            high = max(clear, above[2])
            if start[2] < high:
                self.go([start[0], start[1], high], start_mat, gripper)
            self.go([above[0], above[1], high], mat, gripper, rot_speed=rot_speed)
        self.go(above, mat, gripper, rot_speed=rot_speed)
        if final_speed is not None:  # fast down to just above, slow for the last bit
            self.go(np.asarray(pos, float) + [0.0, 0.0, self.p.slow_last], mat, gripper)
        self.go(pos, mat, gripper, speed=final_speed)

    def back_off(self) -> None:
        """Open the fingers and rise clear (backing away from a pushed side first)."""
        pos = self.path.pos.copy()
        self.go(pos, self.path.mat, 1.0, steps=self.p.close_steps)
        if self.hand.push_dir is not None:
            pos = pos - self.hand.push_dir * self.p.retreat
            self.go(pos, self.path.mat, 1.0)
            self.hand.push_dir = None
        self.go(pos + [0.0, 0.0, self.p.back_off_rise], self.path.mat, 1.0)

    @staticmethod
    def wrist_joint(env) -> float:
        """Joint 7's position now (rad)."""
        return float(env.backend.arm_joint_positions()[6])
