import mujoco
import numpy as np
import pytest

from sims.objects import make_instance
from sims.objects.export import to_mjcf
from sims.objects.mug import make_mug


def test_mug_generation_is_deterministic():
    a, b = make_mug(7), make_mug(7)
    assert to_mjcf(a) == to_mjcf(b)
    for name in a.parts:
        np.testing.assert_array_equal(a.parts[name].points, b.parts[name].points)
    assert to_mjcf(make_mug(8)) != to_mjcf(a)


@pytest.mark.parametrize("instance", [0, 1, 2, 3])
def test_mug_parts_cover_geoms_and_compile(instance):
    asset = make_instance("mug", instance)
    assert set(asset.parts) == {"handle", "body"}
    labelled = {g for p in asset.parts.values() for g in p.geoms}
    assert labelled == {g.name for g in asset.geoms}
    for part in asset.parts.values():
        assert len(part.points) > 50 and part.points.shape == part.normals.shape
    model = mujoco.MjModel.from_xml_string(to_mjcf(asset))
    assert model.ngeom == len(asset.geoms)
    assert 0.05 < model.body_mass.sum() < 0.5  # a plausible mug, in kg


def test_mug_handle_fits_the_gripper():
    for i in range(10):
        a = make_mug(i)
        assert 2 * a.params["handle_radius"] < 0.02  # well inside the 8 cm opening
        assert 2 * a.params["radius"] < 0.08
