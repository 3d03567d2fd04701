"""The scripted expert's success rate on seeded episodes (the demo source must be reliable)."""

import numpy as np
import pytest

from sims.partmanip.expert import ExpertParams, ScriptedExpert, SkillContext
from sims.partmanip.tasks import make_task


def _success(env, task) -> bool:
    expert = ScriptedExpert()
    env.reset(options={"task": task})
    expert.reset(env)
    for _ in range(task.horizon):
        *_, terminated, truncated, info = env.step(expert.act(env))
        if terminated or truncated:
            return info["success"]
    return False


@pytest.mark.slow
@pytest.mark.parametrize("task_class,part,direction", [
    (1, "handle", None), (1, "body", None), (3, "handle", "top"), (3, "body", "left")])
def test_expert_succeeds_on_20_seeds(mug_env, task_class, part, direction):
    wins = sum(_success(mug_env, make_task(task_class, "mug", part, direction,
                                           instance_id=seed % 6, init_seed=1000 + seed))
               for seed in range(20))
    assert wins >= 18, f"expert succeeded on {wins}/20"


def test_expert_grasps_a_handle(mug_env):
    assert _success(mug_env, make_task(1, "mug", "handle", instance_id=3, init_seed=77))


@pytest.mark.parametrize("category", ["mug", "kettle", "laptop"])
def test_expert_touches_a_part_from_above(mug_env, category):
    part = "body" if category != "laptop" else "keyboard"
    assert _success(mug_env, make_task(2, category, part, instance_id=1, init_seed=1))


def test_expert_pushes_from_a_side_and_lets_go(mug_env):
    # touch the bottle's right side, push it 12 cm left, release and back away
    task = make_task(6, "bottle", "right", directions=("left",), instance_id=1, init_seed=1)
    assert [c.skill for c in task.chain] == ["touch", "move", "release"]
    assert _success(mug_env, task)


@pytest.mark.parametrize("facing", ["left", "front"])
def test_expert_turns_a_mug_so_its_handle_faces_a_direction(mug_env, facing):
    task = make_task(8, "mug", "body", rotate_part="handle", facing=facing, instance_id=2,
                     init_seed=11)
    assert [c.skill for c in task.chain] == ["grasp", "move", "rotate"]
    assert _success(mug_env, task)


# One task per class on the mug (the class's chain with sensible parameters): the expert
# must solve each. A regression check on episodes it solves today; suite-wide rates come
# from `dataset info`.
MUG_CLASS_TASKS = [
    (1, dict(part="handle")), (2, dict(part="body")), (3, dict(part="handle", directions=("top",))),
    (4, dict(part="right", directions=("left",))), (5, dict(part="body", directions=("left",))),
    (6, dict(part="front", directions=("back",))), (7, dict(part="handle", directions=("top", "left"))),
    (8, dict(part="body", rotate_part="handle", facing="right")),
    (9, dict(part="body", directions=("top", "right", "back"))),
    (10, dict(part="body", directions=("top", "left"), rotate_part="handle", facing="front")),
    (11, dict(part="body", rotate_part="handle", facing="left")),
    (12, dict(part="body", directions=("left",), part2="handle")),
    (13, dict(part="back", directions=("front", "right"), part2="left")),
    (14, dict(part="body", directions=("right",), rotate_part="handle", facing="back", part2="left")),
    (15, dict(part="body", directions=("back",), rotate_part="handle", facing="left", part2="body")),
    (16, dict(part="body", directions=("left", "back"), part2="body")),
]


@pytest.mark.slow
@pytest.mark.parametrize("task_class,params", MUG_CLASS_TASKS, ids=[str(c) for c, _ in MUG_CLASS_TASKS])
def test_expert_solves_every_class_on_a_mug(mug_env, task_class, params):
    task = make_task(task_class, "mug", instance_id=1, horizon=400,
                     **{"init_seed": 100 + task_class, **params})
    assert _success(mug_env, task), task.task_id


# Episodes of the train split that the expert failed (issue 4, item 5) and now solves, one per
# fix; each names the catalog episode it comes from (instance and initial state as there).
def test_expert_grasps_a_low_ring_below_its_widest_point(mug_env):
    # train episode 658: the fingertips stopped 12 mm above the table, above the middle of a
    # 2 cm scissors ring, so the squeeze popped the ring out on every try
    task = make_task(3, "scissors", "handle", "top", instance_id=28, init_seed=1000658)
    assert _success(mug_env, task)


@pytest.mark.slow
def test_expert_picks_up_again_what_it_dropped_while_turning(mug_env):
    # train episode 3116: the mug slips out while turning; the expert used to turn an empty
    # hand, now it grasps the mug again (the next-best grasp), lifts it back and turns it
    task = make_task(11, "mug", "body", rotate_part="handle", facing="right", instance_id=26,
                     init_seed=1003116)
    assert _success(mug_env, task)


@pytest.mark.slow
def test_expert_turn_before_a_move_down_ends_high_enough(mug_env):
    # train episode 223: the move down after a turn starts where the turn ends; a turn ending
    # lower than DOWN_MARGIN above what the move needs (measured: DOWN_MARGIN = -1 fails this
    # episode) aims the move under the table. (Train episode 124, a display turned 9 cm up,
    # showed it first; it is chaotic now: 0.1 mm of difference in the scene flips it.)
    task = make_task(11, "stapler", "body", rotate_part="lid", facing="front", instance_id=5,
                     init_seed=1000223)
    assert _success(mug_env, task)


@pytest.mark.slow
def test_expert_grasps_after_pushing_an_object_back(mug_env):
    # train episode 8613: pushing back turned the hand half a turn, the IK flipped the wrist
    # (joints 5 and 6 near their limits) and the grasp of phase 2 could not reach the handle
    task = make_task(12, "mug", "front", directions=("back",), part2="handle", instance_id=0,
                     init_seed=1008613)
    assert _success(mug_env, task)


def test_a_push_aims_low_on_a_part_whose_side_is_slanted_to_it():
    # train episode 946: a yawed stapler's lid, pushed right. Counting the lid's own points as
    # obstacles left only its top edge (5.7 cm up a 5.5 cm stapler: the push tipped it over);
    # the lid's own points block the fingers only beyond OWN_SLACK now, and the contact is low
    # on the lid's side
    from sims.core.directions import DIRECTIONS
    from sims.objects import make_instance
    from sims.partmanip.env import EnvConfig, initial_pose
    from sims.partmanip.expert.geometry import push_point
    from sims.partmanip.push import PUSH_HEIGHT, push_contact, resting_snapshot

    pos, yaw = initial_pose(1000946, EnvConfig())
    snap = resting_snapshot(make_instance("stapler", 1), pos, yaw)
    d = DIRECTIONS["right"]
    strict, relaxed = push_contact(snap, "lid", d), push_point(snap, "lid", d)
    assert strict[2] > 0.05
    assert abs(relaxed[2] - PUSH_HEIGHT) < 0.01
    lid = snap.part_points("lid")
    assert np.min(np.linalg.norm(lid - relaxed, axis=1)) < 1e-9  # a point of the lid


def test_a_push_on_a_hollow_part_meets_its_outside():
    # a pot's body pushed towards the robot: its inner wall (nearest the robot, facing away
    # from it) also faces the fingers, but they meet the far outer wall first; aiming at the
    # inner wall brought the hand down onto the rim
    from sims.core.directions import DIRECTIONS
    from sims.objects import make_instance
    from sims.partmanip.expert.geometry import push_point
    from sims.partmanip.push import resting_snapshot

    snap = resting_snapshot(make_instance("kitchen_pot", 2), np.array([0.55, 0.0, 0.0]), 0.3)
    d = DIRECTIONS["front"]
    p = push_point(snap, "body", d)
    outermost = float(np.max(snap.part_points("body") @ -d))
    assert p @ -d > outermost - 0.03


def test_a_push_keeps_the_hand_clear_of_an_overhanging_rim():
    # test1 episode 89: a kitchen pot whose rim flares 5 cm out over its wall, pushed away from
    # the robot. The fingers' lane is free low on the wall, but the hand above them (21 cm
    # across) ran into the rim, pushed the pot with no finger on it and never touched it
    from sims.core.directions import DIRECTIONS
    from sims.objects import make_instance
    from sims.partmanip.env import EnvConfig, initial_pose
    from sims.partmanip.expert.geometry import push_point, push_tilt
    from sims.partmanip.push import hits_hand, push_contact, resting_snapshot

    pos, yaw = initial_pose(3000089, EnvConfig())
    snap = resting_snapshot(make_instance("kitchen_pot", 12), pos, yaw)
    d, cloud = DIRECTIONS["back"], snap.object_points()
    tilt = push_tilt(cloud.mean(axis=0), d)

    def hand_hits(p):
        tip = np.array([max(p[2], 0.015) - 0.005])
        return int(hits_hand(cloud, p[None], d, np.cross([0.0, 0.0, 1.0], d), tip, tilt).sum())

    assert hand_hits(push_contact(snap, "body", d)) > 0
    assert hand_hits(push_point(snap, "body", d)) == 0


def test_a_top_touch_blocked_by_a_lid_touches_the_body_from_a_side(mug_env):
    # test5 episode 1: the top of a box's body is its rim, under the lid's overhang; coming
    # down on it, the fingers rested on the lid and never touched the body
    assert _success(mug_env, make_task(2, "box", "body", instance_id=19, init_seed=7000001))


@pytest.mark.slow
def test_a_push_that_arrived_touches_its_spatial_part_again(mug_env):
    # test5 episode 43: a knife's second push (touching its "left") brought it to its target,
    # but the knife turned on the way and "left", a spatial part, was no longer where the
    # fingers were; every replan pushed again. Now the fingers touch the part again from
    # above where it lies (this episode fails without that)
    task = make_task(13, "knife", "handle", directions=("right", "right"), part2="left",
                     instance_id=12, init_seed=7000043)
    assert _success(mug_env, task)


def test_a_far_push_towards_the_robot_leans_less_to_keep_the_wrist_in_reach():
    from sims.core.directions import DIRECTIONS
    from sims.partmanip.expert.geometry import push_tilt

    p = ExpertParams()
    near = push_tilt(np.array([0.5, 0.0, 0.03]), DIRECTIONS["left"])
    assert near == pytest.approx(p.push_tilt)
    d = DIRECTIONS["front"]
    tcp = np.array([0.72, 0.1, 0.03])
    tilt = push_tilt(tcp, d)
    assert tilt < p.push_tilt
    wrist = tcp[:2] - d[:2] * (0.05 + p.wrist_behind_tcp * np.sin(tilt))
    assert np.linalg.norm(wrist) <= p.wrist_reach


# Episodes the expert used to fail (test1 episodes 33 and 86 of the catalog at seed 0): the
# hand came down onto a display's screen to touch the base under it; a far push towards the
# robot with the wrist trailing out of reach.
@pytest.mark.parametrize("task", [
    dict(task_class=2, category="display", part="base", instance_id=29, init_seed=3000033),
    dict(task_class=6, category="kitchen_pot", part="lid", directions=("front",), instance_id=16,
         init_seed=3000086),
], ids=["touch-under-a-screen", "far-push"])
def test_expert_solves_episodes_it_used_to_fail(mug_env, task):
    task = make_task(**task)
    assert _success(mug_env, task)


def test_after_a_push_the_fingers_back_away_before_they_open(mug_env):
    # fingers opening against a tall, light object knock it over (a bottle, then no grasp on
    # its lid): the release retreats with them closed first, from where the push ended
    from sims.core.directions import DIRECTIONS

    task = make_task(6, "bottle", "body", directions=("left",), instance_id=20, init_seed=3000008)
    d = DIRECTIONS["left"]
    expert = ScriptedExpert()
    mug_env.reset(options={"task": task})
    expert.reset(mug_env)
    furthest = -np.inf  # the commanded TCP's furthest reach along the push
    for _ in range(task.horizon):
        action = expert.act(mug_env)
        if action[9] > 0.5 and mug_env.tracker.index == 2:  # the first command to open
            assert furthest - float(action[:3] @ d) >= ExpertParams().retreat - 0.01
            break
        furthest = max(furthest, float(action[:3] @ d))
        mug_env.step(action)
    else:
        pytest.fail("the expert never opened the fingers")


def _run_counting_reaims(env, task) -> tuple[bool, int]:
    expert, reaims, info = ScriptedExpert(), 0, {"success": False}
    env.reset(options={"task": task})
    expert.reset(env)
    for _ in range(task.horizon):
        *_, terminated, truncated, info = env.step(expert.act(env))
        reaims = expert.counts.get("reaims", 0)
        if terminated or truncated:
            break
    return info["success"], reaims


# Test-split episodes (test4 33, test3 78) the expert used to fail: its fingers met the
# eyeglasses' leg beside the frame they were to push; the hand, not the fingers, pushed the
# kettle. Both times it pushed on until it gave up; now it backs off and pushes again
# elsewhere.
@pytest.mark.slow
@pytest.mark.parametrize("task", [
    dict(task_class=15, category="eyeglasses", part="frame", directions=("right",), rotate_part="leg",
         facing="front", part2="frame", instance_id=23, init_seed=6000033, horizon=400),
    dict(task_class=13, category="kettle", part="front", directions=("back", "back"), part2="body",
         instance_id=26, init_seed=5000078),
], ids=["fingers-meet-another-part", "hand-pushes"])
def test_a_push_that_meets_the_wrong_part_is_aimed_again(mug_env, task):
    success, reaims = _run_counting_reaims(mug_env, make_task(**task))
    assert reaims >= 1
    assert success


@pytest.mark.slow
def test_a_far_push_back_followed_by_another_push_keeps_the_wrist_as_at_home(mug_env):
    # test5 episode 39: a push half a turn from home's wrist pose leaves the arm wound up, and
    # the second push (to the right, 70 cm out) could not be reached from there
    task = make_task(13, "knife", "front", directions=("back", "right"), part2="handle",
                     instance_id=2, init_seed=7000039)
    assert _success(mug_env, task)


BOTTLE_PUSH = dict(task_class=6, category="bottle", part="right", directions=("left",), instance_id=1,
                   init_seed=1)


def _touched(env, task, follow_chain: bool = True) -> ScriptedExpert:
    """The expert, run on `task` until its first skill (a touch before a push) is done: as
    the env's tracker judges it when following the chain, else as the expert does (its
    waypoints ended too)."""
    expert = ScriptedExpert()
    env.reset(options={"task": task})
    expert.reset(env, follow_chain=follow_chain)
    if not follow_chain:
        expert.start_skill(task.chain[0], SkillContext(after=task.chain[1:]))
    for _ in range(100):
        env.step(expert.act(env))
        if (expert.skill_done(env) and not expert.moving) if not follow_chain else env.tracker.index > 0:
            return expert
    pytest.fail("the touch never ended")


@pytest.mark.parametrize("seconds_left,speed", [(None, 0.06), (1.5, None), (0.5, 0.12)],
                         ids=["time-enough", "late", "too-late"])
def test_a_last_push_running_late_goes_faster_to_end_by_the_deadline(mug_env, seconds_left, speed):
    # the bottle touched, the push is the plan's last move: it goes at push_speed if that
    # ends by the deadline (with the release after it), else as fast as it must, up to
    # late_push_speed
    p = ExpertParams()
    task = make_task(**BOTTLE_PUSH)
    expert = _touched(mug_env, task, follow_chain=False)
    touch, move, release = task.chain
    deadline = None
    if seconds_left is not None:  # steps after the one planned now: release + seconds_left
        deadline = mug_env.elapsed_steps + 1 + p.release_steps + round(seconds_left * 20)
    ctx = SkillContext.starting(move, mug_env.snapshot(), before=(touch,), after=(release,), deadline=deadline)
    expert.start_skill(move, ctx)
    before = mug_env.commanded_target[:3].copy()
    step = float(np.linalg.norm(expert.act(mug_env)[:3] - before))  # one step of the push
    along = 0.12 + p.push_overshoot
    expected = along / seconds_left if speed is None else speed
    steps = int(np.ceil(along / expected * 20))
    assert step == pytest.approx(along / steps, rel=1e-3)


@pytest.mark.slow
def test_a_late_last_push_ends_within_the_horizon(mug_env):
    # test1 episode 124: a re-aimed push reached its target 12 steps before the horizon, too
    # late for the release after it
    task = make_task(14, "mug", "body", rotate_part="handle", facing="right", part2="right",
                     directions=("left",), instance_id=9, init_seed=3000124)
    assert [c.skill for c in task.chain][5:] == ["touch", "move", "release"]
    assert _success(mug_env, task)


def test_a_push_starts_where_the_hand_comes_down_clear_of_a_handle():
    # test1 episode 87: the lowest, most central contact on a kitchen pot's body, pushed
    # towards the robot, lies under its handle; the hand came down onto the handle, tipped the
    # pot and lost 80 steps. The push now begins where the hand comes down on nothing.
    from sims.core.directions import DIRECTIONS
    from sims.objects import make_instance
    from sims.partmanip.env import EnvConfig, initial_pose
    from sims.partmanip.expert.geometry import descent_clear, push_point
    from sims.partmanip.push import push_contact, resting_snapshot

    pos, yaw = initial_pose(3000087, EnvConfig())
    snap = resting_snapshot(make_instance("kitchen_pot", 27), pos, yaw)
    d, cloud = DIRECTIONS["front"], snap.object_points()
    lateral = np.cross([0.0, 0.0, 1.0], d)
    assert not descent_clear(cloud, push_contact(snap, "body", d)[None], d, lateral)[0]
    assert descent_clear(cloud, push_point(snap, "body", d)[None], d, lateral)[0]


@pytest.mark.slow
def test_a_push_under_a_handle_succeeds(mug_env):
    task = make_task(13, "kitchen_pot", "body", directions=("front", "left"), part2="right",
                     instance_id=27, init_seed=3000087)
    assert _success(mug_env, task)


def test_a_push_that_drifted_off_its_line_is_pushed_back_onto_it(mug_env):
    from sims.partmanip.expert.geometry import push_direction

    # touched: the push (to the left, +y) is the current skill
    _touched(mug_env, make_task(4, "bottle", "right", directions=("left",), instance_id=1, init_seed=1))
    drift = ExpertParams().push_drift
    target = mug_env.tracker.move_target()
    name = mug_env.asset.name
    quat = mug_env.backend.object_pose(name)[1]

    def direction_with_object_at(offset) -> str:
        mug_env.backend.set_object_pose(name, target + np.asarray(offset), quat)
        return push_direction(mug_env.snapshot(), target, "right", "left")

    # short of the target along the push: keep pushing along it, even a little off the line
    assert direction_with_object_at([0.0, -0.08, 0.0]) == "left"
    assert direction_with_object_at([drift / 2, -0.04, 0.0]) == "left"
    # there along the push but off the line (away from the robot: +x): back onto it, frontwards
    assert direction_with_object_at([2 * drift, -0.01, 0.0]) == "front"
    assert direction_with_object_at([-2 * drift, 0.0, 0.0]) == "back"


@pytest.mark.parametrize("closing", [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)])
def test_a_regrasp_closes_the_way_the_hand_is_turned(mug_env, closing):
    # a turn may leave the hand half a turn from home; a re-grasp that closed the way home's
    # hand does would first turn back for two seconds (test2 episode 28 ran out of time so)
    from sims.partmanip.expert.geometry import HOME_CLOSING_AXIS
    from sims.partmanip.expert.skills.base import Core
    from sims.partmanip.expert.skills.grasp import GraspPlanner
    from sims.partmanip.expert.trajectory import Waypoints
    from sims.partmanip.grasp import topdown_rotation

    mug_env.reset(options={"task": make_task(1, "mug", "body", instance_id=0, init_seed=11)})
    hand = topdown_rotation(np.array(closing))
    core = Core(ExpertParams(), Waypoints(mug_env.commanded_target[:3].copy(), hand, 1.0))
    planner = GraspPlanner(core)
    planner.grasp(mug_env, "body", attempt=0)
    assert core.path.end()[1][:, 1] @ HOME_CLOSING_AXIS > 0  # a first grasp: as at home
    core.path.clear()
    planner.grasp(mug_env, "body", attempt=1)
    assert core.path.end()[1][:, 1] @ hand[:, 1] > 0


def test_a_touch_after_a_turn_closes_the_way_joint_7_can_reach():
    from sims.partmanip.expert.geometry import within_wrist
    from sims.partmanip.grasp import topdown_rotation

    def q7_after(q7, hand, mat):  # turning the hand by +yaw about z turns joint 7 by -yaw
        a, b = hand[:2, 1], mat[:2, 1]
        return q7 - np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b)

    # the hand as at home (joint 7 at pi/4): a push to the right (closing along +x) is kept
    home = topdown_rotation(np.array([0.0, -1.0, 0.0]))
    right = topdown_rotation(np.array([1.0, 0.0, 0.0]))
    assert np.allclose(within_wrist(right, home, np.pi / 4, either_way=True), right)
    # a turn wound joint 7 to -1.7: the same push closing that way would need -3.3, past the
    # joint's range; the fingers swapped need about 0
    assert q7_after(-1.7, home, right) < -ExpertParams().wrist_limit
    out = within_wrist(right, home, -1.7, either_way=True)
    assert out[:, 1] @ right[:, 1] < -0.99
    assert abs(q7_after(-1.7, home, out)) < 0.2
    # half a turn away (a push back from home's pose): either way round is a half turn, and
    # the choice is kept whichever way the rounding goes
    back = topdown_rotation(np.array([1e-3, 1.0, 0.0]))
    assert np.allclose(within_wrist(back, home, np.pi / 4, either_way=True), back)
    back = topdown_rotation(np.array([-1e-3, 1.0, 0.0]))
    assert np.allclose(within_wrist(back, home, np.pi / 4, either_way=True), back)


# Train-split episode 221 (class 14): the turn before the push had left joint 7 wound up; the arm
# swung at the joint's limit as the hand turned to touch the mug for the push, and knocked the
# mug away.
@pytest.mark.slow
def test_a_push_after_a_turn_that_wound_the_wrist_up_succeeds(mug_env):
    task = make_task(14, "mug", "body", directions=("left",), rotate_part="handle", facing="back",
                     part2="right", instance_id=18, init_seed=1000221)
    assert _success(mug_env, task)


# A scissors' blade tips lie below the fingertips' lowest push height (TOUCH_MIN_Z): no side of
# its front faces a push back free, so the fingers press on top of it and the move drags it.
def test_a_push_with_no_free_side_presses_on_top_and_drags_the_part(mug_env):
    from sims.core.directions import DIRECTIONS
    from sims.partmanip.expert.geometry import push_point

    task = make_task(6, "scissors", "front", directions=("back",), instance_id=3, init_seed=1)
    mug_env.reset(options={"task": task})
    assert push_point(mug_env.snapshot(), "front", DIRECTIONS["back"]) is None
    expert = ScriptedExpert()
    expert.reset(mug_env)
    commanded, checked = [], False
    for _ in range(task.horizon):
        action = expert.act(mug_env)
        commanded.append(action[:3])
        *_, terminated, truncated, info = mug_env.step(action)
        if info["skill_index"] == 1 and not checked:  # touching: the fingers came straight down
            last = np.array(commanded[-8:])
            assert np.allclose(last[:, :2], last[0, :2])
            assert np.all(np.diff(last[:, 2]) <= 0) and last[-1, 2] < last[0, 2]
            checked = True
        if terminated or truncated:
            break
    assert info["success"]


# Test1 episode 44 of the catalog at seed 0 (class 14): the turn left joint 7 at 2.2 and the push
# right's pose lay 3.0 rad away the short way round, past the joint's limit; the IK swung the arm
# out of reach. The fingers swapped are a tenth of a turn away.
@pytest.mark.slow
def test_a_push_whose_pose_the_wrist_cannot_turn_to_swaps_the_fingers(mug_env):
    task = make_task(14, "display", "frame", directions=("right",), rotate_part="stand",
                     facing="back", part2="left", instance_id=21, init_seed=3000044)
    assert _success(mug_env, task)


# Train episode 569 of the catalog at seed 0 (class 14): lifted by its round pump head, the
# dispenser squeezed out from between pads sunk 3.5-3.9 mm into the head, and fell (see PAD_SOLREF).
@pytest.mark.slow
def test_a_dispenser_lifted_and_turned_by_its_round_pump_head_stays_held(mug_env):
    task = make_task(14, "dispenser", "head", directions=("front",), rotate_part="handle",
                     facing="right", part2="back", instance_id=5, init_seed=1000569)
    assert _success(mug_env, task)
