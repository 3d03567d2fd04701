"""Any library instance can be placed on the table by PartManipEnv and rests there."""

import numpy as np
import pytest

from sims.objects import categories
from sims.partmanip.tasks import TaskPool


@pytest.mark.parametrize("category", categories())
def test_instance_rests_where_the_env_places_it(mug_env, category):
    env = mug_env
    pool = TaskPool(classes=(1,), categories=(category,), parts=(), instances=(4,))
    obs, info = env.reset(options={"task": pool.task(11)})
    assert env.asset.category == category and env.asset.instance_id == 4
    pos0, quat0 = env.backend.object_pose(env.asset.name)
    cfg = env.config
    assert cfg.x_range[0] - 1e-3 <= pos0[0] <= cfg.x_range[1] + 1e-3
    assert cfg.y_range[0] - 1e-3 <= pos0[1] <= cfg.y_range[1] + 1e-3
    hold = env.commanded_target
    for _ in range(10):  # half a second with the robot holding still
        env.step(hold)
    pos1, quat1 = env.backend.object_pose(env.asset.name)
    assert np.linalg.norm(pos1 - pos0) < 0.003, f"{category} moved {pos1 - pos0}"
    assert abs(abs(float(np.dot(quat0, quat1))) - 1.0) < 1e-4, f"{category} turned"
    assert obs["state"].shape == env.observation_space["state"].shape
