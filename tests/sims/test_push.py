"""Push contacts decided on points alone, and the resting pose the catalog predicts them on."""

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.objects import make_instance
from sims.partmanip.env import initial_pose
from sims.partmanip.push import push_contact, resting_snapshot
from sims.partmanip.tasks import make_task


def test_resting_snapshot_is_where_the_env_puts_the_object(mug_env):
    task = make_task(4, "mug", "handle", directions=("left",), instance_id=2, init_seed=5)
    mug_env.reset(options={"task": task})
    live = mug_env.snapshot().part_points("handle")
    predicted = resting_snapshot(make_instance("mug", 2), *initial_pose(5, mug_env.config))
    # the object only settles onto the table after placement: millimetres, not centimetres
    assert np.max(np.linalg.norm(predicted.part_points("handle") - live, axis=1)) < 0.01


def _yaw_turning_handle_to(asset, direction) -> float:
    snap = resting_snapshot(asset, np.zeros(3), 0.0)
    v = snap.part_points("handle").mean(axis=0) - snap.object_points().mean(axis=0)
    d = DIRECTIONS[direction]
    return float(np.arctan2(d[1], d[0]) - np.arctan2(v[1], v[0]))


def test_a_handle_is_pushed_from_its_free_side_only():
    asset = make_instance("mug", 2)
    d = DIRECTIONS["left"]
    # handle towards the fingers (on the right): they reach it first
    near = resting_snapshot(asset, np.zeros(3), _yaw_turning_handle_to(asset, "right"))
    p = push_contact(near, "handle", d)
    assert p is not None and p @ d < near.part_points("body").mean(axis=0) @ d
    # handle on the far side (left): the mug's body is in the fingers' lane before it
    far = resting_snapshot(asset, np.zeros(3), _yaw_turning_handle_to(asset, "left"))
    assert push_contact(far, "handle", d) is None
    # the body can be pushed either way
    assert push_contact(far, "body", d) is not None
