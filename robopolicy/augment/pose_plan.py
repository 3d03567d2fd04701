"""The `pose` augmenter's trajectory: a source demo's key TCP poses carried to a new object
placement, joined by IK-checked interpolation at the control rate.

Key frames are the steps where the gripper opens or closes, where a skill begins, and the
corners of the source's TCP path (a Ramer-Douglas-Peucker simplification), up to the step the
robot first holds or touches the object (``attach``) and after it, plus the last step. Key poses
up to ``attach`` are relative to the object, so they move with it: ``T_new @ T_src^-1``. After
it the object moves with the hand, and skills are in world directions (move left, lift), so
later key poses keep their world displacement from the attach pose and their rotation about the
TCP, except from a rotate skill on: its goal is a world direction for a part to face, so from
there the hand takes the source's world orientation (the held object then ends turned as the
source's did). A two-phase task is planned one phase at a time (`PoseAugmenter`), each from
the object's pose where the replay left it. The Panda's gripper is symmetric under a half turn
about its approach axis: of the two equivalent grasps the one nearer the source's orientation
is taken. An approach pose above the first key pose is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.core.rotations import mat_to_rot6d, quat_to_mat, rot6d_to_mat, rotation_angle

HALF_TURN_Z = np.diag([-1.0, -1.0, 1.0])  # a half turn about the TCP's approach axis (z)


class PlanFailure(Exception):
    """The demo cannot be carried to the new placement (an unreachable pose)."""


@dataclass(frozen=True)
class PoseParams:
    """How `pose` builds a trajectory (configs/augment/pose.yaml `params`)."""

    approach_height: float = 0.08  # metres above the first key pose
    dwell_steps: int = 6  # steps the pose is held after the gripper opens or closes
    max_step_m: float = 0.012  # TCP travel per control step at most (0.24 m/s at 20 Hz)
    max_step_rad: float = 0.08  # TCP rotation per control step at most
    corner_tol_m: float = 0.005  # path simplification tolerance (key frames at the corners)
    hold_steps: int = 15  # steps the last pose is held for the task to complete
    release_retreat_m: float = 0.04  # a phase that ends releasing backs off this much more
    rotate_yaw_deg: float = 45.0  # a task with a rotate turns the object at most this far from the source's yaw
    ik_tol_m: float = 0.004  # an interpolated pose IK misses by more is unreachable
    ik_tol_rad: float = 0.05
    symmetric_gripper: bool = True


def pose_mat(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, pos
    return out


def object_mat(object_pose: np.ndarray) -> np.ndarray:
    """4x4 of a recorded ``object_pose`` (pos 3 + quaternion wxyz 4)."""
    return pose_mat(np.asarray(object_pose[:3], float), quat_to_mat(np.asarray(object_pose[3:], float)))


def _corners(pos: np.ndarray, lo: int, hi: int, tol: float, out: set[int]) -> None:
    if hi - lo < 2:
        return
    seg = pos[hi] - pos[lo]
    norm = np.linalg.norm(seg)
    rel = pos[lo + 1:hi] - pos[lo]
    if norm < 1e-9:
        dist = np.linalg.norm(rel, axis=1)
    else:
        dist = np.linalg.norm(np.cross(rel, seg / norm), axis=1)
    k = int(np.argmax(dist))
    if dist[k] > tol:
        mid = lo + 1 + k
        out.add(mid)
        _corners(pos, lo, mid, tol, out)
        _corners(pos, mid, hi, tol, out)


def key_frames(actions: np.ndarray, skill_starts: list[int], first_skill: str,
               corner_tol: float) -> tuple[list[int], int]:
    """(sorted key steps, the attach step) of a source demo's actions (T, 10)."""
    t_len = len(actions)
    grip = actions[:, 9] > 0.5
    changes = [t for t in range(1, t_len) if grip[t] != grip[t - 1]]
    closes = [t for t in changes if not grip[t]]
    starts = [s for s in skill_starts if 0 < s < t_len]
    if first_skill == "grasp" and closes:
        attach = closes[0]
    elif starts:  # a touch is done when the next skill begins
        attach = starts[0]
    else:
        attach = t_len - 1
    keys = {*changes, *starts, attach, t_len - 1}
    fixed = sorted(keys | {0})
    for lo, hi in zip(fixed[:-1], fixed[1:], strict=True):
        _corners(actions[:, :3].astype(float), lo, hi, corner_tol, keys)
    # a turn of the wrist moves no position: split it until no two keys are more than
    # MAX_KEY_TURN apart, so the path between them turns the way the source did (a slerp takes
    # the shorter way, and a half turn the other way round runs into the wrist's joint limit)
    rots = [rot6d_to_mat(a[3:9].astype(float)) for a in actions]
    ordered = sorted(keys | {0})
    for lo, hi in zip(ordered[:-1], ordered[1:], strict=True):
        _turns(rots, lo, hi, keys)
    return sorted(keys), attach


MAX_KEY_TURN = np.radians(60)


def _turns(rots: list[np.ndarray], lo: int, hi: int, out: set[int]) -> None:
    if hi - lo < 2 or rotation_angle(rots[lo], rots[hi]) <= MAX_KEY_TURN:
        return
    mid = (lo + hi) // 2
    out.add(mid)
    _turns(rots, lo, mid, out)
    _turns(rots, mid, hi, out)


def carry_keys(actions: np.ndarray, keys: list[int], attach: int, src_object: np.ndarray,
               new_object: np.ndarray, symmetric: bool, world_from: int | None = None
               ) -> list[np.ndarray]:
    """The key TCP poses (4x4) at the new placement (see the module docstring); keys after
    the attach step from `world_from` on (a rotate's start) keep the source's world
    orientation."""
    move = object_mat(new_object) @ np.linalg.inv(object_mat(src_object))
    src = {k: pose_mat(actions[k, :3], rot6d_to_mat(actions[k, 3:9])) for k in keys}
    flip = np.eye(3)
    if symmetric:
        carried = move[:3, :3] @ src[attach][:3, :3]
        if rotation_angle(carried @ HALF_TURN_Z, src[attach][:3, :3]) < \
                rotation_angle(carried, src[attach][:3, :3]):
            flip = HALF_TURN_Z
    a_src = src[attach]
    a_new = move @ a_src
    a_new[:3, :3] = a_new[:3, :3] @ flip
    out = []
    for k in keys:
        if k <= attach:
            p = move @ src[k]
            p[:3, :3] = p[:3, :3] @ flip
        else:
            p = np.eye(4)
            if world_from is not None and k >= world_from:
                # the grasp is the source's up to the half turn, so this hand orientation
                # turns the held object to the source's world orientation
                p[:3, :3] = src[k][:3, :3] @ flip
            else:
                p[:3, :3] = src[k][:3, :3] @ a_src[:3, :3].T @ a_new[:3, :3]
            p[:3, 3] = a_new[:3, 3] + src[k][:3, 3] - a_src[:3, 3]
        out.append(p)
    return out


def _slerp_path(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    """n poses from a (excluded) to b (included), linear in position, slerp in rotation (the
    expert's own interpolation)."""
    from sims.partmanip.expert.trajectory import Segment, interp

    seg = Segment(a[:3, 3], a[:3, :3], b[:3, 3], b[:3, :3], 0.0, n)
    return [pose_mat(*interp(seg, s)[:2]) for s in np.arange(1, n + 1) / n]


def _steps_between(a: np.ndarray, b: np.ndarray, params: PoseParams, at_least: int = 1) -> int:
    dist = float(np.linalg.norm(b[:3, 3] - a[:3, 3]))
    ang = rotation_angle(a[:3, :3], b[:3, :3])
    return max(at_least, int(np.ceil(dist / params.max_step_m)),
               int(np.ceil(ang / params.max_step_rad)))


def plan_actions(actions: np.ndarray, skill_starts: list[int], first_skill: str,
                 src_object: np.ndarray, new_object: np.ndarray, start: np.ndarray,
                 params: PoseParams, world_from: int | None = None,
                 ends_released: bool = False, first_phase: bool = True,
                 last_phase: bool = True) -> tuple[np.ndarray, dict]:
    """Absolute actions (T', 10) doing the source demo `actions` on the object at `new_object`
    (its initial ``object_pose``; `src_object`: the source's), from the commanded target
    `start` (10,), and a summary of the plan (key steps, attach step, grasp flip);
    `world_from`: the step a rotate skill begins (see `carry_keys`). `ends_released`: the
    segment's last skill is a release; the source's hand stopped the moment the release held,
    just clear of the object, and an object that ends a few millimetres elsewhere leaves the
    carried hand too near it, so the hand goes `release_retreat_m` further the way the
    source's hand went during the release (up if it barely moved) before the hold. A later
    phase (`first_phase` false) starts from the hand where the last one left it, without the
    approach pose; a phase before the last (`last_phase` false) holds its end only
    `dwell_steps` (the next phase's start follows)."""
    keys, attach = key_frames(actions, skill_starts, first_skill, params.corner_tol_m)
    if world_from is not None and 0 < world_from < len(actions):
        keys = sorted({*keys, world_from - 1})  # the turn starts from where the rotate began
    poses = carry_keys(actions, keys, attach, src_object, new_object, params.symmetric_gripper,
                       world_from)
    grip = actions[:, 9]
    current = pose_mat(start[:3], rot6d_to_mat(start[3:9]))
    approach = poses[0].copy()
    approach[2, 3] += params.approach_height
    path: list[tuple[np.ndarray, float]] = []

    def go(target: np.ndarray, gripper: float, at_least: int = 1) -> None:
        nonlocal current
        for p in _slerp_path(current, target, _steps_between(current, target, params, at_least)):
            path.append((p, gripper))
        current = target

    first_grip = float(grip[keys[0] - 1]) if keys[0] > 0 else float(grip[0])
    if first_phase:
        go(approach, first_grip)
    go(poses[0], first_grip)
    prev = keys[0]
    for i, (k, pose) in enumerate(zip(keys, poses, strict=True)):
        if i:
            go(pose, float(grip[k - 1]), at_least=k - prev)
        if k > 0 and grip[k] != grip[k - 1]:
            path.extend([(current, float(grip[k]))] * params.dwell_steps)
        prev = k
    if ends_released and params.release_retreat_m > 0:
        began = [i for i, k in enumerate(keys) if k == max(skill_starts)]
        away = poses[-1][:3, 3] - poses[began[0]][:3, 3] if began else np.zeros(3)
        norm = float(np.linalg.norm(away))
        away = away / norm if norm > 0.01 else np.array([0.0, 0.0, 1.0])
        retreat = current.copy()
        retreat[:3, 3] += params.release_retreat_m * away
        go(retreat, float(grip[-1]))
    path.extend([(current, float(grip[-1]))] * (params.hold_steps if last_phase else params.dwell_steps))
    out = np.array([np.concatenate([p[:3, 3], mat_to_rot6d(p[:3, :3]), [g]]) for p, g in path])
    return out.astype(np.float32), {"keys": keys, "attach": attach}


class ReachCheck:
    """Re-solves a TCP path with the project's IK (`sims.mujoco.ik.PandaIK`, mink) step by step
    from the robot's joints, and refuses a path with a pose IK cannot reach."""

    def __init__(self, params: PoseParams) -> None:
        import mujoco

        from sims.mujoco.ik import PandaIK

        self.ik = PandaIK()
        self.params = params
        self._data = mujoco.MjData(self.ik.model)
        self._site = mujoco.mj_name2id(self.ik.model, mujoco.mjtObj.mjOBJ_SITE, "tcp")

    def joint_path(self, actions: np.ndarray, q_start: np.ndarray) -> np.ndarray:
        """Joint angles (T', 7) for each action's TCP pose; PlanFailure if one is unreachable."""
        import mujoco

        q, out = np.asarray(q_start, float), []
        for t, a in enumerate(actions):
            pos, rot = a[:3].astype(float), rot6d_to_mat(a[3:9].astype(float))
            q = self.ik.solve(pos, rot, q)
            self._data.qpos[:7] = q
            mujoco.mj_kinematics(self.ik.model, self._data)
            err = np.linalg.norm(self._data.site_xpos[self._site] - pos)
            ang = rotation_angle(self._data.site_xmat[self._site].reshape(3, 3), rot)
            if err > self.params.ik_tol_m or ang > self.params.ik_tol_rad:
                raise PlanFailure(f"step {t}: IK misses the TCP pose by {err * 1000:.1f} mm, "
                                  f"{np.degrees(ang):.1f} deg")
            out.append(q.copy())
        return np.array(out)
