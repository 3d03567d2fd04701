"""The `swap` augmenter end to end on a real collected store: the CLI writes sim-verified demos on
other train-split instances of the source's category, with provenance; a demo that fails is
dropped; a held-out category gives no variants; unknown params are a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from robopolicy.augment.swap_aug import SwapAugmenter, train_instances
from robopolicy.data.store import EpisodeStore
from robopolicy.viewer.sources import from_store, store_reset_options
from sims.objects.library import split_manifest

MUG_GRASP = 2  # the fixture's episode 2: mug instance 0, class 1 (grasp)


def _cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", "augment", *args,
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          timeout=300)


def _env(source: EpisodeStore):
    from sims.partmanip.factory import make_env

    return make_env({**source.env_config["env"], "obs_keys": list(source.shape_meta["obs"])},
                    source.env_config["tasks"])


def _task(source: EpisodeStore, episode: int):
    from sims.partmanip.tasks import TaskSpec

    return TaskSpec.from_dict(from_store(source, episode).task)


@pytest.fixture(scope="module")
def swapped(box_mug_store, tmp_path_factory):
    """Episodes 0-2 of the fixture (box class 3, box class 1, mug class 1), 2 variants each."""
    out = tmp_path_factory.mktemp("swapped") / "swap.zarr"
    r = _cli("augment=swap", f"path={box_mug_store}", f"out={out}", "copies=2",
             "episodes=3", tmp_path=out.parent)
    assert r.returncode == 0, r.stderr
    assert "yield" in r.stdout
    return out


def test_swapped_store_holds_verified_demos_on_other_train_instances(swapped, box_mug_store):
    store = EpisodeStore.open(swapped)
    source = EpisodeStore.open(box_mug_store)
    assert store.attrs["image_source"] == "simulator"
    assert store.keys == source.keys and store.env_config == source.env_config
    report = json.loads((swapped / "augment_report.json").read_text())
    # box is a held-out category (test5): no instance to draw, so only the mug's 2 variants
    assert report["generated"] == 6 and report["kept"] == store.n_episodes >= 1
    assert {v["episode"] for v in report["variants"] if v["kept"]} == {MUG_GRASP}
    assert all("nothing to draw" in v["reason"] for v in report["variants"] if v["episode"] != MUG_GRASP)
    train = split_manifest()["categories"]["mug"]["train_instances"]
    seen = set()
    for i, meta in enumerate(store.episodes()):
        prov = json.loads(meta["provenance"])
        src = source.episode_meta(prov["episode"])
        assert prov["augmenters"] == ["swap"] and [st["augmenter"] for st in prov["stages"]] == ["swap"]
        p = prov["stages"][0]["params"]
        assert meta["source"] == "augment:swap" and meta["success"]
        assert prov["episode"] == MUG_GRASP
        assert p["source_instance"] == src["instance_id"] == 0
        assert meta["instance_id"] == p["instance_id"] != src["instance_id"]
        assert p["instance_id"] in train and meta["task_id"] == src["task_id"]
        seen.add(p["instance_id"])
        # the object starts at the source's placement
        pose0 = store.get_episode(i, ["object_pose"])["object_pose"][0]
        src0 = source.get_episode(prov["episode"], ["object_pose"])["object_pose"][0]
        np.testing.assert_allclose(pose0[:2], src0[:2], atol=2e-3)
    assert len(seen) == store.n_episodes  # distinct instances per source episode


def test_a_kept_demo_succeeds_again_on_its_instance(swapped):
    from sims.partmanip.factory import make_env

    store = EpisodeStore.open(swapped)
    episode = from_store(store, 0)
    assert episode.task["instance_id"] == store.episode_meta(0)["instance_id"]
    env = make_env({**episode.env_config, "obs_keys": ["object_pose"]}, store.env_config["tasks"])
    try:
        obs, info = env.reset(options=store_reset_options(store, 0))
        assert env.task.instance_id == store.episode_meta(0)["instance_id"]
        recorded = store.get_episode(0, ["object_pose"])["object_pose"]
        np.testing.assert_allclose(obs["object_pose"], recorded[0], atol=1e-6)
        for action in episode.actions:
            obs, _, done, _, info = env.step(action)
        assert done and info["success"]
    finally:
        env.close()


def test_candidates_are_other_train_instances_only(box_mug_store):
    source = EpisodeStore.open(box_mug_store)
    mug, box = _task(source, MUG_GRASP), _task(source, 1)
    aug = SwapAugmenter()
    drawn = aug.candidates(mug, np.random.default_rng(0), 100)
    held = split_manifest()["categories"]["mug"]["held_out_instances"]
    assert drawn and mug.instance_id not in drawn and not set(drawn) & set(held)
    assert set(drawn) <= set(train_instances("mug")) and len(set(drawn)) == len(drawn)
    assert box.category == "box" and aug.candidates(box, np.random.default_rng(0), 5) == []


def test_a_swap_that_fails_is_dropped(box_mug_store):
    """An IK tolerance no solver meets: every plan is refused, nothing is kept."""
    source = EpisodeStore.open(box_mug_store)
    env = _env(source)
    try:
        aug = SwapAugmenter({"ik_tol_m": 1e-9})
        task = _task(source, MUG_GRASP)
        var = aug.variant(env, task, source.get_episode(MUG_GRASP),
                          source.episode_meta(MUG_GRASP), train_instances("mug")[1])
    finally:
        env.close()
    assert not var.success and var.data is None and "IK misses" in var.reason


def test_unknown_param_is_a_one_line_error(box_mug_store, tmp_path):
    r = _cli("augment=swap", f"path={box_mug_store}", f"out={tmp_path / 'o.zarr'}",
             "+augment.swap.params.nope=1", tmp_path=tmp_path)
    assert r.returncode == 2 and "nope" in r.stderr and r.stderr.count("\n") == 1


def test_a_bad_align_is_a_one_line_error(box_mug_store, tmp_path):
    r = _cli("augment=swap", f"path={box_mug_store}", f"out={tmp_path / 'o.zarr'}",
             "augment.swap.params.align=sideways", tmp_path=tmp_path)
    assert r.returncode == 2 and "align" in r.stderr and r.stderr.count("\n") == 1
