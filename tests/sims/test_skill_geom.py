"""`skill_geom`: the target part's extent and the way from the TCP to its nearest surface point."""

import numpy as np
import pytest

from sims.partmanip.factory import make_env
from sims.partmanip.obs_layout import describe, is_skill_level, skill_geom
from sims.partmanip.tasks import SkillCall, make_task

TASK = make_task(3, "mug", "handle", "top", instance_id=1, init_seed=3)


def test_a_ring_points_the_tcp_at_its_rim_not_its_centre():
    angle = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    ring = np.stack([0.5 + 0.05 * np.cos(angle), 0.05 * np.sin(angle), np.full_like(angle, 0.1)], 1)
    tcp = np.array([0.5, 0.0, 0.1])  # at the ring's centroid: skill_delta would say "arrived"
    geom = skill_geom(ring, tcp)
    assert geom.shape == (9,) and geom.dtype == np.float32
    np.testing.assert_allclose(geom[:3], [-0.05, -0.05, 0.0], atol=1e-4)
    np.testing.assert_allclose(geom[3:6], [0.05, 0.05, 0.0], atol=1e-4)
    assert np.linalg.norm(geom[6:]) == pytest.approx(0.05, abs=1e-6)
    tcp = np.array([0.6, 0.0, 0.2])  # beyond the rim: the nearest point is the rim's +x end
    np.testing.assert_allclose(skill_geom(ring, tcp)[6:], [-0.05, 0.0, -0.1], atol=1e-6)
    np.testing.assert_array_equal(skill_geom(None, tcp), np.zeros(9, np.float32))
    np.testing.assert_array_equal(skill_geom(np.zeros((0, 3)), tcp), np.zeros(9, np.float32))


def test_the_env_observes_the_skill_sources_part():
    assert is_skill_level("skill_geom") and "nearest" in describe("skill_geom")
    env = make_env({"obs_keys": ["proprio", "skill_state", "skill_geom"]})
    try:
        obs, _ = env.reset(options={"task": TASK})
        assert env.observation_space.contains(obs)

        def expected(part):
            return skill_geom(env.snapshot().part_points(part), obs["proprio"][8:11])

        np.testing.assert_allclose(obs["skill_geom"], expected("handle"), atol=1e-5)
        lo, hi = obs["skill_geom"][:3], obs["skill_geom"][3:6]
        assert np.all(lo < 0) and np.all(hi > 0)  # the box holds the handle's centroid
        # the nearest surface point is nearer the TCP than the centroid (skill_state[:3])
        assert np.linalg.norm(obs["skill_geom"][6:]) < np.linalg.norm(obs["skill_state"][:3]
                                                                      - obs["proprio"][8:11])

        env.set_skill(SkillCall("grasp", {"part": "body"}))  # a planner's skill: the body's geometry
        obs, *_ = env.step(env.commanded_target)
        np.testing.assert_allclose(obs["skill_geom"], expected("body"), atol=1e-5)
        assert not np.allclose(obs["skill_geom"][:6], expected("handle")[:6], atol=1e-3)
        env.set_skill(SkillCall("touch", {"part": "left"}))  # a spatial part, from the posed cloud
        obs, *_ = env.step(env.commanded_target)
        np.testing.assert_allclose(obs["skill_geom"], expected("left"), atol=1e-5)
    finally:
        env.close()
