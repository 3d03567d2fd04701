"""Posing from a store's records agrees with MuJoCo's own state at every step of a replay."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robopolicy.augment.posing import episode_posing, motions
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.viewer.replay import replay_steps
from robopolicy.viewer.sources import from_store


@pytest.mark.parametrize("episode", [0, 2])  # box (hinged lid) grasp-and-move, mug grasp
def test_poses_from_records_match_the_simulator(box_mug_store, episode):
    store = EpisodeStore.open(box_mug_store)
    posing, poses = episode_posing(store, episode)
    assert len(poses) == store.episode_meta(episode)["length"]
    assert "robot/panda_hand" in posing.segments and "table" in posing.segments
    parts = [s for s in posing.segments if s.startswith(posing.asset.name + "/")]
    assert parts
    moved = 0.0
    for t, env, _, _ in replay_steps(from_store(store, episode)):
        if t >= len(poses):
            break
        # MuJoCo's body poses after a step are those of the substep before it (mj_step computes
        # kinematics before integrating): setting the env to its own state makes them current
        env.set_state(env.get_state())
        b = env.backend
        for name, (rot, trans) in poses[t].items():
            if name == "table":
                continue
            if name.startswith("robot/"):
                bid = mujoco.mj_name2id(b.model, mujoco.mjtObj.mjOBJ_BODY, name[len("robot/"):])
                want_pos, want_rot = b.data.xpos[bid], b.data.xmat[bid].reshape(3, 3)
            else:
                obj, part = name.split("/")[:2]
                body = posing.asset.parts[part].bodies[0]
                want_pos, quat = b.body_pose(obj, body)
                want_rot = np.zeros(9)
                mujoco.mju_quat2Mat(want_rot, quat)
                want_rot = want_rot.reshape(3, 3)
            # the store records the gripper's width; MuJoCo's finger coupling is a soft
            # equality, so each finger sits up to a millimetre or two off half of it when it
            # presses on the object (below a pixel at 128 px); every other body: 1e-5
            tol = 2.5e-3 if name.endswith("finger") else 1e-5
            np.testing.assert_allclose(trans, want_pos, atol=tol, err_msg=f"{name} step {t}")
            np.testing.assert_allclose(rot, want_rot, atol=1e-5, err_msg=f"{name} step {t}")
        hand0 = poses[0]["robot/panda_hand"][1]
        moved = max(moved, float(np.linalg.norm(poses[t]["robot/panda_hand"][1] - hand0)))
    assert moved > 0.05  # the check covered a moving arm, not one pose


def test_motions_are_identity_at_the_reference(box_mug_store):
    store = EpisodeStore.open(box_mug_store)
    _, poses = episode_posing(store, 1)
    rel = motions(poses[-1], poses[0])
    for name, (rot, trans) in rel.items():
        r_now, t_now = poses[-1][name]
        r0, t0 = poses[0][name]
        np.testing.assert_allclose(rot @ r0, r_now, atol=1e-9)
        np.testing.assert_allclose(rot @ t0 + trans, t_now, atol=1e-9)


def test_a_store_without_the_records_is_refused(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", {"obs": {"state": {"shape": [3]}},
                                                      "action": {"shape": [10]}})
    store.add_episode({"state": np.zeros((2, 3)), "action": np.zeros((2, 10))})
    with pytest.raises(RobopolicyError, match="robot_joints"):
        episode_posing(store, 0)
