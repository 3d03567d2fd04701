"""The expert as a skill executor (`start_skill`) and its parameters (`ExpertParams`)."""

import numpy as np
import pytest

from sims.partmanip import predicates as P
from sims.partmanip.expert import ExpertParams, ScriptedExpert, SkillContext
from sims.partmanip.tasks import SkillCall, make_task


def _run_skill(env, expert, call, ctx, limit=200) -> int:
    """Start `call` and act until the expert says it is done; the steps it took."""
    expert.start_skill(call, ctx)
    for step in range(1, limit + 1):
        env.step(expert.act(env))
        if expert.skill_done(env):
            return step
    pytest.fail(f"{call} not done in {limit} steps")


def test_start_skill_grasps_a_handle_then_lifts_the_mug(mug_env):
    # the env's task is only the scene: the calls come from outside, one at a time
    mug_env.reset(options={"task": make_task(1, "mug", "handle", instance_id=3, init_seed=77)})
    expert = ScriptedExpert()
    expert.reset(mug_env, follow_chain=False)
    grasp = SkillCall("grasp", {"part": "handle"})
    move = SkillCall("move", {"direction": "top", "distance": 0.12})
    _run_skill(mug_env, expert, grasp, SkillContext(after=(move,)))
    assert P.grasping(mug_env.snapshot(), "handle")
    start = mug_env.snapshot()
    _run_skill(mug_env, expert, move, SkillContext.starting(move, start, before=(grasp,)))
    snap = mug_env.snapshot()
    assert P.at_position(snap, start.object_pos + [0.0, 0.0, 0.12])
    assert P.grasping(snap, "handle")


def test_a_skill_is_done_when_its_goal_holds_while_its_waypoints_still_run(mug_env):
    """As the env's tracker judges it: the grasp is done the step it holds, the fingers still
    closing; a move started then waits for them, its goal measured from that step's scene."""
    task = make_task(3, "mug", "handle", directions=("top",), instance_id=3, init_seed=77)
    mug_env.reset(options={"task": task})
    expert = ScriptedExpert()
    expert.reset(mug_env, follow_chain=False)
    grasp, move = task.chain
    expert.start_skill(grasp, SkillContext(after=(move,)))
    for _ in range(200):
        mug_env.step(expert.act(mug_env))
        if expert.skill_done(mug_env):
            break
    assert mug_env.tracker.index == 1 and expert.moving  # the tracker moved on this very step
    start = mug_env.snapshot()
    expert.start_skill(move, SkillContext.starting(move, start, before=(grasp,)))
    assert not expert.skill_done(mug_env)  # the move waits for the grasp's waypoints
    for _ in range(200):
        *_, terminated, _, _ = mug_env.step(expert.act(mug_env))
        if terminated:
            break
    assert mug_env.tracker.done and P.at_position(mug_env.snapshot(), start.object_pos + [0, 0, 0.12])


def test_without_a_started_skill_the_hand_holds_still(mug_env):
    mug_env.reset(options={"task": make_task(1, "mug", "handle", instance_id=3, init_seed=77)})
    expert = ScriptedExpert()
    expert.reset(mug_env, follow_chain=False)
    home = mug_env.commanded_target.copy()
    for _ in range(3):
        action = expert.act(mug_env)
        assert np.allclose(action, home, atol=1e-6)
        mug_env.step(action)
    assert not expert.skill_done(mug_env)


def test_start_skill_needs_a_reset():
    with pytest.raises(RuntimeError, match="reset"):
        ScriptedExpert().start_skill(SkillCall("grasp", {"part": "handle"}))


def test_params_take_overrides_and_reject_unknown_names():
    p = ExpertParams.from_overrides({"speed": 0.3, "side_touch_order": ["right", "left"]})
    assert p.speed == 0.3 and p.side_touch_order == ("right", "left")
    assert p.slow_speed == ExpertParams().slow_speed
    with pytest.raises(ValueError, match="spede") as e:
        ExpertParams.from_overrides({"spede": 0.3})
    assert "\n" not in str(e.value)


def test_slower_params_make_a_slower_expert(mug_env):
    def steps(params) -> int:
        task = make_task(1, "mug", "handle", instance_id=3, init_seed=77)
        mug_env.reset(options={"task": task})
        expert = ScriptedExpert(params)
        expert.reset(mug_env)
        for step in range(1, task.horizon + 1):
            *_, terminated, _, info = mug_env.step(expert.act(mug_env))
            if terminated:
                return step
        pytest.fail("the grasp never held")

    assert steps(ExpertParams.from_overrides({"speed": 0.2})) > steps(ExpertParams())
