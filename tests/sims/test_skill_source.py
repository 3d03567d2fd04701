"""The env's skill source (the oracle chain tracker or a planner's skill) and explicit states."""

import json

import numpy as np
import pytest

from sims.partmanip.factory import make_env
from sims.partmanip.tasks import SkillCall, make_task

KEYS = ["proprio", "state", "skill_state", "skill_delta", "skill_pcd", "pcd", "part_mask.agentview"]
TASK = make_task(3, "mug", "handle", "top", instance_id=1, init_seed=3)


@pytest.fixture(scope="module")
def env():
    e = make_env({"obs_keys": KEYS})
    yield e
    e.close()


def _at_move(env):
    """Run the expert on TASK until its grasp is done (the move is the chain's current skill)."""
    from sims.partmanip.expert import ScriptedExpert

    env.reset(options={"task": TASK})
    expert = ScriptedExpert()
    expert.reset(env)
    for _ in range(TASK.horizon):
        env.step(expert.act(env))
        if env.tracker.index == 1:
            return expert
    raise AssertionError("the expert never grasped the handle")


def test_set_state_round_trip_restores_the_tracker(env):
    expert = _at_move(env)
    saved = env.get_state()
    assert saved.skill_index == 1 and saved.steps == env.elapsed_steps
    actions, after = [], []
    for _ in range(6):
        actions.append(expert.act(env))
        after.append(env.step(actions[-1]))

    # elsewhere (another instance and task), then back through the state's JSON
    env.reset(options={"task": make_task(1, "mug", "body", instance_id=4, init_seed=8)})
    env.set_state(json.loads(json.dumps(saved.to_dict())))
    assert env.tracker.index == 1 and env.task == TASK and env.elapsed_steps == saved.steps
    np.testing.assert_array_equal(env.tracker.move_start, saved.skill_start)
    np.testing.assert_allclose(env.tracker.move_target(), saved.skill_start + [0, 0, 0.12])
    for action, (obs0, r0, term0, trunc0, info0) in zip(actions, after, strict=True):
        obs, r, term, trunc, info = env.step(action)
        for k in obs0:
            np.testing.assert_array_equal(obs[k], obs0[k], err_msg=k)
        assert (r, term, trunc, info) == (r0, term0, trunc0, info0)

    # reset from the explicit state gives the state's observation and chain position
    obs_a, info_a = env.reset(options={"state": saved})
    assert info_a["skill_index"] == 1 and info_a["skill_source"] == "oracle"
    assert env.get_state().skill_index == 1
    np.testing.assert_array_equal(env.get_state().sim, saved.sim)


def test_skill_source_switch_gives_the_planners_fields(env):
    _at_move(env)
    state = env.get_state()
    oracle, oracle_info = env.reset(options={"state": state})
    assert oracle_info["skill_instruction"] == TASK.skill_instructions[1]  # the chain's move
    # the chain's move carries the handle: its flag and mask are on the handle
    np.testing.assert_array_equal(oracle["skill_state"][9:], np.eye(11)[2] + np.eye(11)[5 + 4])

    env.set_skill(SkillCall("grasp", {"part": "body"}))  # the planner says: grasp the body
    obs, _, _, _, info = env.step(env.commanded_target)
    assert info["skill_source"] == "planner"
    assert info["skill_instruction"] == "Grasp the mug by its body."
    assert info["skill_index"] == 1 and not info["success"]  # the chain's, not the planner's
    assert set(info["predicates"]) == set(oracle_info["predicates"])  # the chain's move goals
    body = env.snapshot().part_points("body").mean(axis=0)
    np.testing.assert_allclose(obs["skill_state"][:3], body, atol=0.01)
    assert np.linalg.norm(obs["skill_state"][:3] - oracle["skill_state"][:3]) > 0.02
    np.testing.assert_array_equal(obs["skill_state"][9:], np.eye(11)[0])
    flag, mask = obs["skill_pcd"][:, 3], obs["part_mask.agentview"]
    assert not np.array_equal(flag, oracle["skill_pcd"][:, 3])
    assert not np.array_equal(mask, oracle["part_mask.agentview"])
    # body and handle pixels differ (a pixel may change hands: the scene stepped once since)
    assert mask.sum() > 50 and (mask & oracle["part_mask.agentview"]).sum() < 0.05 * mask.sum()
    # task-level keys do not depend on the source
    np.testing.assert_array_equal(obs["pcd"], obs["skill_pcd"][:, :3])

    # a move set next holds the part of the last grasp in the planner's history
    start = env.backend.object_pose(env.asset.name)[0]
    env.set_skill(SkillCall("move", {"direction": "left", "distance": 0.1}))
    obs, _, _, _, info = env.step(env.commanded_target)
    assert env.target_part() == "body" and info["skill_instruction"] == "Move the mug to the left."
    np.testing.assert_allclose(obs["skill_state"][6:9], start + [0, 0.1, 0])
    np.testing.assert_array_equal(obs["skill_state"][9:], np.eye(11)[2] + np.eye(11)[5 + 2])
    # skill_delta: the object's way to the planner's goal, the TCP's way to the held part
    np.testing.assert_allclose(obs["skill_delta"][:3], start + [0, 0.1, 0] - obs["state"][:3],
                               atol=1e-6)
    assert 0.09 < obs["skill_delta"][1] < 0.11
    np.testing.assert_allclose(obs["skill_delta"][3:], obs["skill_state"][:3] - obs["proprio"][8:11],
                               atol=1e-6)
    # the state carries the planner skill; set_skill(None) returns to the oracle
    assert env.get_state().skill["call"] == {"skill": "move", "params": {"direction": "left",
                                                                          "distance": 0.1}}
    env.set_skill(None)
    assert env.target_part() == "handle" and env.current_skill().call == TASK.chain[1]


def test_set_skill_refuses_a_part_the_object_lacks(env):
    env.reset(options={"task": TASK})
    with pytest.raises(ValueError, match="no part 'lid'"):
        env.set_skill(SkillCall("grasp", {"part": "lid"}))
    env.set_skill(SkillCall("touch", {"part": "left"}))  # a spatial part is fine
    assert env.target_part() == "left"
