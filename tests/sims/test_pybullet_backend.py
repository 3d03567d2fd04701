"""PyBullet-specific checks: stable object articulations, labels, state replay, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sims.core.registry import make_backend
from sims.core.types import PlacedObject, SceneSpec
from sims.objects import categories, make_instance

SPEED_BOUND = 0.02  # m/s: after 1 s on the table nothing of a resting object moves faster


@pytest.fixture(scope="module")
def pybullet_backend():
    backend = make_backend("pybullet")
    yield backend
    backend.close()


@pytest.mark.parametrize("category", categories())
def test_every_category_settles_with_joints_mid_range(pybullet_backend, category):
    b, asset = pybullet_backend, make_instance(category, 0)
    b.build(SceneSpec(objects=[PlacedObject(asset, (0.5, 0.0, 0.002))]))
    ranges = [body.joint.range for body in asset.bodies if body.joint is not None]
    b.set_object_joint_positions(asset.name, [0.5 * (lo + hi) for lo, hi in ranges])
    b.step(450)  # 0.9 s
    before = {body.name: b.body_pose(asset.name, body.name)[0] for body in asset.bodies}
    b.step(50)  # 0.1 s more
    for body in asset.bodies:
        speed = np.linalg.norm(b.body_pose(asset.name, body.name)[0] - before[body.name]) / 0.1
        assert speed < SPEED_BOUND, f"{asset.name}/{body.name} moves at {speed:.3f} m/s"
    lo, hi = np.array(ranges).reshape(-1, 2).T if ranges else (np.zeros(0), np.zeros(0))
    q = b.object_joint_positions(asset.name)
    assert np.all(q >= lo - 0.02) and np.all(q <= hi + 0.02), f"{asset.name}: joints {q} off range"


def test_state_replays_the_same_trajectory(pybullet_backend):
    b, asset = pybullet_backend, make_instance("mug", 0)
    b.build(SceneSpec(objects=[PlacedObject(asset, (0.45, 0.0, 0.002))]))
    b.step(50)
    start = b.get_state()
    q = b.solve_ik(np.array([0.45, 0.0, 0.05]), np.diag([1.0, -1.0, -1.0]), b.arm_targets)
    b.apply(q, 0.0)
    b.step(200)
    end = b.get_state()
    b.set_state(start)
    np.testing.assert_array_equal(b.get_state(), start)
    b.apply(q, 0.0)
    b.step(200)
    np.testing.assert_array_equal(b.get_state(), end)
    with pytest.raises(ValueError, match="shape"):
        b.set_state(start[:-1])


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'gazebo' \(known: .*mujoco.*") as e:
        make_backend("gazebo")
    assert "pybullet" in str(e.value) and "\n" not in str(e.value)


def test_unknown_renderer_is_one_line(monkeypatch):
    from sims.partmanip.env import default_cameras

    monkeypatch.setenv("SIMS_PYBULLET_RENDERER", "vulkan")
    b = make_backend("pybullet")
    try:
        b.build(SceneSpec(objects=[PlacedObject(make_instance("mug", 0))],
                          cameras=list(default_cameras())))
        with pytest.raises(ValueError, match="SIMS_PYBULLET_RENDERER='vulkan'") as e:
            b.render("agentview")
        assert "\n" not in str(e.value)
    finally:
        b.close()
