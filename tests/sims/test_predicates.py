"""Goal predicates on hand-constructed snapshots (no simulator needed)."""

import numpy as np
import pytest

from sims.core.types import ContactForce
from sims.objects import make_instance
from sims.partmanip import predicates as P
from sims.partmanip.chain import ChainTracker
from sims.partmanip.tasks import make_task

MUG = make_instance("mug", 0)


def snap(contacts=(), pos=(0.5, 0.0, 0.0), width=0.02, tcp=(0.5, 0.0, 0.3), on_table=True):
    return P.Snapshot(MUG, {"base": (np.array(pos, float), np.array([1.0, 0, 0, 0]))},
                      list(contacts), on_table, np.array(tcp, float), width)


def c(finger, part, force):
    return ContactForce(finger, MUG.name, part, force, (0.0, 0.0, 0.0))


def test_grasping_needs_both_fingers_on_the_part():
    assert P.grasping(snap([c("left", "handle", 8), c("right", "handle", 9)]), "handle")
    assert not P.grasping(snap([c("left", "handle", 30)]), "handle")  # one-sided push
    assert not P.grasping(snap([c("left", "handle", 8), c("right", "body", 9)]), "handle")
    assert not P.grasping(snap([c("left", "handle", 1), c("right", "handle", 1)]), "handle")
    # several contact points of one finger add up
    assert P.grasping(snap([c("left", "body", 3), c("left", "body", 3), c("right", "body", 6)]), "body")


def test_touching_needs_a_closed_gripper():
    assert P.touching(snap([c("left", "body", 2)], width=0.0), "body")
    assert not P.touching(snap([c("left", "body", 2)], width=0.05), "body")
    assert not P.touching(snap([], width=0.0), "body")


def test_touching_counts_a_light_push_but_not_a_graze():
    # eyeglasses slid along the table press back on the fingers with ~0.2 N
    assert P.touching(snap([c("right", "body", 0.2)], width=0.0), "body")
    assert not P.touching(snap([c("right", "body", 0.03)], width=0.0), "body")


def test_at_position_and_released():
    assert P.at_position(snap(pos=(0.5, 0.12, 0.0)), np.array([0.5, 0.12, 0.03]))
    assert not P.at_position(snap(pos=(0.5, 0.0, 0.0)), np.array([0.5, 0.12, 0.0]))
    assert P.released(snap(width=0.08, tcp=(0.5, 0.0, 0.4)))
    assert not P.released(snap(width=0.08, tcp=(0.5, 0.0, 0.05)))  # TCP still at the mug
    assert not P.released(snap(width=0.02, tcp=(0.5, 0.0, 0.4)))  # gripper closed


def test_chain_checks_skills_in_order():
    task = make_task(3, "mug", "handle", "top")
    tracker = ChainTracker(task)
    start = snap()
    tracker.reset(start)
    np.testing.assert_allclose(tracker.skill_goal(), [0.5, 0.0, 0.0])  # grasp: stay put
    lifted = snap([c("left", "handle", 8), c("right", "handle", 8)], pos=(0.5, 0.0, 0.12),
                  on_table=False)
    # Lifted already, but the grasp skill comes first: one skill per update, in order.
    assert tracker.update(lifted) and tracker.index == 1 and tracker.completion == 0.5
    # The move target is measured from where the object was when the move began.
    np.testing.assert_allclose(tracker.move_target(), [0.5, 0.0, 0.24])
    np.testing.assert_allclose(tracker.skill_goal(), [0.5, 0.0, 0.24])
    higher = snap([c("left", "handle", 8), c("right", "handle", 8)], pos=(0.5, 0.0, 0.24))
    assert tracker.update(higher) and tracker.done and tracker.completion == 1.0


def test_move_fails_when_the_grasp_is_lost():
    task = make_task(3, "mug", "body", "left")
    tracker = ChainTracker(task)
    tracker.reset(snap())
    tracker.update(snap([c("left", "body", 8), c("right", "body", 8)]))
    assert tracker.index == 1
    dropped = snap([], pos=(0.5, 0.12, 0.0))  # at the target, but not held
    assert not tracker.update(dropped)
    assert tracker.predicates == {"at_position": True, "grasping": False}


@pytest.mark.parametrize("bad", [99, 0])
def test_unknown_task_class_is_rejected(bad):
    with pytest.raises(ValueError, match="task class"):
        make_task(bad, "mug", "handle")


def test_class_parameters_are_checked():
    with pytest.raises(ValueError, match="takes 1 move directions"):
        make_task(3, "mug", "handle")
    with pytest.raises(ValueError, match="needs R"):
        make_task(8, "mug", "body", facing="front")
    with pytest.raises(ValueError, match="facing must be"):
        make_task(8, "mug", "body", rotate_part="handle", facing="top")


def test_facing_turns_with_the_object():
    from sims.core.rotations import mat_to_quat, rot_z

    def turned(yaw):  # the mug's handle is along its +x axis
        return P.Snapshot(MUG, {"base": (np.array([0.5, 0.0, 0.0]), mat_to_quat(rot_z(yaw)))},
                          [], True, np.zeros(3), 0.08)

    assert P.facing(turned(0.0), "handle", "back")  # +x
    assert not P.facing(turned(0.0), "handle", "left")
    assert P.facing(turned(np.pi / 2), "handle", "left")  # +y
    assert P.facing(turned(np.pi / 2 + 0.4), "handle", "left")  # within 0.5 rad
    assert not P.facing(turned(np.pi / 2 + 0.7), "handle", "left")
    assert P.facing(turned(np.pi), "handle", "front")


def test_yaw_to_face_turns_a_part_to_face_each_direction():
    from sims.core.rotations import mat_to_quat, rot_z

    def turned(yaw):
        return P.Snapshot(MUG, {"base": (np.array([0.5, 0.0, 0.0]), mat_to_quat(rot_z(yaw)))},
                          [], True, np.zeros(3), 0.08)

    from sims.core.directions import DIRECTIONS

    for start in (0.0, 2.0, -2.5):
        for direction in ("front", "back", "left", "right"):
            yaw = P.yaw_to_face(turned(start), "handle", direction)
            assert abs(yaw) <= np.pi + 1e-9  # the short way round
            after = turned(start + yaw)
            assert P.facing(after, "handle", direction), (start, direction)
            v = (after.part_points("handle").mean(axis=0) - after.object_points().mean(axis=0))[:2]
            assert v @ DIRECTIONS[direction][:2] / np.linalg.norm(v) > 0.999, (start, direction)
    assert P.yaw_to_face(turned(0.0), "handle", "back") == pytest.approx(0.0, abs=0.05)
    assert P.yaw_to_face(turned(0.0), "handle", "left") == pytest.approx(np.pi / 2, abs=0.05)


def test_spatial_parts_follow_the_pose():
    s = snap(pos=(0.5, 0.0, 0.0))
    left, right = s.part_points("left"), s.part_points("right")
    assert left[:, 1].min() > right[:, 1].max()
    assert len(s.part_normals("top")) == len(s.part_points("top"))
    # a finger contact on the mug's +y side touches its left part, not its right
    y_side = (0.5, float(s.object_points()[:, 1].max()), 0.05)
    contact = ContactForce("left", MUG.name, "body", 2.0, y_side)
    assert P.touching(snap([contact], width=0.0), "left")
    assert not P.touching(snap([contact], width=0.0), "right")


def test_rotate_needs_facing_while_grasping():
    from sims.partmanip.tasks import SkillCall, TaskSpec

    chain = (SkillCall("grasp", {"part": "body"}),
             SkillCall("rotate", {"part": "handle", "direction": "back"}))
    task = TaskSpec("t", 8, "mug", 0, 0, chain, "", ("", ""))
    tracker = ChainTracker(task)
    held = [c("left", "body", 8), c("right", "body", 8)]
    tracker.reset(snap())
    assert tracker.update(snap(held))  # grasped
    assert tracker.predicates == {"grasping": True}
    tracker.update(snap(held))  # handle already along +x: facing back
    assert tracker.done
    tracker = ChainTracker(task)
    tracker.reset(snap())
    tracker.update(snap(held))
    assert not tracker.update(snap())  # facing, but dropped
    assert tracker.predicates == {"facing": True, "grasping": False}
