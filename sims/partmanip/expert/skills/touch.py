"""Touch: closed fingers brought against a part, from the side opposite the push that follows
(tilted, fingertips leading), else down onto its top, else from a free side."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sims.core.directions import DIRECTIONS
from sims.partmanip.classes import MOVE_DISTANCE
from sims.partmanip.expert.geometry import (
    HOME_CLOSING_AXIS,
    base_frame,
    push_point,
    push_tilt,
    top_touch,
    within_wrist,
)
from sims.partmanip.expert.skills.base import ExpertFailure, SkillPlanner
from sims.partmanip.expert.state import SkillContext
from sims.partmanip.grasp import PAD_BELOW_TCP, topdown_rotation
from sims.partmanip.push import FINGER_HALF, PRE_TOUCH, TOUCH_MIN_Z


def push_after(ctx: SkillContext) -> str | None:
    """The direction the move after a touch pushes in (None: no move follows)."""
    follow = ctx.next_call
    return follow.params["direction"] if follow is not None and follow.skill == "move" else None


class TouchPlanner(SkillPlanner):
    def plan(self, env, call, ctx) -> None:
        self.touch(env, ctx, call.params["part"], push_after(ctx))

    def touch(self, env, ctx: SkillContext, part: str, push: str | None, from_side: bool = False) -> None:
        """Close the fingers, then bring them against the part: from the side opposite `push`
        (at the part's mid height, aimed through the object's centre) when a push follows,
        else down onto an upward-facing surface of the part (see `top_touch`), or from a side
        when there is none (or `from_side`). A push whose side is not free presses on the top
        instead: the move drags the part along under the fingers."""
        p_ = self.p
        snap = env.snapshot()
        end, end_mat = self.path.end()
        q7 = self.wrist_joint(env)
        self.hand.top_from = None
        self.go(end, end_mat, 0.0, steps=p_.close_steps)
        avoid = None
        if self.skill.avoid:
            pos, rot = base_frame(snap)
            avoid = np.concatenate(self.skill.avoid) @ rot.T + pos
        hand_clear = self.skill.hand_clear
        wanted, p = push, None
        if push is not None:
            p = push_point(snap, part, DIRECTIONS[push], avoid, hand_clear, params=p_)
            if p is None and not from_side:
                # no side of the part faces the push free (a scissors' flat blade tips lie
                # below the fingertips' lowest reach, a turned leg's back is the frame): press
                # down on top of it instead, and the move that follows drags it along
                push = None
        if push is None:
            top = None if from_side else top_touch(snap, part, params=p_)
            if top is None and wanted is not None:
                raise ExpertFailure(f"no free side or top of the {part} of {env.asset.name} to push {wanted}")
            if top is None:  # (a bottle's neck, a base under a screen) touch it from a side
                push = next((s for s in p_.side_touch_order
                             if push_point(snap, part, DIRECTIONS[s], params=p_) is not None), None)
                if push is None:
                    raise ExpertFailure(f"no free top or side surface on the {part} of {env.asset.name}")
                p = push_point(snap, part, DIRECTIONS[push], avoid, hand_clear, params=p_)
            else:
                p, closing = top
                tcp = p + [0.0, 0.0, PAD_BELOW_TCP - p_.touch_depth]
                mat = within_wrist(topdown_rotation(closing), end_mat, q7, either_way=True, nearest=True,
                                   params=p_)
                self.approach(snap, tcp, mat, 0.0, final_speed=p_.slow_speed)
                self.hand.push_dir, self.hand.top_from = None, snap.object_pos.copy()
                return
        d = DIRECTIONS[push]
        if p is None:
            raise ExpertFailure(f"no free side of the {part} of {env.asset.name} to push {push} from")
        lateral = np.cross([0.0, 0.0, 1.0], d)
        # Closed fingers push alike either way round. A push back turns the hand half a turn
        # from home, past joint 7's range, and the IK flips the wrist instead; the push works
        # so, but a grasp or a second push after it cannot reach an object pushed far out from
        # that wrist pose. Then (one follows, the object ends far out) the closing axis nearer
        # home's is used; elsewhere that pose makes the push itself fail more often.
        reach_after = any(c.skill in ("grasp", "touch") for c in ctx.after)
        far = float(snap.object_pos[0] + d[0] * MOVE_DISTANCE) > p_.far_push_x
        closing = -lateral if reach_after and far and lateral @ HOME_CLOSING_AXIS < 0 else lateral
        tcp = np.array([p[0], p[1], max(p[2], TOUCH_MIN_Z) + PAD_BELOW_TCP - p_.push_tip_below]) - d * FINGER_HALF
        # fingertips lead, the hand trails above and behind: it stays clear of tall objects
        tilt = push_tilt(tcp, d, params=p_)
        mat = Rotation.from_rotvec(-tilt * lateral).as_matrix() @ topdown_rotation(closing)
        if push != "back":
            # closed fingers push alike either way round: after a turn has wound the wrist up,
            # the way round joint 7 can reach (else the IK swings the arm at the joint's limit).
            # Not for a push back: its hand leans back towards the robot, and there the IK does
            # better at joint 7's limit than the other way round. Not `nearest` as a top touch:
            # that pose pushes worse (class 13 most of all). Not `either_way` either: the hand
            # turns the short way round, so a pose near half a turn away that only the long way
            # reaches (a push right with joint 7 wound up to 2.2 by the turn before) takes it
            # past the limit, and the arm swings out of reach of the object
            mat = within_wrist(mat, end_mat, q7, params=p_)
        self.approach(snap, tcp - d * PRE_TOUCH, mat, 0.0,
                      rot_speed=p_.push_back_rot_speed if push == "back" else None)
        # press on until the contact registers: a light object yields, so aim past the surface
        self.go(tcp + d * p_.push_press, mat, 0.0, speed=p_.slow_speed)
        self.hand.push_dir, self.hand.push_from = d, snap.object_pos.copy()
