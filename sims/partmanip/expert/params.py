"""Every tuned value of the scripted expert, in one frozen dataclass (lengths in metres, angles
in radians, speeds in m/s and rad/s, durations in control steps at 20 Hz)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from sims.core.config import ConfigMixin


@dataclass(frozen=True)
class ExpertParams(ConfigMixin):
    """The expert's tunings. The ones a user most likely changes are the speeds at the top."""

    # -- speeds ------------------------------------------------------------------------------
    speed: float = 0.4
    """m/s: the hand travelling free."""
    slow_speed: float = 0.12
    """m/s: the last stretch of a grasp's or touch's approach, a press, a turn's rise."""
    carry_speed: float = 0.15
    """m/s: moving a held object."""
    push_speed: float = 0.06
    """m/s: a push; slow enough that a light object does not slide off ahead of the fingers."""
    rot_speed: float = 2.2
    """rad/s: turning the empty hand (to a touch's pose, often half a turn), near joint 7's
    2.6 rad/s limit, so that a two-phase task's push ends within the horizon."""
    carry_rot_speed: float = 1.5
    """rad/s: turning a held object."""
    push_back_rot_speed: float = 1.5
    """rad/s: the hand turning to a push back's pose, which ends at joint 7's limit: turned
    faster, the IK swings the arm through another configuration and the hand strikes the object."""
    late_push_speed: float = 0.12
    """m/s: the fastest a task's last push goes to end within the horizon."""

    # -- approach and grasp ------------------------------------------------------------------
    approach_height: float = 0.10
    """m: the hand comes straight down onto a grasp or touch from this far above it."""
    approach_clearance: float = 0.06
    """m: the hand travels this far above the object's top on its way to an approach."""
    detour_min: float = 0.02
    """m: an approach this near (horizontally) comes straight down, without rising above the object."""
    slow_last: float = 0.03
    """m: the last stretch of a grasp's or top touch's descent, at `slow_speed`."""
    close_steps: int = 4
    """steps: just long enough for the fingers to settle (~3 steps); holding longer would show
    a learner identical observations followed first by "wait", then by "lift"."""
    lift: float = 0.02
    """m: an object on the table is lifted this far before a horizontal move (no dragging)."""

    # -- touch and push ----------------------------------------------------------------------
    touch_depth: float = 0.004
    """m: a top touch presses this far into the surface so the contact registers."""
    top_normal_z: float = 0.7
    """an upward-facing point of a part for a top touch: its normal's z above this."""
    top_lane_clearance: float = 0.01
    """m: object points this far above a top-touch point block the fingers' lane."""
    top_press_step: float = 0.006
    """m: a top touch that did not register presses this much deeper on its replan."""
    touch_blocked: float = 0.01
    """m: fingers held this far above a top touch's target rest on something else."""
    touch_moved: float = 0.01
    """m: the object moving this far while a top touch comes down is planned afresh."""
    side_touch_order: tuple[str, ...] = ("left", "right", "back", "front")
    """sides tried, in order, to touch a part that has no free top."""
    push_tilt: float = float(np.radians(35.0))
    """rad: fingertips lead a push, the hand trailing above and behind, clear of tall objects."""
    push_tilt_steps: int = 8
    """tilts tried from `push_tilt` down to upright for a push whose wrist would leave reach."""
    push_tip_below: float = 0.005
    """m: a push's fingertips run this far below its contact point."""
    push_press: float = 0.015
    """m: a push's touch aims this far past the contact point: a light object yields."""
    push_nudge: float = 0.015
    """m: a push's touch that did not register presses on this much further."""
    push_overshoot: float = 0.02
    """m: a push goes this far past its target: the object lags behind the fingers."""
    push_stop: float = 0.025
    """m: a push whose goal holds ends once the object is this near its target."""
    push_drift: float = 0.03
    """m off a push's line (across it) before a push back onto the line is planned."""
    retreat: float = 0.06
    """m: fingers back away from a pushed side this far before they open (opening against a
    tall, light object knocks it over)."""
    release_steps: int = 15
    """steps a release after a push takes (back away, open, rise)."""
    back_off_rise: float = 0.06
    """m: backing off, the open hand rises this far."""
    own_slack: float = 0.03
    """m: a pushed part's own points this far before a contact do not block it."""
    avoid_lane: float = 0.02
    """m: a re-aimed push keeps its lane this far from where the fingers met the wrong part
    (they brush parts up to ~1.5 cm beside their lane: eyeglasses' legs beside the frame)."""
    hand_pushed: float = 0.01
    """m the object moves along a push with no finger on it: the hand pushes it."""
    descent_behind: float = 0.06
    """m: a tilted hand's footprint reaches this much further back than an upright one."""
    max_reaimed: int = 2
    """pushes re-aimed per skill (the fingers met the wrong part, or passed the object)."""
    far_push_x: float = 0.62
    """m: a push ending beyond this (base x) with a grasp or touch after it keeps the wrist as
    at home, so that the arm still reaches what follows."""

    # -- wrist and reach ---------------------------------------------------------------------
    wrist_limit: float = 2.75
    """rad: |joint 7| the expert plans within (the Franka's limit is 2.8973)."""
    half_turn_slack: float = 0.3
    """rad: a turn this near a half turn may go either way round."""
    wrist_behind_tcp: float = 0.2
    """m from the TCP back to the wrist."""
    wrist_reach: float = 0.78
    """m: the Panda holds a TCP 3 cm up with its wrist at most about this far out."""

    # -- rotate ------------------------------------------------------------------------------
    yaw_share: float = 0.25
    """a part whose offset from the object's centre is at least this share horizontal is
    yawed to face; one nearer the vertical axis is only tilted."""
    tilt_min: float = 0.25
    """rad: a part this far above/below the horizontal is tilted level as it turns."""
    tilt_spare: float = 0.1
    """rad of elevation left after a tilt (within the facing tolerance)."""
    max_rot_step: float = np.pi / 3
    """rad per waypoint of a turn, so interpolation never takes the short way round."""
    rotate_clearance: float = 0.03
    """m: a turned object's lowest point stays this far above the table."""
    down_margin: float = 0.02
    """m: a turn followed by a move down ends this much higher than that move needs."""

    # -- move --------------------------------------------------------------------------------
    press_down: float = 0.03
    """m: a move down stops with the object's lowest point this far into the table: enough to
    close a stapler that hangs open, not so much that the grasp gives."""
    settle_speed: float = 0.03
    """m/s: a held object moving faster than this is let come to rest before a move or turn."""
    settle_max: int = 20
    """steps: the longest wait for a held object to come to rest."""

    # -- recovery ----------------------------------------------------------------------------
    idle_replan: int = 5
    """steps with nothing queued and the skill's goal unmet before the skill is planned again."""
    max_replans: int = 8
    """replans per skill."""
    lost_steps_grasp: int = 4
    """steps without finger contact on a grasped object before its carry is replanned."""
    lost_steps_touch: int = 10
    """steps without finger contact on a pushed object before its push is replanned (it may
    run a little ahead of the fingers and be caught up)."""

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None) -> ExpertParams:
        """The defaults with `overrides` (field name -> value) applied; an unknown name is an
        error naming it."""
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown expert parameter(s) {unknown} (known: {sorted(known)})")
        return replace(cls(), **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})

    def lost_steps(self, how: str) -> int:
        """Steps without finger contact before a carry held by `how` (grasp/touch) is replanned."""
        return self.lost_steps_grasp if how == "grasp" else self.lost_steps_touch
