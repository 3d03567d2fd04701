"""The task catalog: size, determinism, and splits that never leak into train."""

import pytest

from sims.objects.library import split_manifest
from sims.partmanip.catalog import SPLITS, TEST4_CLASSES, build_catalog, category_parts, task_spec


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(seed=0, train_episodes=2000)


def test_catalog_covers_sixteen_classes_and_1302_tasks(catalog):
    assert catalog["classes"] == list(range(1, 17)) and catalog["n_tasks"] >= 1302
    assert {t["task_class"] for t in catalog["tasks"]} == set(range(1, 17))
    assert len({t["task_id"] for t in catalog["tasks"]}) == catalog["n_tasks"]
    assert catalog["splits"]["train"]["episodes"] == 2000
    for split in SPLITS:
        assert catalog["splits"][split]["episodes"] > 0, split


def test_catalog_is_a_pure_function_of_its_seed(catalog):
    again = build_catalog(seed=0, train_episodes=2000)
    assert again == catalog
    other = build_catalog(seed=1, train_episodes=2000)
    assert other["tasks"] != catalog["tasks"]


def test_splits_do_not_leak_into_train(catalog):
    manifest = split_manifest()["categories"]
    tasks = {t["task_id"]: t for t in catalog["tasks"]}
    train = [t for t in catalog["tasks"] if t["split"] == "train"]
    assert not {t["category"] for t in train} & {c for c, e in manifest.items() if e["split"] == "unseen"}
    assert not {t["task_class"] for t in train} & set(TEST4_CLASSES)
    train_pairs = {(t["task_class"], t["category"], t["params"]["part"]) for t in train}
    for t in catalog["tasks"]:
        if t["split"] == "test3":
            assert (t["task_class"], t["category"], t["params"]["part"]) not in train_pairs
    for split, episodes in catalog["episodes"].items():
        for e in episodes:
            task = tasks[e["task_id"]]
            entry = manifest[task["category"]]
            if split in ("train", "val", "test1", "test3", "test4"):
                assert e["instance_id"] in entry["train_instances"], (split, e)
            else:
                assert e["instance_id"] in entry["held_out_instances"], (split, e)
            want = {"train": "train", "val": "train", "test1": "train", "test2": "train"}.get(split, split)
            assert task["split"] == want
    seeds = [e["init_seed"] for eps in catalog["episodes"].values() for e in eps]
    assert len(seeds) == len(set(seeds))  # every episode starts from its own state


def test_every_episode_is_a_valid_task_on_an_instance_with_its_parts(catalog):
    for split, episodes in catalog["episodes"].items():
        for e in episodes[:300]:
            spec = task_spec(catalog, e, split)
            have = category_parts(spec.category).instances_with
            for call in spec.chain:
                part = call.params.get("part")
                if part in have:
                    assert spec.instance_id in have[part], (spec.task_id, spec.instance_id)
            assert spec.horizon == (400 if spec.task_class in TEST4_CLASSES else 250)


def test_pushes_move_away_from_the_touched_side(catalog):
    opposite = {"left": "right", "right": "left", "front": "back", "back": "front"}
    for t in catalog["tasks"]:
        if t["task_class"] in (4, 6) and t["params"]["part"] in opposite:
            assert t["params"]["directions"] == [opposite[t["params"]["part"]]]
        if t["task_class"] in (3, 7, 9):
            assert t["params"]["directions"][0] != "bottom"
