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


def _between_fingers(g, pts):
    """Points a grasp's closing pads would hold."""
    from sims.partmanip.grasp import PAD_BELOW_TCP, PAD_HALF_WIDTH, PAD_HEIGHT

    rel = pts - g.pos
    tip = g.pos[2] - PAD_BELOW_TCP
    return ((np.abs(rel @ g.mat[:, 1]) <= g.width / 2 + 0.002)
            & (np.abs(rel @ g.mat[:, 0]) < PAD_HALF_WIDTH) & (pts[:, 2] > tip)
            & (pts[:, 2] < tip + PAD_HEIGHT))


def test_fingers_never_close_across_two_bodies():
    # scissors: the two finger rings sit on the two blades' links, side by side; a grasp across
    # both would fold the scissors open and out of the fingers
    from sims.partmanip.push import resting_snapshot

    scissors = make_instance("scissors", 9)
    snap = resting_snapshot(scissors, np.zeros(3), 0.0)
    names = list(scissors.parts)
    pts = np.concatenate([snap.part_points(n) for n in names])
    nrm = np.concatenate([snap.part_normals(n) for n in names])
    is_handle = np.concatenate([np.full(len(snap.part_points(n)), n == "handle") for n in names])
    parts = scissors.parts
    body = np.concatenate([np.asarray(parts[n].bodies)[parts[n].body_index()] for n in names])
    free = plan_topdown_grasp(pts, nrm, is_handle)
    assert len(set(body[_between_fingers(free, pts)])) == 2  # what happened without labels
    g = plan_topdown_grasp(pts, nrm, is_handle, body=body)
    assert g is not None and len(set(body[_between_fingers(g, pts)])) == 1


def test_the_closing_axis_points_at_the_centre_of_mass():
    # a square post: either closing direction fits; the mass sits off to one side along x,
    # so the fingers should close along x (the weight then hangs in the grasp's plane)
    post, normals = _box_cloud(np.array([0.03, 0.03, 0.04]), np.array([0.5, 0.0, 0.02]))
    g = plan_topdown_grasp(post, normals, np.ones(len(post), bool),
                           centre_of_mass=np.array([0.6, 0.0, 0.02]))
    assert abs(g.mat[0, 1]) > 0.95
    g = plan_topdown_grasp(post, normals, np.ones(len(post), bool),
                           centre_of_mass=np.array([0.5, 0.1, 0.02]))
    assert abs(g.mat[1, 1]) > 0.95
