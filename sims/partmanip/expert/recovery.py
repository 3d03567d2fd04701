"""Recovery: noticing that a carry lost its object, and planning a skill again from the state
it is in when its waypoints ended without its goal (a slipped grasp, a short push, a touch
that met the wrong part)."""

from __future__ import annotations

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip.expert.geometry import base_frame, push_direction
from sims.partmanip.expert.skills.base import Core, ExpertFailure, SkillPlanner
from sims.partmanip.expert.skills.grasp import GraspPlanner
from sims.partmanip.expert.skills.move import MovePlanner
from sims.partmanip.expert.skills.release import ReleasePlanner
from sims.partmanip.expert.skills.rotate import RotatePlanner
from sims.partmanip.expert.skills.touch import TouchPlanner, push_after
from sims.partmanip.expert.state import SkillContext
from sims.partmanip.tasks import SkillCall


class Recovery:
    """The skill planners sharing `core`, with drop detection and replanning over them."""

    def __init__(self, core: Core):
        self.core = core
        self.grasp, self.touch, self.move = GraspPlanner(core), TouchPlanner(core), MovePlanner(core)
        self.rotate, self.release = RotatePlanner(core), ReleasePlanner(core)
        self.planners: dict[str, SkillPlanner] = {
            "grasp": self.grasp, "touch": self.touch, "move": self.move, "rotate": self.rotate,
            "release": self.release}

    def plan(self, env, call: SkillCall, ctx: SkillContext) -> None:
        """Queue `call`'s waypoints, planned from the state the scene is in now."""
        planner = self.planners.get(call.skill)
        if planner is None:
            raise ExpertFailure(f"the expert cannot do skill {call.skill!r} yet")
        planner.plan(env, call, ctx)

    def dropped(self, env, call: SkillCall, ctx: SkillContext) -> bool:
        """True once a move or rotate has had no finger contact with the object it holds (or
        pushes) for `lost_steps` steps in a row."""
        skill = self.core.skill
        how = ctx.held(call)[0]
        if call.skill not in ("move", "rotate") or how is None:
            skill.lost = 0
            return False
        f = env.snapshot().finger_forces()
        if skill.recovering:  # until the fingers hold (or press on) the object again
            skill.recovering = min(f.values()) <= 0.0 if how == "grasp" else max(f.values()) <= 0.0
            return False
        skill.lost = skill.lost + 1 if max(f.values()) <= 0.0 else 0
        return skill.lost >= self.core.params.lost_steps(how)

    def replan(self, env, call: SkillCall, ctx: SkillContext, preds: dict[str, bool]) -> None:
        """Plan `call` again after its waypoints ended without its goal (`preds`: its goal
        predicates now): re-grasp or re-touch what a move lost, then move on to the target;
        otherwise retry the skill itself."""
        if call.skill == "move":
            self._replan_move(env, call, ctx, preds)
        elif call.skill == "grasp":
            self.grasp.back_off()
            self.grasp.grasp(env, call.params["part"], attempt=self.grasp.next_rank(call.params["part"]))
        elif call.skill == "rotate" and not preds.get("grasping", True) and not any(
                v > 0 for v in env.snapshot().finger_forces().values()):
            # the object fell while turning: pick it up again (the next-best grasp), then turn
            part = ctx.held(call)[1]
            self.grasp.back_off()
            self.grasp.grasp(env, part, attempt=self.grasp.next_rank(part))
            # back up to where the turn began: a move down may follow
            rise = float(ctx.goal[2] - env.snapshot().object_pos[2])
            end, mat = self.core.path.end()
            if rise > 0.0:
                self.grasp.go(end + [0.0, 0.0, rise], mat, 0.0, speed=self.core.params.carry_speed)
            self.rotate.rotate(env, ctx, call.params["part"], call.params["direction"])
        elif call.skill == "touch":
            self._replan_touch(env, call, ctx)
        else:
            self.plan(env, call, ctx)

    def _replan_move(self, env, call: SkillCall, ctx: SkillContext, preds: dict[str, bool]) -> None:
        hand = self.core.hand
        how, part = ctx.held(call)
        lost = (how == "grasp" and not preds.get("grasping", True)) or (
            how == "touch" and not preds.get("touching", True))
        direction = call.params["direction"]
        if how == "touch" and not (lost and preds.get("at_position", False)):
            direction = push_direction(env.snapshot(), ctx.goal, part, direction, self.core.params)
        turned = (how == "touch" and hand.push_dir is not None
                  and DIRECTIONS[direction] @ hand.push_dir < 0.99)
        if lost and how == "grasp":
            self.grasp.back_off()
            self.grasp.grasp(env, part, attempt=self.grasp.next_rank(part))
        elif lost and preds.get("at_position", False):
            # the object is where it should be, but the touched part is another one now (a
            # spatial part such as "back" moves to another tip as the object turns): touch it
            # again, from above, without pushing any further
            self.touch.back_off()
            self.touch.touch(env, ctx, part, None)
            return
        elif lost or turned:  # (turned: the push goes back onto its line, see push_direction)
            self.touch.back_off()
            self.touch.touch(env, ctx, part, direction)
        self.move.move(env, ctx, direction, how == "touch")

    def _replan_touch(self, env, call: SkillCall, ctx: SkillContext) -> None:
        core, p = self.core, self.core.params
        skill, hand, path = core.skill, core.hand, core.path
        part = call.params["part"]
        if skill.unplanned:
            # the hand rose clear as the last plan found no way (the object still rocked):
            # pressing on from there would never reach the part
            skill.unplanned = False
            self.touch.touch(env, ctx, part, push_after(ctx))
        elif skill.reaim is not None:
            # backed off, the pushed object at rest again: aim the push afresh
            self.touch.touch(env, ctx, part, skill.reaim)  # (kept if it finds no way)
            skill.reaim = None
        elif hand.push_dir is not None and skill.reaims < p.max_reaimed and (
                self._wrong_contact(env) or self._passed_object(env) or self._hand_pushes(env)):
            # the fingers met another part of the object first (a leg beside a frame, a handle
            # beside a flat blade), slid past it, or the hand pushes it: back off, then push
            # again along a lane clear of where they met it, the hand clear of the object
            skill.reaims += 1
            core.counts["reaims"] += 1
            skill.reaim = next(k for k, v in DIRECTIONS.items() if v @ hand.push_dir > 0.99)
            self.touch.back_off()
        elif hand.push_dir is not None:
            self.touch.go(path.pos + hand.push_dir * p.push_nudge, path.mat, 0.0, speed=p.slow_speed)
        elif hand.top_from is not None and np.linalg.norm(
                env.snapshot().object_pos - hand.top_from) > p.touch_moved:
            # the hand brushed the object away on its way down (a display's screen over the
            # base it touches): pressing deeper where it was would never meet it
            self.touch.back_off()
            self.touch.touch(env, ctx, part, None)
        elif env.snapshot().tcp_pos[2] - path.pos[2] > p.touch_blocked:
            # the fingers came down on something above the part (a box's lid over the rim of
            # its body): touch the part from a side instead
            self.touch.back_off()
            self.touch.touch(env, ctx, part, None, from_side=True)
        else:
            self.touch.go(path.pos - [0.0, 0.0, p.top_press_step], path.mat, 0.0, speed=p.slow_speed)

    def _wrong_contact(self, env) -> bool:
        """True if the fingers touch the object (not the part to touch: the caller knows its
        goal is unmet); the contacts are kept, in the object's frame, for the push to avoid."""
        snap = env.snapshot()
        mine = [np.asarray(c.pos) for c in snap.contacts if c.object == snap.asset.name]
        if not mine:
            return False
        pos, rot = base_frame(snap)
        self.core.skill.avoid.append((np.array(mine) - pos) @ rot)
        return True

    def _hand_pushes(self, env) -> bool:
        """True if the object moved along the push with no finger on it: the hand pushes it
        (a kettle's lid under the hand as the fingers reach for its body)."""
        snap, hand = env.snapshot(), self.core.hand
        if any(v > 0 for v in snap.finger_forces().values()) or hand.push_from is None:
            return False
        moved = float((snap.object_pos - hand.push_from) @ hand.push_dir)
        self.core.skill.hand_clear = moved > self.core.params.hand_pushed
        return self.core.skill.hand_clear

    def _passed_object(self, env) -> bool:
        """True once the pushing fingers are beyond the object's far side."""
        snap, d = env.snapshot(), self.core.hand.push_dir
        return float(snap.tcp_pos @ d) > float((snap.object_points() @ d).max())
