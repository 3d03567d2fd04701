"""The feasibility table: which units a task uses, the calibration's episodes, and a catalog
that keeps no task using a unit the expert cannot do (calibration on real MuJoCo:
tests/data/test_calibrate.py)."""


import pytest

from sims.partmanip.calibration import CALIBRATION_SEED_BASE, calibration_tasks
from sims.partmanip.catalog import CategoryParts, build_catalog, enumerate_params, unit_roles
from sims.partmanip.classes import TaskParams
from sims.partmanip.feasibility import infeasible_units, load_table


def test_unit_roles_name_what_each_part_does():
    assert unit_roles(2, TaskParams("handle")) == []  # a touch alone moves nothing
    assert unit_roles(6, TaskParams("handle", ("left",))) == [("push", "handle")]
    assert unit_roles(8, TaskParams("body", ("top",), "handle", "left")) == [
        ("grasp", "body"), ("rotate", "body")]
    assert unit_roles(13, TaskParams("left", ("right", "front"), part2="back")) == [
        ("push", "left"), ("push", "back")]
    assert unit_roles(15, TaskParams("left", ("right",), "handle", "front", "body")) == [
        ("push", "left"), ("grasp", "body"), ("rotate", "body")]


def test_infeasible_units_are_left_out_of_the_enumeration():
    parts = CategoryParts(grasp=("body", "handle"), touch=("body", "handle"), rotate=("handle",))
    every = enumerate_params(8, parts)
    kept = enumerate_params(8, parts, frozenset({("rotate", "body")}))
    assert {t.part for t in every} == {"body"}  # the handle is the only part to turn
    assert kept == []
    pushes = enumerate_params(6, parts, frozenset({("push", "handle")}))
    assert pushes and all(t.part != "handle" for t in pushes)
    assert len(pushes) < len(enumerate_params(6, parts))


def test_calibration_episodes_start_outside_every_split():
    jobs = calibration_tasks("mug", "push", "handle", index=3, episodes=4, instances=[0, 1, 2])
    assert len(jobs) == 4
    for j in jobs:
        assert j["task_class"] == 6 and j["params"]["part"] == "handle"
        assert j["init_seed"] >= CALIBRATION_SEED_BASE and j["instance_id"] in (0, 1, 2)
    assert jobs == calibration_tasks("mug", "push", "handle", index=3, episodes=4, instances=[0, 1, 2])


def test_a_broken_table_is_a_one_line_error(tmp_path):
    bad = tmp_path / "feasibility.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="feasibility table .*feasibility.json.*calibrate") as e:
        load_table(bad)
    assert "\n" not in str(e.value)


def test_the_catalog_keeps_no_task_using_an_infeasible_unit():
    dropped = infeasible_units(load_table())
    assert dropped  # the measured table does drop some units (e.g. a bottle pushed by its neck)
    catalog = build_catalog(seed=0, train_episodes=200)
    for t in catalog["tasks"]:
        p = t["params"]
        params = TaskParams(p["part"], tuple(p["directions"]), p["rotate_part"], p["facing"], p["part2"])
        for role, part in unit_roles(t["task_class"], params):
            assert f"{t['category']}/{role}/{part}" not in dropped, t["task_id"]
