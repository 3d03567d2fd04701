"""`robopolicy augment`'s arguments, augmenters composed in order, and resume (image2d on the
real 1-episode image store: no fit needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robopolicy.augment.compose import build_stages
from robopolicy.augment.run import DONE_FILE, SOURCE_COPY, AugmentConfig, augment
from robopolicy.commands.augment import check_args
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


def test_augment_args_errors_are_one_line():
    assert check_args(["augment=[pose,lighting,camera]", "augment.camera.params.roll_deg=5",
                       "copies=2"]) is None
    assert check_args(["augment=lighting"]) is None
    assert "unknown augmenter 'nope'" in check_args(["augment=[pose,nope]"])
    assert "named twice" in check_args(["augment=[lighting,lighting]"])
    # params of an augmenter that is not named, and the old key names
    assert "'lighting' is not among augment=[pose]" in check_args(
        ["augment.lighting.params.noise_std=0"])
    assert "path=" in check_args(["source=x.zarr"]) and "copies=" in check_args(["per_episode=2"])
    for msg in (check_args(["augment=nope"]), check_args(["in=x"])):
        assert "\n" not in msg


def test_every_augmenter_config_names_its_package():
    """`augment=[a,b]` selects several files of the group: each must land under its own name."""
    from robopolicy.commands.app import config_dir

    for f in sorted((config_dir() / "augment").glob("*.yaml")):
        assert f.read_text().startswith(f"# @package augment.{f.stem}\n"), f.name


def test_stages_must_simulate_then_render_then_edit_images():
    assert [s.kind for s in build_stages(["pose", "appearance", "lighting", "camera", "image2d"],
                                         {})] == ["simulate", "render", "render", "render", "image"]
    with pytest.raises(RobopolicyError, match="pose .simulate. must come before lighting"):
        build_stages(["lighting", "pose"], {})
    with pytest.raises(RobopolicyError, match="camera .render. must come before image2d"):
        build_stages(["image2d", "camera"], {})
    with pytest.raises(RobopolicyError, match="different fits"):
        build_stages(["lighting", "camera"], {"camera": {"fit": {"iterations": 3}}})


def _config(image_store, out, **kw) -> AugmentConfig:
    return AugmentConfig(("image2d",), image_store, out, **kw)


def test_a_rerun_resumes_and_another_command_is_refused(image_store, tmp_path):
    out = tmp_path / "aug.zarr"
    s = augment(_config(image_store, out, copies=2))
    assert (s.generated, s.kept, s.resumed) == (2, 2, 0)
    first = EpisodeStore.open(out).get_episode(1)["rgb.agentview"]
    # the same command again: nothing to do
    s = augment(_config(image_store, out, copies=2))
    assert s.resumed == 2 and EpisodeStore.open(out).n_episodes == 2
    # a copy logged as dropped is done; one logged as kept whose episode is not in the store
    # is done again
    with open(out / DONE_FILE, "a") as f:
        f.write(json.dumps({"episode": 0, "copy": 2, "task_class": 1, "kept": False,
                            "reason": "test"}) + "\n")
        f.write(json.dumps({"episode": 0, "copy": 3, "task_class": 1, "kept": True,
                            "reason": ""}) + "\n")
    s = augment(_config(image_store, out, copies=4))
    assert (s.generated, s.kept, s.resumed) == (4, 3, 3)
    store = EpisodeStore.open(out)
    copies = [json.loads(m["provenance"])["copy"] for m in store.episodes()]
    assert copies == [0, 1, 3]
    # copies are seeded per (episode, copy): a resumed run makes the same demos
    fresh = tmp_path / "fresh.zarr"
    augment(_config(image_store, fresh, copies=2))
    np.testing.assert_array_equal(EpisodeStore.open(fresh).get_episode(1)["rgb.agentview"], first)
    with pytest.raises(RobopolicyError, match="holds another augmentation run") as e:
        augment(_config(image_store, out, copies=4, seed=1))
    assert "\n" not in str(e.value)
    s = augment(_config(image_store, out, copies=1, seed=1, overwrite=True))
    assert EpisodeStore.open(out).n_episodes == 1 and s.resumed == 0


def test_keep_source_writes_each_demo_before_its_copies(image_store, tmp_path):
    out = tmp_path / "with_source.zarr"
    s = augment(_config(image_store, out, copies=2, keep_source=True))
    assert (s.generated, s.kept) == (2, 2)  # the yield counts copies only
    store, source = EpisodeStore.open(out), EpisodeStore.open(image_store)
    metas = store.episodes()
    assert [json.loads(m["provenance"])["copy"] for m in metas] == [SOURCE_COPY, 0, 1]
    assert metas[0]["source"] == source.episode_meta(0)["source"]
    assert metas[1]["source"] == "augment:image2d"
    for key in ("rgb.agentview", "action", "proprio"):
        np.testing.assert_array_equal(store.get_episode(0)[key], source.get_episode(0)[key])
    assert not np.array_equal(store.get_episode(1)["rgb.agentview"],
                              source.get_episode(0)["rgb.agentview"])
    # a rerun resumes (the source episode is not written twice); without it is another run
    s = augment(_config(image_store, out, copies=2, keep_source=True))
    assert s.resumed == 3 and EpisodeStore.open(out).n_episodes == 3
    with pytest.raises(RobopolicyError, match="holds another augmentation run"):
        augment(_config(image_store, out, copies=2))
