"""TCP waypoints: straight segments in position, slerped in rotation, one target per control step."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from sims.core.control import CONTROL_HZ
from sims.core.rotations import mat_to_rot6d


@dataclass
class Segment:
    """Go from (start_pos, start_mat) to (pos, mat, gripper) in `steps` control steps."""

    start_pos: np.ndarray
    start_mat: np.ndarray
    pos: np.ndarray
    mat: np.ndarray
    gripper: float
    steps: int


def interp(seg: Segment, frac: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The TCP target `frac` of the way along `seg`: position, rotation matrix, gripper."""
    pos = seg.start_pos + (seg.pos - seg.start_pos) * frac
    rots = Rotation.from_matrix(np.stack([seg.start_mat, seg.mat]))
    mat = Slerp([0.0, 1.0], rots)(frac).as_matrix()
    return pos, mat, float(seg.gripper)


def action(pos: np.ndarray, mat: np.ndarray, grip: float) -> np.ndarray:
    """The env's absolute action (10,): TCP position, rot6d, gripper (1 open, 0 closed)."""
    return np.concatenate([pos, mat_to_rot6d(mat), [grip]]).astype(np.float32)


class Waypoints:
    """The commanded TCP target and the segments queued after it.

    `go` appends a segment from where the queue ends; `advance` moves the target one control
    step along the first segment. With nothing queued the target holds."""

    def __init__(self, pos: np.ndarray, mat: np.ndarray, grip: float):
        self.pos, self.mat, self.grip = pos, mat, grip
        self._queue: deque[tuple[Segment, np.ndarray]] = deque()

    def __bool__(self) -> bool:
        return bool(self._queue)

    def clear(self) -> None:
        self._queue.clear()

    def queued_steps(self) -> int:
        """Control steps until the queued segments end."""
        return sum(len(frac) for _, frac in self._queue)

    def end(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the queued waypoints end (TCP position, rotation); the current target if none."""
        if self._queue:
            return self._queue[-1][0].pos, self._queue[-1][0].mat
        return self.pos, self.mat

    def end_grip(self) -> float:
        """The gripper command the queued waypoints end with; the current one if none."""
        return float(self._queue[-1][0].gripper) if self._queue else self.grip

    def go(self, pos, mat, gripper: float, speed: float, rot_speed: float, steps: int | None = None) -> None:
        """Queue a segment to (pos, mat, gripper): `steps` long, else as long as the slower of
        travelling at `speed` (m/s) and turning at `rot_speed` (rad/s) takes."""
        start_pos, start_mat = self.end()
        if steps is None:
            dist = np.linalg.norm(np.asarray(pos) - start_pos)
            angle = Rotation.from_matrix(start_mat.T @ mat).magnitude()
            steps = int(np.ceil(max(dist / speed, angle / rot_speed) * CONTROL_HZ))
        steps = max(1, steps)
        seg = Segment(start_pos.copy(), start_mat.copy(), np.asarray(pos, float),
                      np.asarray(mat, float), gripper, steps)
        self._queue.append((seg, np.arange(1, steps + 1) / steps))

    def advance(self) -> None:
        """Move the target one step along the queue (nothing queued: it holds)."""
        if not self._queue:
            return
        seg, frac = self._queue[0]
        self._queue[0] = (seg, frac[1:])
        if len(frac) == 1:
            self._queue.popleft()
        self.pos, self.mat, self.grip = interp(seg, frac[0])

    def action(self) -> np.ndarray:
        return action(self.pos, self.mat, self.grip)
