"""The scripted expert: plans each skill of the task chain from ground truth and follows TCP
waypoints with the env's own action interface (absolute TCP targets at 20 Hz).

It may read privileged state (part point clouds, object pose), so it is the suite's oracle:
demonstrations come from it, and its success rate is the ceiling a policy can reach.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from sims.core.directions import DIRECTIONS
from sims.core.rotations import mat_to_rot6d, quat_to_mat, rot6d_to_mat
from sims.objects.spatial import spatial_part_masks
from sims.partmanip.chain import held_part
from sims.partmanip.classes import HORIZONTAL, MOVE_DISTANCE
from sims.partmanip.grasp import HAND_HALF, PAD_BELOW_TCP, plan_topdown_grasp, topdown_rotation
from sims.partmanip.predicates import POSITION_TOL, yaw_to_face
from sims.partmanip.push import (
    BLOCK_SLACK,
    FINGER_HALF,
    FINGER_LANE,
    FINGER_LENGTH,
    PRE_TOUCH,
    TOUCH_MIN_Z,
    push_contact,
)

CONTROL_HZ = 20.0
TOUCH_DEPTH = 0.004  # press this far into the surface so the contact registers
PUSH_OVERSHOOT = 0.02
PUSH_STOP = 0.025  # m: a push whose goal holds ends once the object is this near its target
PUSH_PRESS = 0.015  # a push's touch aims this far past the contact point
RETREAT = 0.06
PUSH_TILT = np.radians(35.0)  # fingertips lead a push: the hand trails, clear of tall objects
IDLE_REPLAN = 5  # steps with nothing queued and the skill's goal unmet before replanning
MAX_REPLANS = 8  # per skill
TILT_MIN = 0.25  # rad: a part this far above/below the horizontal is tilted level as it turns
TILT_SPARE = 0.1  # rad of elevation left after a tilt (within the facing tolerance)
ROTATE_CLEARANCE = 0.03  # m: a turned object's lowest point stays this far above the table
WRIST_LIMIT = 2.75  # rad: |joint 7| the expert plans within (Franka: 2.8973)
SLOW_LAST = 0.03  # m: the last stretch of a grasp's or top touch's descent, at slow speed
APPROACH_CLEARANCE = 0.06  # m: hand travels this far above the object's top to an approach
SIDE_TOUCH_ORDER = ("left", "right", "back", "front")  # sides tried to touch a part with no top
WRIST_BEHIND_TCP = 0.2  # m from the TCP back to the wrist
WRIST_REACH = 0.78  # m: measured, the Panda holds a TCP 3 cm up with its wrist <= ~0.8 m out
FAR_PUSH_X = 0.62  # m: a push back ending beyond this keeps the wrist in range (see _plan_touch)
HOME_CLOSING_AXIS = np.array([0.0, -1.0, 0.0])  # the fingers' closing axis at the home pose
OWN_SLACK = 0.03  # m: a pushed part's own points this far before a contact do not block it
# m: a re-aimed push keeps its lane this far from where the fingers met the wrong part (they
# brush parts up to ~1.5 cm beside their lane: eyeglasses' legs beside the frame)
AVOID_LANE = 0.02
HAND_PUSHED = 0.01  # m the object moves along a push with no finger on it: the hand pushes it
DESCENT_BEHIND = 0.06  # m: a tilted hand's footprint reaches this much further back than upright
MAX_REAIMED = 2  # pushes re-aimed per skill (the fingers met the wrong part, or passed the object)
PUSH_BACK_ROT_SPEED = 1.5  # rad/s: the hand turning to a push back's pose (see _plan_touch)
PUSH_DRIFT = 0.03  # m off a push's line (across it) before a push back onto the line is planned
LATE_PUSH_SPEED = 0.12  # m/s: the fastest a last push goes to finish within the horizon
RELEASE_STEPS = 15  # steps a release after a push takes (back away, open, rise)
HALF_TURN_SLACK = 0.3  # rad: a turn this near a half turn may go either way round (_within_wrist)
MAX_ROT_STEP = np.pi / 3  # rad per waypoint, so interpolation never takes the short way round
# steps without any finger contact on the held (grasped / pushed) object before a carry is
# replanned; a pushed object may run a little ahead of the fingers and be caught up
LOST_STEPS = {"grasp": 4, "touch": 10}
DOWN_MARGIN = 0.02  # m: a turn followed by a move down ends this much higher than that needs
SETTLE_SPEED = 0.03  # m/s: a held object moving faster than this is let come to rest ...
SETTLE_MAX = 20  # ... for at most this many steps before the next move or turn is planned
PRESS_DOWN = 0.03  # m: a move down stops with the object's lowest point this far into the table
TOUCH_BLOCKED = 0.01  # m: fingers held this far above a top touch's target rest on something else
TOUCH_MOVED = 0.01  # m the object moves while a top touch comes down before it is planned afresh


@dataclass
class Segment:
    """Go from (start_pos, start_mat) to (pos, mat, gripper) in `steps` control steps."""

    start_pos: np.ndarray
    start_mat: np.ndarray
    pos: np.ndarray
    mat: np.ndarray
    gripper: float
    steps: int


class ExpertFailure(RuntimeError):
    """The expert found no way to do the current skill (e.g. no feasible grasp)."""


class ScriptedExpert:
    """Grasp / move / release by waypoints. Call `reset(env)` after `env.reset`, then `act(env)`.

    Speeds are in m/s and rad/s (`carry_*`: moving a held object); `approach_height` is
    the pre-grasp height above the grasp. When a skill's waypoints end without its goal (a
    slipped grasp, a short push), the skill is planned again from the current state.
    `close_steps` is just long enough for the fingers to settle (~3 steps): holding longer
    would show a learner identical observations followed first by "wait", then by "lift".
    """

    def __init__(self, speed: float = 0.4, slow_speed: float = 0.12, carry_speed: float = 0.15,
                 push_speed: float = 0.06,
                 rot_speed: float = 2.2, carry_rot_speed: float = 1.5, approach_height: float = 0.10,
                 lift: float = 0.02, close_steps: int = 4):
        # rot_speed turns the empty hand (to a touch's pose, often half a turn) near joint 7's
        # 2.6 rad/s limit: at 1.5 a two-phase task's push ran out of the horizon more often
        self.speed, self.slow_speed, self.rot_speed = speed, slow_speed, rot_speed
        self.carry_speed, self.carry_rot_speed = carry_speed, carry_rot_speed
        self.push_speed = push_speed  # slow enough that a light object does not slide off ahead
        self.approach_height, self.lift = approach_height, lift
        self.close_steps = close_steps

    # -- public ---------------------------------------------------------------------------
    def reset(self, env) -> None:
        t = env.commanded_target
        self._pos, self._mat, self._grip = t[:3].copy(), rot6d_to_mat(t[3:9]), float(t[9])
        self._queue: deque[tuple[Segment, np.ndarray]] = deque()
        self._skill = -1  # the chain index planned last
        self._push_dir: np.ndarray | None = None  # set while the fingers push the object
        self._idle = 0  # steps waited with an empty queue on the current skill
        self._replans = 0
        self._lost = 0  # consecutive steps the held object has been out of the fingers
        self._recovering = False  # a dropped object is being taken again: no drop checks
        self._last_obj: np.ndarray | None = None  # the object's position one step ago
        self._settle = 0  # steps waited for a held object to stop swinging before a skill
        self._grasp_tries: dict[str, int] = {}  # part -> grasps planned on it (next rank)
        self._push_target: np.ndarray | None = None  # where the current push brings the object
        self._avoid: list[np.ndarray] = []  # object-frame points a re-aimed push keeps clear of
        self._reaims = 0  # pushes re-aimed on the current skill
        self._reaim: str | None = None  # push direction to re-aim once the hand has backed off
        self._hand_clear = False  # the hand pushed the object: a re-aimed push keeps it clear
        self._push_from: np.ndarray | None = None  # the object's position as the push began
        self._top_from: np.ndarray | None = None  # the object's position as a top touch was planned
        self._unplanned = False  # the last plan found no way: the hand backed off, nothing to mend

    def act(self, env) -> np.ndarray:
        """The next action (10,) for `env` in its current state."""
        idx = env.tracker.index
        obj = env.snapshot().object_pos
        moving = self._last_obj is not None and np.linalg.norm(obj - self._last_obj) > SETTLE_SPEED / CONTROL_HZ
        self._last_obj = obj.copy()
        if (idx != self._skill and self._push_target is not None and self._queue
                and np.linalg.norm(obj - self._push_target) < PUSH_STOP):
            # the push's goal holds and the object is nearly at its target: stop pushing (the
            # overshoot only makes up for an object lagging behind the fingers)
            self._queue.clear()
        if (idx != self._skill and idx < len(env.task.chain) and not self._queue and moving
                and self._settle < SETTLE_MAX and held_part(env.task.chain, idx)[0] == "grasp"
                and env.task.chain[idx].skill in ("move", "rotate")):
            # a held object still swings from the last skill (an object hanging from its frame
            # after a turn): wait for it to come to rest, else the next move carries the swing
            self._settle += 1
        elif idx != self._skill and idx < len(env.task.chain) and not self._queue:
            # A skill's goal can hold before its waypoints end (the grasp holds while the
            # fingers still close); finishing them first keeps every transition visible in the
            # observations (fingers settled, then lift), which a learned policy needs.
            self._skill, self._idle, self._replans, self._lost = idx, 0, 0, 0
            self._recovering, self._settle, self._push_target = False, 0, None
            self._avoid, self._reaims, self._reaim, self._hand_clear = [], 0, None, False
            self._unplanned = False
            self._plan_or_wait(self._plan, env, env.task.chain[idx])
        elif self._queue and idx < len(env.task.chain) and self._dropped(env):
            # The held object fell out of the fingers (or the pushing fingers slid off) in the
            # middle of a carry: finishing the waypoints would move an empty hand, so take it
            # again from where it lies now.
            if self._replans < MAX_REPLANS:
                self._queue.clear()
                self._lost, self._idle, self._replans = 0, 0, self._replans + 1
                self._recovering = True
                self._plan_or_wait(self._replan, env, env.task.chain[idx])
        elif not self._queue and idx < len(env.task.chain):
            # The goal is still unmet with every waypoint done (a grasp slipped, a push fell
            # short, the object lagged): plan the skill again from the state it is in now.
            self._idle += 1
            if self._idle >= IDLE_REPLAN and self._replans < MAX_REPLANS:
                self._idle, self._replans = 0, self._replans + 1
                self._plan_or_wait(self._replan, env, env.task.chain[idx])
        if self._queue:
            seg, frac = self._queue[0]
            self._queue[0] = (seg, frac[1:])
            if len(frac) == 1:
                self._queue.popleft()
            self._pos, self._mat, self._grip = self._interp(seg, frac[0])
        # With no waypoints left, hold the last target until the skill's goal is met.
        return self._action(self._pos, self._mat, self._grip)

    # -- planning -------------------------------------------------------------------------
    def _plan(self, env, call) -> None:
        chain, idx = env.task.chain, env.tracker.index
        if call.skill == "grasp":
            self._plan_grasp(env, call.params["part"])
        elif call.skill == "touch":
            self._plan_touch(env, call.params["part"], self._touch_push(env))
        elif call.skill == "move":
            self._plan_move(env, call.params["direction"], held_part(chain, idx)[0] == "touch")
        elif call.skill == "rotate":
            self._plan_rotate(env, call.params["part"], call.params["direction"])
        elif call.skill == "release":
            back = self._pos.copy()
            if self._push_dir is not None:
                # back away from the pushed side before opening: fingers opening against a
                # tall, light object (a bottle) knock it over
                back = back - self._push_dir * RETREAT
                self._go(back, self._mat, self._grip)
                self._push_dir = None
            self._go(back, self._mat, 1.0, steps=self.close_steps)
            self._go(back + [0, 0, self.approach_height], self._mat, 1.0)
        else:
            raise ExpertFailure(f"the expert cannot do skill {call.skill!r} yet")

    @staticmethod
    def _touch_push(env) -> str | None:
        """The direction the move after the current touch pushes in (None: no move follows)."""
        chain, idx = env.task.chain, env.tracker.index
        follow = chain[idx + 1] if idx + 1 < len(chain) else None
        return follow.params["direction"] if follow is not None and follow.skill == "move" else None

    def _plan_or_wait(self, plan, env, call) -> None:
        """`plan(env, call)`; if it finds no way (no grasp, no free side: the object still
        rocks or lies oddly after a push or a drop), rise clear instead and plan again once
        IDLE_REPLAN steps have passed, at most MAX_REPLANS times per skill."""
        try:
            plan(env, call)
        except ExpertFailure:
            if self._replans >= MAX_REPLANS:
                raise
            self._replans += 1
            self._back_off()
            self._recovering = True  # no drop checks until the fingers are on the object again
            self._unplanned = True  # the next replan plans the skill afresh

    def _replan(self, env, call) -> None:
        """Plan `call` again after its waypoints ended without its goal: re-grasp or re-touch
        what a move lost, then move on to the target; otherwise retry the skill itself."""
        chain, idx = env.task.chain, env.tracker.index
        preds = env.tracker.predicates
        if call.skill == "move":
            how, part = held_part(chain, idx)
            lost = (how == "grasp" and not preds.get("grasping", True)) or (
                how == "touch" and not preds.get("touching", True))
            direction = call.params["direction"]
            if how == "touch" and not (lost and preds.get("at_position", False)):
                direction = self._push_direction(env, part, direction)
            turned = (how == "touch" and self._push_dir is not None
                      and DIRECTIONS[direction] @ self._push_dir < 0.99)
            if lost and how == "grasp":
                self._back_off()
                self._plan_grasp(env, part, attempt=self._next_grasp(part))
            elif lost and preds.get("at_position", False):
                # the object is where it should be, but the touched part is another one now
                # (a spatial part such as "back" moves to another tip as the object turns):
                # touch it again, from above, without pushing any further
                self._back_off()
                self._plan_touch(env, part, None)
                return
            elif lost or turned:  # (turned: the push goes back onto its line, see _push_direction)
                self._back_off()
                self._plan_touch(env, part, direction)
            self._plan_move(env, direction, how == "touch")
        elif call.skill == "grasp":
            self._back_off()
            self._plan_grasp(env, call.params["part"], attempt=self._next_grasp(call.params["part"]))
        elif call.skill == "rotate" and not preds.get("grasping", True) and not any(
                v > 0 for v in env.snapshot().finger_forces().values()):
            # the object fell while turning: pick it up again (the next-best grasp), then turn
            part = held_part(chain, idx)[1]
            self._back_off()
            self._plan_grasp(env, part, attempt=self._next_grasp(part))
            # back up to where the turn began: a move down may follow
            rise = float(env.tracker.skill_goal()[2] - env.snapshot().object_pos[2])
            end, mat = self._planned_end()
            if rise > 0.0:
                self._go(end + [0.0, 0.0, rise], mat, 0.0, speed=self.carry_speed)
            self._plan_rotate(env, call.params["part"], call.params["direction"])
        elif call.skill == "touch" and self._unplanned:
            # the hand rose clear as the last plan found no way (the object still rocked):
            # pressing on from there would never reach the part
            self._unplanned = False
            self._plan_touch(env, call.params["part"], self._touch_push(env))
        elif call.skill == "touch" and self._reaim is not None:
            # backed off, the pushed object at rest again: aim the push afresh
            self._plan_touch(env, call.params["part"], self._reaim)  # (kept if it finds no way)
            self._reaim = None
        elif call.skill == "touch" and self._push_dir is not None and self._reaims < MAX_REAIMED and (
                self._wrong_contact(env) or self._passed_object(env) or self._hand_pushes(env)):
            # the fingers met another part of the object first (a leg beside a frame, a handle
            # beside a flat blade), slid past it, or the hand pushes it: back off, then push
            # again along a lane clear of where they met it, the hand clear of the object
            self._reaims += 1
            self._reaim = next(k for k, v in DIRECTIONS.items() if v @ self._push_dir > 0.99)
            self._back_off()
        elif call.skill == "touch" and self._push_dir is not None:
            self._go(self._pos + self._push_dir * 0.015, self._mat, 0.0, speed=self.slow_speed)
        elif call.skill == "touch" and self._top_from is not None and np.linalg.norm(
                env.snapshot().object_pos - self._top_from) > TOUCH_MOVED:
            # the hand brushed the object away on its way down (a display's screen over the
            # base it touches): pressing deeper where it was would never meet it
            self._back_off()
            self._plan_touch(env, call.params["part"], None)
        elif call.skill == "touch" and env.snapshot().tcp_pos[2] - self._pos[2] > TOUCH_BLOCKED:
            # the fingers came down on something above the part (a box's lid over the rim of
            # its body): touch the part from a side instead
            self._back_off()
            self._plan_touch(env, call.params["part"], None, from_side=True)
        elif call.skill == "touch":
            self._go(self._pos - [0.0, 0.0, 0.006], self._mat, 0.0, speed=self.slow_speed)
        else:
            self._plan(env, call)

    def _push_direction(self, env, part: str, direction: str) -> str:
        """The direction to push on in: the move's own, unless the pushed object has drifted
        off its line (an off-centre contact turns it as it slides) more than PUSH_DRIFT and
        further than it is from the target along the line; then the horizontal direction that
        brings it back, if the part can be pushed that way."""
        d = DIRECTIONS[direction]
        snap = env.snapshot()
        remaining = (env.tracker.move_target() - snap.object_pos) * [1.0, 1.0, 0.0]
        across = remaining - (remaining @ d) * d
        if np.linalg.norm(across) <= max(PUSH_DRIFT, abs(float(remaining @ d))):
            return direction
        onto = max(HORIZONTAL, key=lambda k: float(DIRECTIONS[k] @ across))
        return onto if _push_point(snap, part, DIRECTIONS[onto]) is not None else direction

    def _wrong_contact(self, env) -> bool:
        """True if the fingers touch the object (not the part to touch: the caller knows its
        goal is unmet); the contacts are kept, in the object's frame, for the push to avoid."""
        snap = env.snapshot()
        mine = [np.asarray(c.pos) for c in snap.contacts if c.object == snap.asset.name]
        if not mine:
            return False
        pos, rot = _base_frame(snap)
        self._avoid.append((np.array(mine) - pos) @ rot)
        return True

    def _hand_pushes(self, env) -> bool:
        """True if the object moved along the push with no finger on it: the hand pushes it
        (a kettle's lid under the hand as the fingers reach for its body)."""
        snap = env.snapshot()
        if any(v > 0 for v in snap.finger_forces().values()) or self._push_from is None:
            return False
        self._hand_clear = float((snap.object_pos - self._push_from) @ self._push_dir) > HAND_PUSHED
        return self._hand_clear

    def _passed_object(self, env) -> bool:
        """True once the pushing fingers are beyond the object's far side."""
        snap = env.snapshot()
        return float(snap.tcp_pos @ self._push_dir) > float((snap.object_points() @ self._push_dir).max())

    def _dropped(self, env) -> bool:
        """True once a move or rotate has had no finger contact with the object it holds (or
        pushes) for LOST_STEPS steps in a row."""
        chain, idx = env.task.chain, env.tracker.index
        how = held_part(chain, idx)[0]
        if chain[idx].skill not in ("move", "rotate") or how is None:
            self._lost = 0
            return False
        f = env.snapshot().finger_forces()
        if self._recovering:  # until the fingers hold (or press on) the object again
            self._recovering = min(f.values()) <= 0.0 if how == "grasp" else max(f.values()) <= 0.0
            return False
        self._lost = self._lost + 1 if max(f.values()) <= 0.0 else 0
        return self._lost >= LOST_STEPS[how]

    def _back_off(self) -> None:
        """Open the fingers and rise clear (backing away from a pushed side first)."""
        pos = self._pos.copy()
        self._go(pos, self._mat, 1.0, steps=self.close_steps)
        if self._push_dir is not None:
            pos = pos - self._push_dir * RETREAT
            self._go(pos, self._mat, 1.0)
            self._push_dir = None
        self._go(pos + [0.0, 0.0, 0.06], self._mat, 1.0)

    def _plan_touch(self, env, part: str, push: str | None, from_side: bool = False) -> None:
        """Close the fingers, then bring them against the part: from the side opposite `push`
        (at the part's mid height, aimed through the object's centre) when a push follows,
        else down onto an upward-facing surface of the part (see `_top_touch`), or from a side
        when there is none (or `from_side`). A push whose side is not free presses on the top
        instead: the move drags the part along under the fingers."""
        snap = env.snapshot()
        end, end_mat = self._planned_end()
        q7 = float(env.backend.arm_joint_positions()[6])
        self._top_from = None
        self._go(end, end_mat, 0.0, steps=self.close_steps)
        avoid = None
        if self._avoid:
            pos, rot = _base_frame(snap)
            avoid = np.concatenate(self._avoid) @ rot.T + pos
        wanted, p = push, None
        if push is not None:
            p = _push_point(snap, part, DIRECTIONS[push], avoid, self._hand_clear)
            if p is None and not from_side:
                # no side of the part faces the push free (a scissors' flat blade tips lie
                # below the fingertips' lowest reach, a turned leg's back is the frame): press
                # down on top of it instead, and the move that follows drags it along
                push = None
        if push is None:
            top = None if from_side else _top_touch(snap, part)
            if top is None and wanted is not None:
                raise ExpertFailure(f"no free side or top of the {part} of {env.asset.name} to push {wanted}")
            if top is None:  # (a bottle's neck, a base under a screen) touch it from a side
                push = next((s for s in SIDE_TOUCH_ORDER if _push_point(snap, part, DIRECTIONS[s]) is not None),
                            None)
                if push is None:
                    raise ExpertFailure(f"no free top or side surface on the {part} of {env.asset.name}")
                p = _push_point(snap, part, DIRECTIONS[push], avoid, self._hand_clear)
            else:
                p, closing = top
                tcp = p + [0.0, 0.0, PAD_BELOW_TCP - TOUCH_DEPTH]
                mat = _within_wrist(topdown_rotation(closing), end_mat, q7, either_way=True, nearest=True)
                self._approach(snap, tcp, mat, 0.0, final_speed=self.slow_speed)
                self._push_dir, self._top_from = None, snap.object_pos.copy()
                return
        d = DIRECTIONS[push]
        if p is None:
            raise ExpertFailure(f"no free side of the {part} of {env.asset.name} to push {push} from")
        lateral = np.cross([0.0, 0.0, 1.0], d)
        # Closed fingers push alike either way round. A push back turns the hand half a turn
        # from home, past joint 7's range, and the IK flips the wrist instead; the push works
        # so, but a grasp or a second push after it cannot reach an object pushed far out from
        # that wrist pose. Then (one follows, the object ends far out) the closing axis nearer
        # home's is used; measured: elsewhere, that pose makes the push itself fail more often
        # (on the test splits, 17 pushes failed and 8 were mended with it used for every push).
        chain, idx = env.task.chain, env.tracker.index
        reach_after = any(c.skill in ("grasp", "touch") for c in chain[idx + 1:])
        far = float(snap.object_pos[0] + d[0] * MOVE_DISTANCE) > FAR_PUSH_X
        closing = -lateral if reach_after and far and lateral @ HOME_CLOSING_AXIS < 0 else lateral
        tcp = np.array([p[0], p[1], max(p[2], TOUCH_MIN_Z) + PAD_BELOW_TCP - 0.005]) - d * FINGER_HALF
        # fingertips lead, the hand trails above and behind: it stays clear of tall objects
        tilt = _push_tilt(tcp, d)
        mat = Rotation.from_rotvec(-tilt * lateral).as_matrix() @ topdown_rotation(closing)
        if push != "back":
            # closed fingers push alike either way round: after a turn has wound the wrist up,
            # the way round joint 7 can reach (else the IK swings the arm at the joint's limit).
            # Not for a push back: its hand leans back towards the robot, and there the IK does
            # better at joint 7's limit than the other way round (measured). Not `nearest` as a
            # top touch: that pose pushed worse (7 of the first 400 train episodes lost, 5 of
            # them class 13). Not `either_way` either: the hand turns the short way round, so
            # a pose near half a turn away that only the long way reaches (a push right with
            # joint 7 wound up to 2.2 by the turn before) took it past the limit, and the arm
            # swung out of reach of the object
            mat = _within_wrist(mat, end_mat, q7)
        # a push back's hand ends at joint 7's limit: turned there as fast as elsewhere, the IK
        # swings the arm through another configuration and the hand strikes the object
        # (measured: 3 class-13 test episodes knocked over at 2.2 rad/s, none at 1.5)
        self._approach(snap, tcp - d * PRE_TOUCH, mat, 0.0,
                       rot_speed=PUSH_BACK_ROT_SPEED if push == "back" else None)
        # press on until the contact registers: a light object yields, so aim past the surface
        self._go(tcp + d * PUSH_PRESS, mat, 0.0, speed=self.slow_speed)
        self._push_dir, self._push_from = d, snap.object_pos.copy()

    def _approach(self, snap, pos, mat, gripper: float, final_speed: float | None = None,
                  rot_speed: float | None = None) -> None:
        """Come down onto `pos` from `approach_height` above it, travelling there above the
        object: a straight line from where the hand is could sweep through a tall object.
        `rot_speed`: how fast the hand turns on the way (default `self.rot_speed`)."""
        start, start_mat = self._planned_end()
        above = np.asarray(pos, float) + [0.0, 0.0, self.approach_height]
        clear = float(snap.object_points()[:, 2].max()) + APPROACH_CLEARANCE
        if min(start[2], above[2]) < clear and np.linalg.norm((above - start)[:2]) > 0.02:
            high = max(clear, above[2])
            if start[2] < high:
                self._go([start[0], start[1], high], start_mat, gripper)
            self._go([above[0], above[1], high], mat, gripper, rot_speed=rot_speed)
        self._go(above, mat, gripper, rot_speed=rot_speed)
        if final_speed is not None:  # fast down to just above, slow for the last bit
            self._go(np.asarray(pos, float) + [0.0, 0.0, SLOW_LAST], mat, gripper)
        self._go(pos, mat, gripper, speed=final_speed)

    def _next_grasp(self, part: str) -> int:
        """The rank of the grasp to try on `part` after one slipped: the next-best one each
        time (the same grasp would slip the same way)."""
        return self._grasp_tries.get(part, 1)

    def _plan_grasp(self, env, part: str, attempt: int = 0) -> None:
        self._grasp_tries[part] = attempt + 1
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
        _, hand_mat = self._planned_end()
        ref = hand_mat[:, 1] if attempt > 0 else HOME_CLOSING_AXIS
        grasp = plan_topdown_grasp(points, normals, is_part, rank=attempt, home_closing_axis=ref,
                                   centre_of_mass=env.backend.object_com(env.asset.name), body=body)
        if grasp is None:
            raise ExpertFailure(f"no feasible grasp on the {part} of {env.asset.name}")
        mat = grasp.mat
        if attempt > 0:
            mat = _within_wrist(mat, hand_mat, float(env.backend.arm_joint_positions()[6]))
        self._approach(snap, grasp.pos, mat, 1.0, final_speed=self.slow_speed)
        self._go(grasp.pos, mat, 0.0, steps=self.close_steps)

    def _plan_move(self, env, direction: str, pushing: bool = False) -> None:
        """Move the held (or pushed) object to the move's target: the TCP shifts by the
        object's remaining offset, so a lagging object is caught up on a replan."""
        d = DIRECTIONS[direction]
        snap = env.snapshot()
        target = env.tracker.move_target()
        remaining = target - snap.object_pos if target is not None else d * 0.12
        # from where the queued waypoints end (a re-grasp may come first), holding as they do
        start, mat = self._planned_end()
        grip = self._planned_grip()
        if pushing:  # slide along the table, a little further: the object lags the fingers
            along = max(0.0, float(remaining @ d) + PUSH_OVERSHOOT)
            self._push_target = target
            self._go(start + d * along, mat, grip, speed=self._push_speed(env, along))
            return
        pos = start.copy()
        low = float(snap.object_points()[:, 2].min()) < self.lift
        if d[2] == 0 and low:  # horizontal, object on the table: lift first, no dragging
            pos = pos + [0.0, 0.0, self.lift]
            self._go(pos, mat, grip)
        step = remaining if d[2] != 0 else remaining * [1.0, 1.0, 0.0]
        if d[2] < 0:  # down: press the object at most PRESS_DOWN into the table (its target
            # may lie below it after a re-grasp from the table): enough to close a stapler that
            # hangs open, not so much that the grasp gives
            step[2] = max(step[2], min(0.0, -PRESS_DOWN - float(snap.object_points()[:, 2].min())))
        self._go(pos + step, mat, grip, speed=self.carry_speed)

    def _push_speed(self, env, along: float) -> float:
        """The push's speed: `push_speed`, unless this is the task's last move and the push
        (after any waypoints still queued, and with its release) would not end within the
        horizon; then as fast as that needs, up to LATE_PUSH_SPEED."""
        chain, idx = env.task.chain, env.tracker.index
        if any(c.skill != "release" for c in chain[idx + 1:]):
            return self.push_speed
        queued = sum(len(frac) for _, frac in self._queue)  # (a re-touch may come first)
        after_this = env.task.horizon - env.elapsed_steps - 1  # steps after the one planned now
        left = (after_this - queued - RELEASE_STEPS) / CONTROL_HZ
        if left <= 0 or along <= self.push_speed * left:
            return self.push_speed
        return min(LATE_PUSH_SPEED, along / left)

    def _plan_rotate(self, env, part: str, facing: str) -> None:
        """Turn the held object so the vector from its centre to `part` points `facing`: a yaw
        about the vertical (the way round that keeps the wrist in its range), then, for a part
        well above or below the object's centre, a tilt about the horizontal axis across
        `facing`. The TCP rises if the turned object would come near the table."""
        snap = env.snapshot()
        obj = snap.object_points()
        v = snap.part_points(part).mean(axis=0) - obj.mean(axis=0)
        f = DIRECTIONS[facing]
        yaw = 0.0
        if np.linalg.norm(v[:2]) > 0.25 * np.linalg.norm(v):
            yaw = yaw_to_face(snap, part, facing)
            # turning the hand by +yaw about world z turns joint 7 by about -yaw
            q7 = float(env.backend.arm_joint_positions()[6])
            options = [y for y in (yaw, yaw - 2 * np.pi, yaw + 2 * np.pi) if abs(q7 - y) <= WRIST_LIMIT]
            yaw = min(options or [yaw], key=abs)
        v_turned = Rotation.from_rotvec([0.0, 0.0, yaw]).apply(v)
        elevation = float(np.arctan2(v_turned[2], np.linalg.norm(v_turned[:2])))
        tilt = elevation - np.sign(elevation) * TILT_SPARE if abs(elevation) > TILT_MIN else 0.0
        axis = np.cross([0.0, 0.0, 1.0], f)

        def turn(frac: float) -> Rotation:
            return Rotation.from_rotvec(axis * tilt * frac) * Rotation.from_rotvec([0, 0, yaw * frac])

        start, start_mat = self._planned_end()
        grip = self._planned_grip()
        turned = start + turn(1.0).apply(obj - start)
        chain, idx = env.task.chain, env.tracker.index
        clearance = ROTATE_CLEARANCE
        if idx + 1 < len(chain) and chain[idx + 1].skill == "move" and chain[idx + 1].params["direction"] == "bottom":
            # the move down that follows starts where the turn ends: high enough that its
            # target (12 cm down) lies within reach of the table, not under it
            dist = chain[idx + 1].params.get("distance", 0.12)
            clearance = max(clearance, dist - POSITION_TOL + DOWN_MARGIN)
        rise = max(0.0, clearance - float(turned[:, 2].min()), clearance - float(obj[:, 2].min()))
        n = max(1, int(np.ceil(max(abs(yaw), abs(tilt)) / MAX_ROT_STEP)))
        for k in range(1, n + 1):
            mat = turn(k / n).as_matrix() @ start_mat
            self._go(start + [0.0, 0.0, rise * k / n], mat, grip, speed=self.slow_speed,
                     rot_speed=self.carry_rot_speed)

    def _planned_end(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the queued waypoints end (TCP position, rotation); the current target if none."""
        if self._queue:
            return self._queue[-1][0].pos, self._queue[-1][0].mat
        return self._pos, self._mat

    def _planned_grip(self) -> float:
        """The gripper command the queued waypoints end with; the current one if none."""
        return float(self._queue[-1][0].gripper) if self._queue else self._grip

    def _go(self, pos, mat, gripper: float, speed: float | None = None, steps: int | None = None,
            rot_speed: float | None = None):
        start_pos, start_mat = self._planned_end()
        if steps is None:
            dist = np.linalg.norm(np.asarray(pos) - start_pos)
            angle = Rotation.from_matrix(start_mat.T @ mat).magnitude()
            steps = int(np.ceil(max(dist / (speed or self.speed), angle / (rot_speed or self.rot_speed)) * CONTROL_HZ))
        steps = max(1, steps)
        seg = Segment(start_pos.copy(), start_mat.copy(), np.asarray(pos, float),
                      np.asarray(mat, float), gripper, steps)
        self._queue.append((seg, np.arange(1, steps + 1) / steps))

    def _interp(self, seg: Segment, frac: float):
        pos = seg.start_pos + (seg.pos - seg.start_pos) * frac
        rots = Rotation.from_matrix(np.stack([seg.start_mat, seg.mat]))
        mat = Slerp([0.0, 1.0], rots)(frac).as_matrix()
        return pos, mat, float(seg.gripper)

    @staticmethod
    def _action(pos, mat, grip) -> np.ndarray:
        return np.concatenate([pos, mat_to_rot6d(mat), [grip]]).astype(np.float32)


def _base_frame(snap) -> tuple[np.ndarray, np.ndarray]:
    """The object's base body pose in the world: position and rotation matrix."""
    pos, quat = snap.body_poses["base"]
    return pos, quat_to_mat(quat)


def _within_wrist(mat: np.ndarray, hand_mat: np.ndarray, q7: float, either_way: bool = False,
                  nearest: bool = False) -> np.ndarray:
    """A hand rotation `mat` (top-down, or a push's tilted one), unless turning there the short
    way from `hand_mat` takes joint 7 (now at `q7`) past WRIST_LIMIT: then whichever of it and
    the same hand closing the other way round (the fingers swapped) leaves joint 7 nearer the
    middle of its range. `either_way`: a turn within HALF_TURN_SLACK of a half turn may go
    either way round, so `mat` is kept if one way stays in range (a push back from home's pose:
    which way is shorter is down to rounding there). `nearest`: of the two, the one the hand
    turns to the least, if it keeps joint 7 in range (closed fingers coming down on a part
    touch it alike either way round)."""
    flipped = mat @ np.diag([-1.0, -1.0, 1.0])

    def q7_after(m: np.ndarray) -> float:
        a, b = hand_mat[:2, 1], m[:2, 1]
        yaw = float(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b))
        if either_way and abs(yaw) > np.pi - HALF_TURN_SLACK:
            return min(q7 - yaw, q7 - yaw + np.copysign(2 * np.pi, yaw), key=abs)
        return q7 - yaw  # turning the hand by +yaw about world z turns joint 7 by about -yaw

    if nearest:
        ok = [m for m in (mat, flipped) if abs(q7_after(m)) <= WRIST_LIMIT]
        if ok:
            return min(ok, key=lambda m: Rotation.from_matrix(hand_mat.T @ m).magnitude())
    if abs(q7_after(mat)) <= WRIST_LIMIT:
        return mat
    return min((mat, flipped), key=lambda m: abs(q7_after(m)))


def _push_tilt(tcp: np.ndarray, d: np.ndarray) -> float:
    """The push's tilt: PUSH_TILT, less where the wrist trailing behind the fingertips would
    pass out of the arm's reach at the push's start or end (a far object pushed towards the
    robot), down to upright."""
    ends = np.stack([tcp - d * PRE_TOUCH, tcp + d * (MOVE_DISTANCE + PUSH_OVERSHOOT)])[:, :2]
    for tilt in np.linspace(PUSH_TILT, 0.0, 8):
        wrist = ends - d[:2] * WRIST_BEHIND_TCP * np.sin(tilt)
        if np.linalg.norm(wrist, axis=1).max() <= WRIST_REACH:
            return float(tilt)
    return 0.0


def _top_touch(snap, part: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Where closed fingers coming straight down can touch `part`, and the closing axis of the
    hand doing it: the upward-facing point of the part nearest its middle with nothing above
    it in the fingers' lane (a kettle's top handle) nor in the hand's footprint higher up (a
    display's screen above its base). Home's closing axis is tried first, then across it."""
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    top = pts[nrm[:, 2] > 0.7]
    if len(top) == 0:
        return None
    top = top[:: max(1, len(top) // 300)]
    cloud = snap.object_points()[::2]
    rel = cloud[None, :, :] - top[:, None, :]  # (top points, cloud, 3)
    fingers = (np.linalg.norm(rel[..., :2], axis=2) < FINGER_LANE) & (rel[..., 2] > 0.01)
    for closing in (HOME_CLOSING_AXIS, np.array([1.0, 0.0, 0.0]), None):
        if closing is None:  # nothing clear of the hand: the fingers' lane alone (the hand may graze)
            closing, hand = HOME_CLOSING_AXIS, False
        else:
            along, across = np.abs(rel[..., :2] @ closing[:2]), np.abs(rel[..., :2] @ closing[[1, 0]])
            hand = (along < HAND_HALF[0]) & (across < HAND_HALF[1]) & (rel[..., 2] > FINGER_LENGTH - 0.01)
        free = ~np.any(fingers | hand, axis=1)
        if free.any():
            cand = top[free]
            return cand[np.argmin(np.linalg.norm((cand - top.mean(axis=0))[:, :2], axis=1))], closing
    return None


def _descent_clear(cloud: np.ndarray, pts: np.ndarray, d: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """A mask over contact points `pts` (n, 3): a push on the point begins where the hand,
    coming straight down (fingertips to the push's height), meets no point of the object
    `cloud` on its way: none above the fingertips under the closed fingers, none above the
    fingers under the hand, whose footprint reaches DESCENT_BEHIND further back when it trails
    tilted."""
    cloud = cloud[::2].astype(np.float32)
    a, b, z = cloud @ d.astype(np.float32), cloud @ lateral.astype(np.float32), cloud[:, 2]
    tip = np.maximum(pts[:, 2], TOUCH_MIN_Z) - 0.005
    start = pts @ d - (FINGER_HALF + PRE_TOUCH)
    side = pts @ lateral
    out = np.empty(len(pts), bool)
    for i in range(0, len(pts), 256):  # in chunks: (points, cloud) pairs run into the millions
        k = slice(i, i + 256)
        ahead = a[None, :] - start[k, None]
        across = np.abs(b[None, :] - side[k, None])
        above = z[None, :] - tip[k, None]
        fingers = (across < FINGER_LANE) & (np.abs(ahead) < FINGER_HALF) & (above > 0.0)
        hand = ((across < HAND_HALF[0]) & (ahead < HAND_HALF[1])
                & (ahead > -HAND_HALF[1] - DESCENT_BEHIND) & (above > FINGER_LENGTH))
        out[k] = ~np.any(fingers | hand, axis=1)
    return out


def _push_point(snap, part: str, d: np.ndarray, avoid: np.ndarray | None = None,
                hand_clear: bool = False) -> np.ndarray | None:
    """Where closed fingers moving along `d` can push `part`: `push_contact`'s choice, except
    that points of the touched part itself block the fingers' lane only when they lie more
    than OWN_SLACK before the contact. Meeting the part a little earlier than the aimed-at
    point still touches it, so this finds a low, central contact on a part whose side is
    slanted to the push (a yawed stapler's lid, where the top edge is the only strictly free
    point and pushing there tips the object over) and after the object has moved or tipped,
    where the strict test finds none. A hollow part's inner wall, behind its own far wall,
    stays out of reach (a pot pushed from inside would bring the hand down onto its rim)
    unless no other contact is left. Contacts the hand reaches without meeting the object (see
    `push_contact`'s `hand_tilt`) come first: a pot's overhanging rim stops the hand short.
    `avoid` (world points, where earlier fingers met the wrong part): a contact whose lane
    passes within AVOID_LANE of none, if there is one; `hand_clear`: contacts the hand reaches
    clear of the object before any other."""
    cloud = snap.object_points()
    if part in snap.asset.parts:
        mine = np.concatenate([np.full(len(snap.part_points(n)), n == part) for n in snap.asset.parts])
    else:  # a spatial part: its share of the object's cloud
        mine = spatial_part_masks(cloud)[part]
    tilt = _push_tilt(cloud.mean(axis=0), d)
    lateral = np.cross([0.0, 0.0, 1.0], d)
    passes = [None]
    if avoid is not None and len(avoid):  # clear of them if it can be, else as before
        pts = snap.part_points(part)
        passes.insert(0, np.all(np.abs((pts @ lateral)[:, None] - (avoid @ lateral)[None, :]) >= AVOID_LANE,
                                axis=1))
    # then the part's own points never block; the hand clear of the object too, if it can be
    tries = [(keep, own, hand) for keep in passes for own in (OWN_SLACK, np.inf) for hand in (tilt, None)]
    if hand_clear:  # every try with the hand clear before any without (a stable sort)
        tries.sort(key=lambda t: t[2] is None)

    def first(only: np.ndarray | None = None) -> np.ndarray | None:
        """The first try's contact, among the part's points flagged `only` if given."""
        for keep, own, hand in tries:
            if only is not None:
                keep = only if keep is None else keep & only
            p = push_contact(snap, part, d, slack=np.where(mine, own, BLOCK_SLACK), hand_tilt=hand, keep=keep)
            if p is not None:
                return p
        return None

    found = first()
    if found is None or _descent_clear(cloud, found[None], d, lateral)[0]:
        return found
    # the hand coming down to where that push starts would land on the object (a pot's handle
    # over the wall below it): a contact it reaches clear, if there is one
    pts, nrm = snap.part_points(part), snap.part_normals(part)
    clear = np.zeros(len(pts), bool)
    facing = (nrm @ -d > 0.5) & (pts[:, 2] > TOUCH_MIN_Z)  # the only points push_contact may take
    clear[facing] = _descent_clear(cloud, pts[facing], d, lateral)
    better = first(clear)
    return found if better is None else better
