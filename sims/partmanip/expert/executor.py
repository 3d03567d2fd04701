"""The scripted expert: executes skill calls one after another by TCP waypoints, planned from
ground truth, with the env's own action interface (absolute TCP targets at 20 Hz).

It may read privileged state (part point clouds, object pose), so it is the suite's oracle:
demonstrations come from it, and its success rate is the ceiling a policy can reach.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sims.core.control import CONTROL_HZ
from sims.core.rotations import rot6d_to_mat
from sims.partmanip.expert.params import ExpertParams
from sims.partmanip.expert.recovery import Recovery
from sims.partmanip.expert.skills.base import Core, ExpertFailure
from sims.partmanip.expert.state import SkillContext, SkillState, goal_from, goal_predicates
from sims.partmanip.expert.trajectory import Waypoints
from sims.partmanip.tasks import SkillCall


class ScriptedExpert:
    """Executes skill calls by waypoints: call `reset(env)` after `env.reset`, then `act(env)`
    once per step.

    By default it follows the env's task chain, each skill from the step the env's chain
    tracker reaches it. `start_skill(call, context)` executes any call from the state the scene
    is in instead (a planner choosing the skills); `skill_done(env)` says when its goal holds.
    Either way a skill starts once the previous one's waypoints have ended: a skill's goal can
    hold before they do (a grasp holds while the fingers still close), and finishing them keeps
    every transition visible in the observations (fingers settled, then lift), which a learned
    policy needs. When a skill's waypoints end without its goal (a slipped grasp, a short
    push), the skill is planned again from the current state.
    """

    def __init__(self, params: ExpertParams | None = None):
        self.params = params or ExpertParams()
        self._core: Core | None = None

    # -- public ---------------------------------------------------------------------------
    def reset(self, env, follow_chain: bool = True) -> None:
        """Start an episode from the env's commanded target; `follow_chain`: execute the env's
        task chain (else nothing until `start_skill`)."""
        t = env.commanded_target
        self._core = Core(self.params, Waypoints(t[:3].copy(), rot6d_to_mat(t[3:9]), float(t[9])))
        self._recovery = Recovery(self._core)
        self._follow = follow_chain
        self._synced = -1  # the chain index last taken from the tracker
        self._finished = False  # the tracker is past the chain's end
        self._pending: tuple[SkillCall, SkillContext] | None = None  # started, not yet planned
        self._settle = 0  # steps waited for a held object to stop swinging before the pending skill
        self._last_obj: np.ndarray | None = None  # the object's position one step ago

    def start_skill(self, call: SkillCall, context: SkillContext | None = None) -> None:
        """Execute `call` from here on (after any waypoints still queued), whatever the env's
        chain says; `context` places it in its plan (default: alone, its goal from the scene
        at the next `act`). The expert follows the env's chain no more."""
        if self._core is None:
            raise RuntimeError("ScriptedExpert.start_skill before reset(env)")
        self._follow, self._finished = False, False
        self._pending = (call, context or SkillContext())

    def skill_done(self, env) -> bool:
        """True once the last started skill has begun and its goal predicates hold, its
        waypoints ended or not: the step the env's chain tracker would move on. The next
        `start_skill` then waits for the waypoints as a chain skill does, and a move measured
        from this step's scene aims where the tracker's next move does."""
        s = self._core.skill
        if self._pending is not None or s is None:
            return False
        return all(goal_predicates(env.snapshot(), s.call, s.ctx, s.ctx.goal).values())

    @property
    def moving(self) -> bool:
        """Whether waypoints of a begun skill still run (a skill started now waits for them)."""
        return self._core is not None and bool(self._core.path)

    @property
    def counts(self) -> dict[str, int]:
        """The recoveries of this episode, by kind: `drops` (a carry lost its object),
        `replans` (waypoints ended without the goal), `unplanned` (a plan found no way),
        `reaims` (a push aimed again elsewhere)."""
        return dict(self._core.counts) if self._core is not None else {}

    def act(self, env) -> np.ndarray:
        """The next action (10,) for `env` in its current state."""
        core, p = self._core, self.params
        path = core.path
        if self._follow:
            self._sync(env)
        obj = env.snapshot().object_pos
        if self._pending is not None and self._pending[1].goal is None:
            call, ctx = self._pending
            self._pending = (call, replace(ctx, goal=goal_from(call, env.snapshot())))
        moving = self._last_obj is not None and np.linalg.norm(obj - self._last_obj) > p.settle_speed / CONTROL_HZ
        self._last_obj = obj.copy()
        s = core.skill
        # the skill the scene is at: the started one, else the one whose waypoints run
        current = self._pending or (None if s is None or self._finished else (s.call, s.ctx))
        if ((self._pending is not None or self._finished) and s is not None and s.push_target is not None
                and path and np.linalg.norm(obj - s.push_target) < p.push_stop):
            # the push's goal holds and the object is nearly at its target: stop pushing (the
            # overshoot only makes up for an object lagging behind the fingers)
            path.clear()
        if (self._pending is not None and not path and moving and self._settle < p.settle_max
                and self._pending[1].held(self._pending[0])[0] == "grasp"
                and self._pending[0].skill in ("move", "rotate")):
            # a held object still swings from the last skill (an object hanging from its frame
            # after a turn): wait for it to come to rest, else the next move carries the swing
            self._settle += 1
        elif self._pending is not None and not path:
            call, ctx = self._pending
            self._pending, self._settle = None, 0
            core.skill = SkillState(call, ctx)
            self._plan_or_wait(self._recovery.plan, env, call, ctx)
        elif path and current is not None and s is not None and self._recovery.dropped(env, *current):
            # The held object fell out of the fingers (or the pushing fingers slid off) in the
            # middle of a carry: finishing the waypoints would move an empty hand, so take it
            # again from where it lies now.
            if s.replans < p.max_replans:
                core.counts["drops"] += 1
                path.clear()
                s.lost, s.idle, s.replans = 0, 0, s.replans + 1
                s.recovering = True
                self._plan_or_wait(self._replan, env, *current)
        elif not path and current is not None:
            # The goal is still unmet with every waypoint done (a grasp slipped, a push fell
            # short, the object lagged): plan the skill again from the state it is in now.
            s.idle += 1
            if s.idle >= p.idle_replan and s.replans < p.max_replans:
                core.counts["replans"] += 1
                s.idle, s.replans = 0, s.replans + 1
                self._plan_or_wait(self._replan, env, *current)
        # With no waypoints left, the last target holds until the skill's goal is met.
        path.advance()
        return path.action()

    # -- internals ------------------------------------------------------------------------
    def _sync(self, env) -> None:
        """Start the skill the env's chain tracker is at, once it moves on."""
        idx = env.tracker.index
        if idx == self._synced:
            return
        self._synced = idx
        chain = env.task.chain
        if idx >= len(chain):
            self._pending, self._finished = None, True
            return
        ctx = SkillContext(chain[:idx], chain[idx + 1:], env.tracker.skill_goal(), env.task.horizon)
        self._pending = (chain[idx], ctx)

    def _predicates(self, env, call: SkillCall, ctx: SkillContext) -> dict[str, bool]:
        """The current skill's goal predicates: the tracker's when following the chain."""
        if self._follow:
            return env.tracker.predicates
        return goal_predicates(env.snapshot(), call, ctx, ctx.goal)

    def _replan(self, env, call: SkillCall, ctx: SkillContext) -> None:
        self._recovery.replan(env, call, ctx, self._predicates(env, call, ctx))

    def _plan_or_wait(self, plan, env, call: SkillCall, ctx: SkillContext) -> None:
        """`plan(env, call, ctx)`; if it finds no way (no grasp, no free side: the object still
        rocks or lies oddly after a push or a drop), rise clear instead and plan again once
        `idle_replan` steps have passed, at most `max_replans` times per skill."""
        s = self._core.skill
        try:
            plan(env, call, ctx)
        except ExpertFailure:
            if s.replans >= self.params.max_replans:
                raise
            s.replans += 1
            self._core.counts["unplanned"] += 1
            self._recovery.grasp.back_off()
            s.recovering = True  # no drop checks until the fingers are on the object again
            s.unplanned = True  # the next replan plans the skill afresh
