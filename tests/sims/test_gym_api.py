"""The env as the gymnasium ecosystem expects: registered ids, check_env, bounded spaces."""

import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sims  # noqa: F401  (registers the ids)
from sims.registration import MUG_LIFT_ID, PARTMANIP_ID

ALL_KINDS = ["proprio", "state", "rgb.agentview", "depth.agentview", "part_mask.agentview",
             "part_mask.wrist", "pcd"]
NORMALISE_ADVICE = "we recommend using a symmetric and normalized space"


@pytest.mark.parametrize("env_id,kwargs", [
    (MUG_LIFT_ID, {}),
    (PARTMANIP_ID, {"env": {"obs_keys": ALL_KINDS, "image_size": [64, 48]},
                    "tasks": {"split": "test1"}}),
])
def test_check_env_passes_with_only_the_normalise_advice(env_id, kwargs):
    env = gymnasium.make(env_id, **kwargs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)  # also re-makes it for every declared render mode
        # MuJoCo's note on the Panda's meshes (silenced by sims.mujoco, unsilenced by
        # "always") is not gymnasium's
        others = [str(w.message) for w in caught if NORMALISE_ADVICE not in str(w.message)
                  and not str(w.message).startswith("obj_decoder")]
        assert others == []
        obs, _ = env.reset(seed=2)
        assert set(obs) == set(env.observation_space.spaces)
        for key, value in obs.items():
            assert value.dtype == env.observation_space[key].dtype, key
        assert env.observation_space.contains(obs)
        assert env.render().shape == (256, 256, 3)
    finally:
        env.close()


def test_actions_beyond_reach_are_clipped_into_the_action_space(mug_env):
    mug_env.reset(seed=0)
    space = mug_env.action_space
    assert np.isfinite(space.low).all() and np.isfinite(space.high).all()
    assert (space.low[3:9] == -1).all() and (space.high[3:9] == 1).all()
    assert (space.low[9], space.high[9]) == (0, 1)
    far = mug_env.commanded_target
    far[:3] = [5.0, -5.0, 9.0]
    far[9] = 3.0
    obs, *_ = mug_env.step(far)
    assert space.contains(mug_env.commanded_target.astype(np.float32))
    assert mug_env.observation_space.contains(obs)


def test_delta_mode_bounds_the_step():
    env = gymnasium.make(MUG_LIFT_ID, env={"action_mode": "delta"})
    try:
        env.reset(seed=1)
        assert env.action_space.high[:3].max() <= 0.1
        start = env.unwrapped.commanded_target[:3]
        still = np.r_[0.5, 0, 0, 1.0, 0, 0, 0, 1.0, 0, 1.0]  # +0.5 m asked, identity rotation
        env.step(still)
        moved = env.unwrapped.commanded_target[:3] - start
        np.testing.assert_allclose(moved, [env.action_space.high[0], 0, 0], atol=1e-6)
    finally:
        env.close()


def test_registration_is_cheap_and_make_works_from_gymnasium_alone():
    # `import sims` registers without loading a simulator; a program that imports only
    # gymnasium names our module in the id ("module:id", gymnasium 1.x has no plugins)
    code = ("import sys, gymnasium\n"
            "import sims\n"
            "assert 'mujoco' not in sys.modules and 'sims.partmanip.env' not in sys.modules\n"
            f"assert {PARTMANIP_ID!r} in gymnasium.registry and {MUG_LIFT_ID!r} in gymnasium.registry\n"
            "del sys.modules['sims']\n"
            f"env = gymnasium.make('sims:{MUG_LIFT_ID}')\n"
            "obs, info = env.reset(seed=0)\n"
            "print(info['task_id'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("c03-mug-")


def test_unknown_render_mode_is_refused():
    with pytest.raises(ValueError, match="render_mode 'human'"):
        from sims.partmanip.factory import make_env

        make_env(render_mode="human")
