"""Grasp: a top-down grasp planned on the part's points, approached from above, fingers closed."""

from __future__ import annotations

import numpy as np

from sims.partmanip.expert.geometry import HOME_CLOSING_AXIS, within_wrist
from sims.partmanip.expert.skills.base import ExpertFailure, SkillPlanner
from sims.partmanip.grasp import plan_topdown_grasp


class GraspPlanner(SkillPlanner):
    def plan(self, env, call, ctx) -> None:
        self.grasp(env, call.params["part"])

    def next_rank(self, part: str) -> int:
        """The rank of the grasp to try on `part` after one slipped: the next-best one each
        time (the same grasp would slip the same way)."""
        return self.hand.grasp_tries.get(part, 1)

    def grasp(self, env, part: str, attempt: int = 0) -> None:
        """Queue the `attempt`-th best grasp on `part` (0: the best)."""
        self.hand.grasp_tries[part] = attempt + 1
        snap = env.snapshot()
        names = list(env.asset.parts)
        clouds = [snap.part_points(n) for n in names]
        points = np.concatenate(clouds)
        normals = np.concatenate([snap.part_normals(n) for n in names])
        is_part = np.concatenate([np.full(len(c), n == part) for n, c in zip(names, clouds, strict=True)])
        parts = env.asset.parts
        body = np.concatenate([np.asarray(parts[n].bodies)[parts[n].body_index()] for n in names])
        # a re-grasp closes as near as it can to the way the hand is turned now (a turn may have
        # left it half a turn from home): turning back first would cost seconds
        _, hand_mat = self.path.end()
        ref = hand_mat[:, 1] if attempt > 0 else HOME_CLOSING_AXIS
        grasp = plan_topdown_grasp(points, normals, is_part, rank=attempt, home_closing_axis=ref,
                                   centre_of_mass=env.backend.object_com(env.asset.name), body=body)
        if grasp is None:
            raise ExpertFailure(f"no feasible grasp on the {part} of {env.asset.name}")
        mat = grasp.mat
        if attempt > 0:
            mat = within_wrist(mat, hand_mat, self.wrist_joint(env), params=self.p)
        self.approach(snap, grasp.pos, mat, 1.0, final_speed=self.p.slow_speed)
        self.go(grasp.pos, mat, 0.0, steps=self.p.close_steps)
