"""Move: carry the held object (or push the touched one) to the move's target."""

from __future__ import annotations

from sims.core.control import CONTROL_HZ
from sims.core.directions import DIRECTIONS
from sims.partmanip.expert.skills.base import SkillPlanner
from sims.partmanip.expert.state import SkillContext


class MovePlanner(SkillPlanner):
    def plan(self, env, call, ctx) -> None:
        self.move(env, ctx, call.params["direction"], ctx.held(call)[0] == "touch")

    def move(self, env, ctx: SkillContext, direction: str, pushing: bool = False) -> None:
        """Move the held (or pushed) object to the move's target (`ctx.goal`): the TCP shifts by
        the object's remaining offset, so a lagging object is caught up on a replan."""
        p = self.p
        d = DIRECTIONS[direction]
        snap = env.snapshot()
        target = ctx.goal
        remaining = target - snap.object_pos
        # from where the queued waypoints end (a re-grasp may come first), holding as they do
        start, mat = self.path.end()
        grip = self.path.end_grip()
        if pushing:  # slide along the table, a little further: the object lags the fingers
            along = max(0.0, float(remaining @ d) + p.push_overshoot)
            self.skill.push_target = target
            self.go(start + d * along, mat, grip, speed=self.push_speed(env, ctx, along))
            return
        pos = start.copy()
        low = float(snap.object_points()[:, 2].min()) < p.lift
        if d[2] == 0 and low:  # horizontal, object on the table: lift first, no dragging
            pos = pos + [0.0, 0.0, p.lift]
            self.go(pos, mat, grip)
        step = remaining if d[2] != 0 else remaining * [1.0, 1.0, 0.0]
        if d[2] < 0:  # down: press the object at most `press_down` into the table (its target
            # may lie below it after a re-grasp from the table)
            step[2] = max(step[2], min(0.0, -p.press_down - float(snap.object_points()[:, 2].min())))
        self.go(pos + step, mat, grip, speed=p.carry_speed)

    def push_speed(self, env, ctx: SkillContext, along: float) -> float:
        """The push's speed (m/s) to push `along` metres: `push_speed`, unless this is the
        plan's last move and the push (after any waypoints still queued, and with its release)
        would not end by the deadline; then as fast as that needs, up to `late_push_speed`."""
        p = self.p
        if any(c.skill != "release" for c in ctx.after):
            return p.push_speed
        deadline = env.task.horizon if ctx.deadline is None else ctx.deadline
        queued = self.path.queued_steps()  # (a re-touch may come first)
        after_this = deadline - env.elapsed_steps - 1  # steps after the one planned now
        left = (after_this - queued - p.release_steps) / CONTROL_HZ
        if left <= 0 or along <= p.push_speed * left:
            return p.push_speed
        return min(p.late_push_speed, along / left)
