"""The `pose` augmenter end to end on a real collected store: the CLI writes a new store of
sim-verified demos with provenance, and a kept demo succeeds again from its initial state."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from robopolicy.augment.pose_aug import Placement, PoseAugmenter
from robopolicy.data.store import EpisodeStore
from robopolicy.viewer.replay import replay_steps
from robopolicy.viewer.sources import from_store, store_reset_options


def _cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", "augment", *args,
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def augmented(box_mug_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("augmented") / "aug.zarr"
    r = _cli("augment=pose", f"path={box_mug_store}", f"out={out}", "copies=2",
             "episodes=2", tmp_path=out.parent)
    assert r.returncode == 0, r.stderr
    assert "yield" in r.stdout
    return out


def test_augmented_store_holds_verified_demos_with_provenance(augmented, box_mug_store):
    store = EpisodeStore.open(augmented)
    source = EpisodeStore.open(box_mug_store)
    assert store.n_episodes >= 1
    assert store.attrs["image_source"] == "simulator"
    assert store.keys == source.keys and store.env_config == source.env_config
    data = store.load()  # every key decodes, no NaN
    assert len(data["action"]) == store.n_steps
    report = json.loads((augmented / "augment_report.json").read_text())
    assert report["generated"] == 4 and report["kept"] == store.n_episodes
    env_cfg = source.env_config["env"]
    for i, meta in enumerate(store.episodes()):
        assert meta["source"] == "augment:pose" and meta["success"]
        prov = json.loads(meta["provenance"])
        assert prov["store"] == str(box_mug_store) and prov["augmenters"] == ["pose"]
        src = source.episode_meta(prov["episode"])
        assert prov["episode"] in (0, 1) and meta["task_id"] == src["task_id"]
        p = prov["stages"][0]["params"]
        x_lo, x_hi = env_cfg.get("x_range", (0.45, 0.60))
        assert x_lo <= p["x"] <= x_hi
        # the object starts where the provenance says
        pose0 = store.get_episode(i, ["object_pose"])["object_pose"][0]
        np.testing.assert_allclose(pose0[:2], [p["x"], p["y"]], atol=2e-3)


def test_a_kept_demo_succeeds_again_from_its_recorded_initial_state(augmented):
    from sims.partmanip.factory import make_env

    store = EpisodeStore.open(augmented)
    episode = from_store(store, 0)
    env = make_env({**episode.env_config, "obs_keys": ["object_pose"]}, store.env_config["tasks"])
    try:
        obs, info = env.reset(options=store_reset_options(store, 0))
        recorded = store.get_episode(0, ["object_pose"])["object_pose"]
        np.testing.assert_allclose(obs["object_pose"], recorded[0], atol=1e-6)
        for action in episode.actions:
            obs, _, done, _, info = env.step(action)
        assert done and info["success"]
    finally:
        env.close()


def test_the_viewer_replays_an_augmented_episode_from_its_placement(augmented):
    store = EpisodeStore.open(augmented)
    episode = from_store(store, 0)
    assert episode.reset_options["placement"]
    recorded = store.get_episode(0, ["object_pose"])["object_pose"]
    for t, _, obs, info in replay_steps(episode, ["object_pose"]):
        if t < len(recorded):
            np.testing.assert_allclose(obs["object_pose"], recorded[t], atol=1e-5)
        final = info
    assert final["success"]


def test_a_demo_that_fails_is_not_kept(box_mug_store):
    """An object placed beyond the arm's reach: the plan is refused (or its replay fails)."""
    from sims.partmanip.factory import make_env
    from sims.partmanip.tasks import TaskSpec

    source = EpisodeStore.open(box_mug_store)
    env = make_env({**source.env_config["env"], "obs_keys": list(source.shape_meta["obs"])},
                   source.env_config["tasks"])
    try:
        task = TaskSpec.from_dict(from_store(source, 2).task)
        var = PoseAugmenter().variant(env, task, source.get_episode(2), source.episode_meta(2),
                                      Placement(1.05, 0.6, 0.0))
    finally:
        env.close()
    assert not var.success and var.data is None and var.reason


def test_cli_errors_are_one_line(box_mug_store, tmp_path):
    r = _cli(f"path={tmp_path / 'missing.zarr'}", f"out={tmp_path / 'o.zarr'}", tmp_path=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and r.stderr.count("\n") == 1
    r = _cli("augment=[pose,nope]", f"path={box_mug_store}", f"out={tmp_path / 'o.zarr'}",
             tmp_path=tmp_path)
    assert r.returncode == 2 and "unknown augmenter 'nope'" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def rotate_two_phase_store(tmp_path_factory):
    """2 catalog train episodes: class 11 (grasp, lift, rotate, put down, release) and class 16
    (two phases: grasp, move, release / grasp, move, release)."""
    root = tmp_path_factory.mktemp("pose_phases")
    out = root / "demos.zarr"
    r = subprocess.run(
        [sys.executable, "-m", "robopolicy.cli", "collect", "suite=partmanip",
         "suite.tasks.source=catalog", "suite.tasks.classes=[11,16]", "suite.tasks.stratify=class",
         "suite.tasks.train_episodes=2000", "suite.env.obs_keys=[proprio,state]", "episodes=2",
         "workers=1", f"out={out}", f"hydra.run.dir={root / 'run'}"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_a_rotate_and_a_second_phase_are_carried_to_a_turned_object(rotate_two_phase_store):
    """The object moved and turned: the rotate still ends facing the source's world
    direction, and the second phase is planned from where the first left the object."""
    from robopolicy.augment.pose_aug import resting_yaw
    from sims.partmanip.factory import make_env
    from sims.partmanip.tasks import TaskSpec

    source = EpisodeStore.open(rotate_two_phase_store)
    env = make_env({**source.env_config["env"], "obs_keys": list(source.shape_meta["obs"])},
                   source.env_config["tasks"])
    try:
        for i, task_class in enumerate((11, 16)):
            meta = source.episode_meta(i)
            assert meta["task_class"] == task_class
            data = source.get_episode(i)
            x, y = data["object_pose"][0, :2]
            # halfway to the middle of the placement ranges, turned 25 deg
            placement = Placement(float(x + 0.525) / 2, float(y) / 2,
                                  resting_yaw(data["object_pose"][0]) + np.radians(25))
            task = TaskSpec.from_dict(from_store(source, i).task)
            var = PoseAugmenter().variant(env, task, data, meta, placement)
            assert var.success, var.reason
            assert len(var.meta["params"]["attach"]) == len(task.phases)
            assert json.loads(var.meta["skill_starts"]) == sorted(json.loads(var.meta["skill_starts"]))
    finally:
        env.close()
