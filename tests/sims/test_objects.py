"""Object generation details: the mug generator, the builder's point sampling, posed point
clouds, spatial parts, and the library's split manifest."""

import numpy as np
import pytest

from sims.core.rotations import rot_z
from sims.objects import categories, make_instance
from sims.objects.builder import ObjectBuilder
from sims.objects.kinematics import body_transforms, object_points
from sims.objects.library import UNSEEN_CATEGORIES, split_manifest
from sims.objects.spatial import spatial_part_masks


def test_mug_handle_and_cup_fit_the_gripper():
    for i in range(10):
        a = make_instance("mug", i)
        assert 2 * a.params["handle_radius"] < 0.02  # well inside the 8 cm opening
        assert 2 * a.params["radius"] < 0.08


def test_mug_contents_are_visual_only_and_inside_the_cup():
    with_drink = [make_instance("mug", i) for i in range(37) if make_instance("mug", i).params["contents"]]
    assert 0 < len(with_drink) < 37
    a = with_drink[0]
    drink = [g for g in a.geoms if g.part == "contents"]
    assert drink and not any(g.collide for g in drink)
    pts = a.parts["contents"].points
    assert np.hypot(pts[:, 0], pts[:, 1]).max() < a.params["radius"] - a.params["wall"]


def test_points_buried_in_other_geoms_are_dropped():
    a = make_instance("mug", 3)
    handle = a.parts["handle"].points
    # the handle's end caps reach into the wall; their surface buried there is not kept
    r = np.hypot(handle[:, 0], handle[:, 1])
    assert r.min() > a.params["radius"] - a.params["wall"]
    assert np.mean(r < a.params["radius"]) < 0.05


def test_builder_rejects_parts_outside_the_vocabulary():
    b = ObjectBuilder("mug", 0)
    b.box("lid", (0.01, 0.01, 0.01))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        b.finish()


def test_object_points_follow_joints():
    box = make_instance("box", 0)
    hinge = next(b for b in box.bodies if b.joint is not None)
    closed = body_transforms(box)[hinge.name]
    opened = body_transforms(box, {hinge.joint.name: 1.0})[hinge.name]
    assert not np.allclose(closed, opened)
    pts0, _, idx, names = object_points(box)
    pts1, _, _, _ = object_points(box, {hinge.joint.name: 1.0})
    lid = idx == names.index("lid")
    assert np.abs(pts1[lid] - pts0[lid]).max() > 0.01
    np.testing.assert_allclose(pts1[~lid], pts0[~lid])


def test_spatial_parts_turn_with_the_object():
    pts, _, _, _ = object_points(make_instance("mug", 2))
    masks = spatial_part_masks(pts)
    assert set(masks) == {"left", "right", "front", "back", "top", "bottom", "middle"}
    assert pts[masks["left"], 1].mean() > pts[masks["right"], 1].mean()
    assert pts[masks["top"], 2].min() > pts[masks["bottom"], 2].max()
    # handle along +x: it is in the back third; after half a turn it is in the front third
    handle = pts[:, 0] > pts[:, 0].max() - 0.01
    assert masks["back"][handle].all() and not masks["front"][handle].any()
    turned = spatial_part_masks(pts @ rot_z(np.pi).T)
    assert turned["front"][handle].all()
    np.testing.assert_array_equal(turned["left"], masks["right"])


def test_split_manifest_is_stable_disjoint_and_fair():
    a, b = split_manifest(), split_manifest()
    assert a == b
    assert split_manifest(seed=1) != a
    cats = a["categories"]
    assert sorted(cats) == sorted(categories())
    assert sorted(c for c, e in cats.items() if e["split"] == "unseen") == sorted(UNSEEN_CATEGORIES)
    assert sum(e["split"] == "seen" for e in cats.values()) == 10
    seen_parts = {p for e in cats.values() if e["split"] == "seen" for p in e["parts"]}
    for c, e in cats.items():
        train, held = set(e["train_instances"]), set(e["held_out_instances"])
        assert not train & held and train | held == set(range(e["instances"]))
        if e["split"] == "seen":
            assert len(held) == round(0.2 * e["instances"]), c
        else:
            assert not train and set(e["parts"]) <= seen_parts, c
    with pytest.raises(ValueError, match="no seen category"):
        split_manifest(unseen=("scissors", "bucket", "box", "pliers"))  # screw is only on scissors
