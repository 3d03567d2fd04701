"""Release: open the fingers and rise clear, backing away from a pushed side first."""

from __future__ import annotations

from sims.partmanip.expert.skills.base import SkillPlanner


class ReleasePlanner(SkillPlanner):
    def plan(self, env, call, ctx) -> None:
        back = self.path.pos.copy()
        mat, grip = self.path.mat, self.path.grip
        if self.hand.push_dir is not None:
            # back away from the pushed side before opening: fingers opening against a tall,
            # light object (a bottle) knock it over
            back = back - self.hand.push_dir * self.p.retreat
            self.go(back, mat, grip)
            self.hand.push_dir = None
        self.go(back, mat, 1.0, steps=self.p.close_steps)
        self.go(back + [0, 0, self.p.approach_height], mat, 1.0)
