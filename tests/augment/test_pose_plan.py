"""The `pose` augmenter's planning: key poses carried with the object, world-frame orientations
from a rotate on, a release that backs off further, and a demo cut into its task phases."""

from __future__ import annotations

import numpy as np

from robopolicy.augment.pose_aug import _phases
from robopolicy.augment.pose_plan import PoseParams, carry_keys, plan_actions
from sims.core.rotations import mat_to_rot6d, rot6d_to_mat, rotation_angle
from sims.partmanip.tasks import TaskSpec


def _yaw(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _object(x: float, y: float, deg: float) -> np.ndarray:
    a = np.radians(deg) / 2  # quaternion wxyz of a yaw
    return np.array([x, y, 0.0, np.cos(a), 0.0, 0.0, np.sin(a)])


DOWN = np.diag([1.0, -1.0, -1.0])  # the TCP pointing down


def _demo() -> np.ndarray:
    """A 40-step source: reach (0-9), grasp closed from 10, lift (10-19), turn the wrist 90 deg
    about the vertical (20-39)."""
    out = []
    for t in range(40):
        pos = np.array([0.5, 0.0, 0.05 + 0.01 * min(max(t - 10, 0), 10)])
        turn = _yaw(90 * max(t - 20, 0) / 19) @ DOWN
        out.append(np.concatenate([pos, mat_to_rot6d(turn), [1.0 if t < 10 else 0.0]]))
    return np.array(out)


def test_keys_after_a_rotate_keep_the_source_world_orientation():
    actions = _demo()
    keys, attach = [0, 10, 20, 39], 10
    src, new = _object(0.5, 0.0, 0), _object(0.55, 0.05, 30)
    rel = carry_keys(actions, keys, attach, src, new, symmetric=False)
    world = carry_keys(actions, keys, attach, src, new, symmetric=False, world_from=20)
    source_end = rot6d_to_mat(actions[39, 3:9])
    # carried relative to the grasp, the end orientation is turned by the object's 30 deg...
    assert abs(np.degrees(rotation_angle(rel[-1][:3, :3], source_end)) - 30) < 1e-6
    # ...from the rotate on it is the source's own, so the held object ends as the source's did
    assert rotation_angle(world[-1][:3, :3], source_end) < 1e-9
    assert rotation_angle(world[2][:3, :3], rot6d_to_mat(actions[20, 3:9])) < 1e-9
    # before the rotate both agree, and positions are the same in both
    for a, b in zip(rel[:2], world[:2], strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(rel[-1][:3, 3], world[-1][:3, 3])


def test_a_phase_ending_in_a_release_backs_off_the_way_the_release_went():
    """The release (steps 20-39 here) moves the hand +y; the plan goes release_retreat_m
    further that way before its final hold."""
    actions = _demo()
    actions[20:, 3:9] = mat_to_rot6d(DOWN)
    actions[20:, 1] = np.linspace(0.0, 0.04, 20)
    actions[20:, 9] = 1.0
    src = _object(0.5, 0.0, 0)
    start = actions[0].copy()
    start[2] += 0.1
    params = PoseParams(symmetric_gripper=False)
    plain, _ = plan_actions(actions, [0, 10, 20], "grasp", src, src, start, params)
    backed, _ = plan_actions(actions, [0, 10, 20], "grasp", src, src, start, params,
                             ends_released=True)
    np.testing.assert_allclose(plain[-1, :3], [0.5, 0.04, actions[-1, 2]], atol=1e-6)
    np.testing.assert_allclose(backed[-1, :3] - plain[-1, :3], [0, params.release_retreat_m, 0],
                               atol=1e-6)


def test_a_two_phase_demo_is_cut_at_its_second_phase():
    chain = [{"skill": s} for s in ("grasp", "move", "rotate", "move", "release", "touch", "move",
                                     "release")]
    task = TaskSpec(task_id="c14", task_class=14, category="mug", instance_id=0, init_seed=0,
                    chain=(), instruction="", skill_instructions=(), phases=(0, 5))
    starts = [0, 20, 40, 60, 80, 100, 130, 150]
    phases = _phases(task, chain, starts, 170)
    assert phases == [(0, 100, "grasp", 40, True), (100, 170, "touch", None, True)]
    one = TaskSpec(task_id="c08", task_class=8, category="mug", instance_id=0, init_seed=0,
                   chain=(), instruction="", skill_instructions=())
    assert _phases(one, chain[:3], starts[:3], 60) == [(0, 60, "grasp", 40, False)]


def test_a_wrist_turn_is_split_so_the_path_turns_the_source_way():
    """A 200 deg turn in place has no position corner; without keys inside it a slerp between
    its ends would turn 160 deg the other way round."""
    from robopolicy.augment.pose_plan import key_frames

    actions = _demo()
    actions[:, :3] = [0.5, 0.0, 0.1]
    actions[:, 9] = 1.0
    turn = [_yaw(-200 * min(max(t - 5, 0), 30) / 30) @ DOWN for t in range(40)]
    actions[:, 3:9] = [mat_to_rot6d(r) for r in turn]
    keys, _ = key_frames(actions, [0], "grasp", 0.005)
    rots = [turn[k] for k in keys]
    assert all(rotation_angle(a, b) <= np.radians(60) + 1e-9 for a, b in zip(rots[:-1], rots[1:], strict=True))
    src = _object(0.5, 0.0, 0)
    planned, _ = plan_actions(actions, [0], "grasp", src, src, actions[0], PoseParams())
    # halfway through, the planned hand is turned -100 deg as the source's is, not +80
    half = [rotation_angle(rot6d_to_mat(a[3:9]), _yaw(-100) @ DOWN) for a in planned]
    assert min(half) < np.radians(5)
