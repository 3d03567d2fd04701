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


def test_egl_asked_where_the_plugin_does_not_load_is_one_line(monkeypatch, tmp_path):
    """A module named eglRenderer that is no PyBullet plugin stands for an install without a
    working EGL plugin: asking for EGL says so in one line, when the env config is read (the
    parent process) and when a backend renders, instead of rendering otherwise."""
    from sims.partmanip.env import default_cameras
    from sims.partmanip.env_config import EnvConfig

    (tmp_path / "eglRenderer.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SIMS_PYBULLET_RENDERER", "egl")
    with pytest.raises(ValueError, match="EGL renderer plugin is not available") as e:
        EnvConfig(backend="pybullet")
    assert "\n" not in str(e.value)
    EnvConfig(backend="mujoco")  # the other backend does not care
    b = make_backend("pybullet")
    try:
        b.build(SceneSpec(objects=[PlacedObject(make_instance("mug", 0))],
                          cameras=list(default_cameras())))
        with pytest.raises(ValueError, match="EGL renderer plugin is not available") as e:
            b.render("agentview")
        assert "\n" not in str(e.value)
    finally:
        b.close()


def test_expert_lifts_a_dispenser_by_its_pump_within_the_joint_range():
    """The pump is nearly weightless: lifted by its head, it must stay within its joint's
    range (pulled from a bare 5 mg link, PyBullet's solver let it slide out by 0.3 m)."""
    from sims.partmanip.env import EnvConfig
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.factory import make_env
    from sims.partmanip.tasks import make_task

    env = make_env(EnvConfig(backend="pybullet", obs_keys=("proprio", "state")))
    try:
        task = make_task(5, "dispenser", "head", "top", instance_id=33, init_seed=5)
        expert = ScriptedExpert()
        env.reset(options={"task": task})
        expert.reset(env)
        (lo, hi), = [b.joint.range for b in env.asset.bodies if b.joint is not None]
        info, travel = {"success": False}, []
        for _ in range(task.horizon):
            *_, terminated, truncated, info = env.step(expert.act(env))
            travel.append(env.backend.object_joint_positions(env.asset.name)[0])
            if terminated or truncated:
                break
        assert info["success"], "the expert did not lift the dispenser by its pump head"
        assert lo - 0.003 <= min(travel) and max(travel) <= hi + 0.003, f"pump at {min(travel):.3f}..{max(travel):.3f}"
    finally:
        env.close()
