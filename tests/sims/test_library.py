"""Every category of the object library: deterministic, labelled, loadable in both simulators,
physically sane and graspable where tasks grasp it."""

import os
import tempfile

import mujoco
import numpy as np
import pybullet
import pytest

from sims.objects import categories, make_instance
from sims.objects.export import to_mjcf, to_urdf
from sims.objects.geometry import load_category_spec
from sims.objects.kinematics import object_points
from tests.sims.physics_checks import drop_test, grasp_parts, joint_sweep, topdown_grasp

CATEGORIES = categories()
SAMPLE = (0, 7, 23)  # instances checked per category


def test_fourteen_categories_with_specs():
    assert len(CATEGORIES) == 14
    for c in CATEGORIES:
        spec = load_category_spec(c)
        assert spec["n_instances"] >= 30 and spec["grasp_parts"], c
        assert set(spec["grasp_parts"]) <= set(spec["parts"]), c
    assert sum(load_category_spec(c)["n_instances"] for c in CATEGORIES) >= 500


@pytest.mark.parametrize("category", CATEGORIES)
def test_generation_is_deterministic(category):
    a, b = make_instance.__wrapped__(category, 5), make_instance.__wrapped__(category, 5)
    assert a is not b and to_mjcf(a) == to_mjcf(b)
    assert to_urdf(a) == to_urdf(b)
    for name in a.parts:
        np.testing.assert_array_equal(a.parts[name].points, b.parts[name].points)
    assert to_mjcf(make_instance(category, 6)) != to_mjcf(a)


@pytest.mark.parametrize("category", CATEGORIES)
def test_parts_cover_geoms_and_vocabulary(category):
    vocab = set(load_category_spec(category)["parts"])
    seen = set()
    n = load_category_spec(category)["n_instances"]
    for i in range(n):
        asset = make_instance(category, i)
        labelled = [g for p in asset.parts.values() for g in p.geoms]
        assert sorted(labelled) == sorted(g.name for g in asset.geoms), asset.name
        assert set(asset.parts) <= vocab
        for part in asset.parts.values():
            assert len(part.points) >= 16 and part.points.shape == part.normals.shape, part.name
            assert np.allclose(np.linalg.norm(part.normals, axis=1), 1.0, atol=1e-3)
        seen |= set(asset.parts)
    assert seen == vocab, f"{category}: parts never generated: {sorted(vocab - seen)}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_instances_load_in_mujoco_and_pybullet(category):
    client = pybullet.connect(pybullet.DIRECT)
    try:
        for i in SAMPLE:
            asset = make_instance(category, i)
            model = mujoco.MjModel.from_xml_string(to_mjcf(asset))
            assert model.ngeom == len(asset.geoms)
            assert model.njnt == 1 + sum(b.joint is not None for b in asset.bodies)
            mass = model.body_mass.sum()
            assert 0.02 < mass < 3.0, f"{asset.name}: implausible mass {mass:.3f} kg"
            urdf, files = to_urdf(asset)
            with tempfile.TemporaryDirectory() as d:
                for rel, data in files.items():
                    os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
                    with open(os.path.join(d, rel), "wb") as f:
                        f.write(data)
                with open(os.path.join(d, "model.urdf"), "w") as f:
                    f.write(urdf)
                body = pybullet.loadURDF(os.path.join(d, "model.urdf"), physicsClientId=client)
            assert pybullet.getNumJoints(body, physicsClientId=client) == len(asset.bodies) - 1
            pb_mass = sum(pybullet.getDynamicsInfo(body, link, physicsClientId=client)[0]
                          for link in range(-1, len(asset.bodies) - 1))
            assert pb_mass == pytest.approx(mass, rel=0.05), asset.name
    finally:
        pybullet.disconnect(client)


@pytest.mark.parametrize("category", CATEGORIES)
def test_instances_are_table_top_sized_and_rest_stably(category):
    for i in SAMPLE:
        asset = make_instance(category, i)
        pts = object_points(asset)[0]  # at rest, object frame
        extent = pts.max(0) - pts.min(0)
        assert extent.max() < 0.40 and pts[:, 2].min() > -0.003, f"{asset.name}: {extent}"
        r = drop_test(asset)
        assert r.settled, f"{asset.name} did not settle: {r}"
        assert r.max_penetration < 0.005, f"{asset.name} sank into the table: {r}"
        assert r.drift_xy < 0.05, f"{asset.name} slid or rolled away: {r}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_articulated_joints_move_through_their_range(category):
    for i in SAMPLE:
        asset = make_instance(category, i)
        joints = {b.joint.name: b.joint for b in asset.bodies if b.joint is not None}
        for name, (lo, hi) in joint_sweep(asset).items():
            want = joints[name].range
            tol = 0.1 * (want[1] - want[0])
            assert lo < want[0] + tol and hi > want[1] - tol, f"{asset.name}.{name}: {lo, hi} of {want}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_grasp_parts_fit_the_gripper(category):
    for i in SAMPLE:
        asset = make_instance(category, i)
        assert grasp_parts(asset), asset.name
        for part in grasp_parts(asset):
            found = [topdown_grasp(asset, part, yaw) for yaw in (0.0, 1.0, 2.0)]
            assert any(g is not None for g in found), f"{asset.name}: no top-down grasp on {part}"
            assert all(g.width < 0.075 for g in found if g is not None)
