"""Rotate: turn the held object so a part faces a direction (a yaw, then a tilt if needed)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sims.core.directions import DIRECTIONS
from sims.partmanip.classes import MOVE_DISTANCE
from sims.partmanip.expert.skills.base import SkillPlanner
from sims.partmanip.expert.state import SkillContext
from sims.partmanip.predicates import POSITION_TOL, yaw_to_face


class RotatePlanner(SkillPlanner):
    def plan(self, env, call, ctx) -> None:
        self.rotate(env, ctx, call.params["part"], call.params["direction"])

    def rotate(self, env, ctx: SkillContext, part: str, facing: str) -> None:
        """Turn the held object so the vector from its centre to `part` points `facing`: a yaw
        about the vertical (the way round that keeps the wrist in its range), then, for a part
        well above or below the object's centre, a tilt about the horizontal axis across
        `facing`. The TCP rises if the turned object would come near the table."""
        p = self.p
        snap = env.snapshot()
        obj = snap.object_points()
        v = snap.part_points(part).mean(axis=0) - obj.mean(axis=0)
        f = DIRECTIONS[facing]
        yaw = 0.0
        if np.linalg.norm(v[:2]) > p.yaw_share * np.linalg.norm(v):
            yaw = yaw_to_face(snap, part, facing)
            # turning the hand by +yaw about world z turns joint 7 by about -yaw
            q7 = self.wrist_joint(env)
            options = [y for y in (yaw, yaw - 2 * np.pi, yaw + 2 * np.pi) if abs(q7 - y) <= p.wrist_limit]
            yaw = min(options or [yaw], key=abs)
        v_turned = Rotation.from_rotvec([0.0, 0.0, yaw]).apply(v)
        elevation = float(np.arctan2(v_turned[2], np.linalg.norm(v_turned[:2])))
        tilt = elevation - np.sign(elevation) * p.tilt_spare if abs(elevation) > p.tilt_min else 0.0
        axis = np.cross([0.0, 0.0, 1.0], f)

        def turn(frac: float) -> Rotation:
            return Rotation.from_rotvec(axis * tilt * frac) * Rotation.from_rotvec([0, 0, yaw * frac])

        start, start_mat = self.path.end()
        grip = self.path.end_grip()
        turned = start + turn(1.0).apply(obj - start)
        clearance = p.rotate_clearance
        follow = ctx.next_call
        if follow is not None and follow.skill == "move" and follow.params["direction"] == "bottom":
            # the move down that follows starts where the turn ends: high enough that its
            # target lies within reach of the table, not under it
            dist = follow.params.get("distance", MOVE_DISTANCE)
            clearance = max(clearance, dist - POSITION_TOL + p.down_margin)
        rise = max(0.0, clearance - float(turned[:, 2].min()), clearance - float(obj[:, 2].min()))
        n = max(1, int(np.ceil(max(abs(yaw), abs(tilt)) / p.max_rot_step)))
        for k in range(1, n + 1):
            mat = turn(k / n).as_matrix() @ start_mat
            self.go(start + [0.0, 0.0, rise * k / n], mat, grip, speed=p.slow_speed,
                    rot_speed=p.carry_rot_speed)
