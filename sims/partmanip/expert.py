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
from sims.partmanip.grasp import plan_topdown_grasp

CONTROL_HZ = 20.0


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
        if call.skill == "grasp":
            self._plan_grasp(env, call.params["part"])
        elif call.skill == "move":
            self._plan_move(call.params["direction"], call.params.get("distance", 0.12))
        elif call.skill == "release":
            self._go(self._pos, self._mat, 1.0, steps=self.close_steps)
            self._go(self._pos + [0, 0, self.approach_height], self._mat, 1.0)
        else:
            raise ExpertFailure(f"the expert cannot do skill {call.skill!r} yet")

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

    def _plan_move(self, direction: str, distance: float) -> None:
        d = DIRECTIONS[direction]
        pos = self._pos.copy()
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
