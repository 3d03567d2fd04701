"""The scripted expert's success rate on seeded episodes (the demo source must be reliable)."""

import pytest

from sims.partmanip.expert import ScriptedExpert
from sims.partmanip.tasks import make_task


def _success(env, task) -> bool:
    expert = ScriptedExpert()
    env.reset(options={"task": task})
    expert.reset(env)
    for _ in range(task.horizon):
        *_, terminated, truncated, info = env.step(expert.act(env))
        if terminated or truncated:
            return info["success"]
    return False


@pytest.mark.slow
@pytest.mark.parametrize("task_class,part,direction", [
    (1, "handle", None), (1, "body", None), (3, "handle", "top"), (3, "body", "left")])
def test_expert_succeeds_on_20_seeds(mug_env, task_class, part, direction):
    wins = sum(_success(mug_env, make_task(task_class, "mug", part, direction,
                                           instance_id=seed % 6, init_seed=1000 + seed))
               for seed in range(20))
    assert wins >= 18, f"expert succeeded on {wins}/20"


def test_expert_grasps_a_handle(mug_env):
    assert _success(mug_env, make_task(1, "mug", "handle", instance_id=3, init_seed=77))


@pytest.mark.parametrize("category", ["mug", "kettle", "laptop"])
def test_expert_touches_a_part_from_above(mug_env, category):
    part = "body" if category != "laptop" else "keyboard"
    assert _success(mug_env, make_task(2, category, part, instance_id=1, init_seed=1))


def test_expert_pushes_from_a_side_and_lets_go(mug_env):
    # touch the bottle's right side, push it 12 cm left, release and back away
    task = make_task(6, "bottle", "right", directions=("left",), instance_id=1, init_seed=1)
    assert [c.skill for c in task.chain] == ["touch", "move", "release"]
    assert _success(mug_env, task)
