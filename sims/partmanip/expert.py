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
from sims.core.rotations import mat_to_rot6d, rot6d_to_mat
from sims.partmanip.chain import held_part
from sims.partmanip.grasp import PAD_BELOW_TCP, plan_topdown_grasp, topdown_rotation

CONTROL_HZ = 20.0
FINGER_HALF = 0.011  # closed finger pair, half its thickness along the push direction
PRE_TOUCH = 0.05  # start a push this far behind the contact point
TOUCH_DEPTH = 0.004  # press this far into the surface so the contact registers
TOUCH_MIN_Z = 0.015  # fingertips stay above the table when pushing low parts
PUSH_HEIGHT = 0.03  # preferred contact height for a push (low: the object does not tip)
PUSH_OVERSHOOT = 0.02
PUSH_PRESS = 0.015  # a push's touch aims this far past the contact point
RETREAT = 0.06


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

    Speeds are in m/s and rad/s; `approach_height` is the pre-grasp height above the grasp.
    `close_steps` is just long enough for the fingers to settle (~3 steps): holding longer
    would show a learner identical observations followed first by "wait", then by "lift".
    """

    def __init__(self, speed: float = 0.25, slow_speed: float = 0.12, rot_speed: float = 1.5,
                 approach_height: float = 0.10, lift: float = 0.02, close_steps: int = 4):
        self.speed, self.slow_speed, self.rot_speed = speed, slow_speed, rot_speed
        self.approach_height, self.lift = approach_height, lift
        self.close_steps = close_steps

    # -- public ---------------------------------------------------------------------------
    def reset(self, env) -> None:
        t = env.commanded_target
        self._pos, self._mat, self._grip = t[:3].copy(), rot6d_to_mat(t[3:9]), float(t[9])
        self._queue: deque[tuple[Segment, np.ndarray]] = deque()
        self._skill = -1  # the chain index planned last
        self._push_dir: np.ndarray | None = None  # set while the fingers push the object

    def act(self, env) -> np.ndarray:
        """The next action (10,) for `env` in its current state."""
        idx = env.tracker.index
        if idx != self._skill and idx < len(env.task.chain) and not self._queue:
            # A skill's goal can hold before its waypoints end (the grasp holds while the
            # fingers still close); finishing them first keeps every transition visible in the
            # observations (fingers settled, then lift), which a learned policy needs.
            self._skill = idx
            self._plan(env, env.task.chain[idx])
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
            follow = chain[idx + 1] if idx + 1 < len(chain) else None
            push = follow.params["direction"] if follow is not None and follow.skill == "move" else None
            self._plan_touch(env, call.params["part"], push)
        elif call.skill == "move":
            pushing = held_part(chain, idx)[0] == "touch"
            self._plan_move(call.params["direction"], call.params.get("distance", 0.12), pushing)
        elif call.skill == "release":
            back = self._pos.copy()
            self._go(back, self._mat, 1.0, steps=self.close_steps)
            if self._push_dir is not None:  # back away from the pushed side before rising
                back = back - self._push_dir * RETREAT
                self._go(back, self._mat, 1.0)
                self._push_dir = None
            self._go(back + [0, 0, self.approach_height], self._mat, 1.0)
        else:
            raise ExpertFailure(f"the expert cannot do skill {call.skill!r} yet")

    def _plan_touch(self, env, part: str, push: str | None) -> None:
        """Close the fingers, then bring them against the part: from the side opposite `push`
        (at the part's mid height, aimed through the object's centre) when a push follows,
        else down onto the part's highest upward-facing surface."""
        snap = env.snapshot()
        pts, nrm = snap.part_points(part), snap.part_normals(part)
        centre = snap.object_points().mean(axis=0)
        self._go(self._pos, self._mat, 0.0, steps=self.close_steps)
        if push is None:
            up = nrm[:, 2] > 0.7
            if not up.any():
                raise ExpertFailure(f"no upward-facing surface on the {part} of {env.asset.name}")
            top = pts[up]
            p = top[np.argmin(np.linalg.norm((top - top.mean(axis=0))[:, :2], axis=1))]
            mat = topdown_rotation(np.array([0.0, -1.0, 0.0]))
            tcp = p + [0.0, 0.0, PAD_BELOW_TCP - TOUCH_DEPTH]
            self._go(tcp + [0.0, 0.0, self.approach_height], mat, 0.0)
            self._go(tcp, mat, 0.0, speed=self.slow_speed)
            self._push_dir = None
            return
        d = DIRECTIONS[push]
        facing = (nrm @ -d > 0.7) & (pts[:, 2] > TOUCH_MIN_Z)
        if not facing.any():
            raise ExpertFailure(f"no surface of the {part} of {env.asset.name} to push {push}")
        cand = pts[facing]
        lateral = np.cross([0.0, 0.0, 1.0], d)
        p = cand[np.argmin(np.abs((cand - centre) @ lateral) + np.abs(cand[:, 2] - PUSH_HEIGHT))]
        mat = topdown_rotation(lateral)
        # fingertips a little below the contact point, the finger face just behind it
        tcp = np.array([p[0], p[1], max(p[2], TOUCH_MIN_Z) + PAD_BELOW_TCP - 0.005]) - d * FINGER_HALF
        self._go(tcp - d * PRE_TOUCH + [0.0, 0.0, self.approach_height], mat, 0.0)
        self._go(tcp - d * PRE_TOUCH, mat, 0.0)
        # press on until the contact registers: a light object yields, so aim past the surface
        self._go(tcp + d * PUSH_PRESS, mat, 0.0, speed=self.slow_speed)
        self._push_dir = d

    def _plan_grasp(self, env, part: str) -> None:
        snap = env.snapshot()
        names = list(env.asset.parts)
        clouds = [snap.part_points(n) for n in names]
        points = np.concatenate(clouds)
        normals = np.concatenate([snap.part_normals(n) for n in names])
        is_part = np.concatenate([np.full(len(c), n == part) for n, c in zip(names, clouds, strict=True)])
        grasp = plan_topdown_grasp(points, normals, is_part)
        if grasp is None:
            raise ExpertFailure(f"no feasible grasp on the {part} of {env.asset.name}")
        above = grasp.pos + [0.0, 0.0, self.approach_height]
        self._go(above, grasp.mat, 1.0)
        self._go(grasp.pos, grasp.mat, 1.0, speed=self.slow_speed)
        self._go(grasp.pos, grasp.mat, 0.0, steps=self.close_steps)

    def _plan_move(self, direction: str, distance: float, pushing: bool = False) -> None:
        d = DIRECTIONS[direction]
        start = self._queue[-1][0].pos if self._queue else self._pos
        pos = start.copy()
        if pushing:  # slide along the table, a little further: the object lags the fingers
            self._go(pos + d * (distance + PUSH_OVERSHOOT), self._mat, self._grip,
                     speed=self.slow_speed)
            return
        if d[2] == 0:  # horizontal: lift a little first so the object does not drag
            pos = pos + [0.0, 0.0, self.lift]
            self._go(pos, self._mat, self._grip)
        self._go(pos + d * distance, self._mat, self._grip)

    def _go(self, pos, mat, gripper: float, speed: float | None = None, steps: int | None = None):
        start_pos = self._queue[-1][0].pos if self._queue else self._pos
        start_mat = self._queue[-1][0].mat if self._queue else self._mat
        if steps is None:
            dist = np.linalg.norm(np.asarray(pos) - start_pos)
            angle = Rotation.from_matrix(start_mat.T @ mat).magnitude()
            steps = int(np.ceil(max(dist / (speed or self.speed), angle / self.rot_speed) * CONTROL_HZ))
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
