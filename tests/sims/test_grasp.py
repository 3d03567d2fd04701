import numpy as np

from sims.objects import make_instance
from sims.partmanip.grasp import MAX_WIDTH, plan_topdown_grasp


def _box_cloud(size, centre, n=3000, seed=0):
    """Points on the faces of an axis-aligned box, with outward normals."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-0.5, 0.5, (n, 3)) * size
    axis = rng.integers(3, size=n)
    sign = np.sign(p[np.arange(n), axis])
    p[np.arange(n), axis] = sign * size[axis] / 2
    normals = np.zeros((n, 3))
    normals[np.arange(n), axis] = sign
    return p + centre, normals


def test_grasp_on_a_bar_closes_across_its_narrow_side():
    bar, normals = _box_cloud(np.array([0.12, 0.02, 0.04]), np.array([0.5, 0.0, 0.02]))
    g = plan_topdown_grasp(bar, normals, np.ones(len(bar), bool))
    assert g is not None
    closing = g.mat[:, 1]
    assert abs(closing[1]) > 0.95  # fingers close along y, across the 2 cm side
    assert g.width < 0.025
    assert np.allclose(g.mat[:, 2], [0, 0, -1])
    assert 0.0 < g.pos[2] < 0.04


def test_no_grasp_when_the_part_is_too_wide():
    # Only a diagonal pinch across a corner would fit the opening; it is not antipodal.
    block, normals = _box_cloud(np.array([0.12, 0.12, 0.05]), np.array([0.5, 0.0, 0.025]))
    assert plan_topdown_grasp(block, normals, np.ones(len(block), bool)) is None


def test_handle_grasp_holds_mostly_handle_points():
    mug = make_instance("mug", 2)
    names = list(mug.parts)
    pts = np.concatenate([mug.parts[n].points for n in names])
    nrm = np.concatenate([mug.parts[n].normals for n in names])
    is_handle = np.concatenate([np.full(len(mug.parts[n].points), n == "handle") for n in names])
    g = plan_topdown_grasp(pts, nrm, is_handle)
    assert g is not None and g.width < MAX_WIDTH
    d = np.linalg.norm(mug.parts["handle"].points - g.pos, axis=1).min()
    assert d < 0.02  # the grasp is at the handle
