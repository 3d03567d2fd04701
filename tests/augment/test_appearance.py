"""The `appearance` augmenter: procedural and file textures, and the table re-textured on the
real 1-episode image store (a small cached fit) while the object and the robot stay."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from robopolicy.augment.appearance_aug import (
    KINDS,
    AppearanceAugmenter,
    procedural_texture,
)
from robopolicy.augment.frames import FrameParams, GaussianFrames
from robopolicy.augment.posing import RecordedState
from robopolicy.augment.render import render
from robopolicy.augment.run import AugmentConfig, augment
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from tests.augment.conftest import SMALL_FIT


@pytest.mark.parametrize("kind", KINDS)
def test_procedural_textures_are_deterministic_two_coloured_and_tile(kind):
    tex, info = procedural_texture(kind, np.random.default_rng(3), 64)
    again, _ = procedural_texture(kind, np.random.default_rng(3), 64)
    np.testing.assert_array_equal(tex, again)
    assert tex.shape == (64, 64, 3) and 0.0 <= tex.min() and tex.max() <= 1.0
    assert info["kind"] == kind and tex.std(axis=(0, 1)).max() > 0.01  # not one flat colour
    # it tiles: the first and last columns and rows differ like neighbours do
    step = np.abs(np.diff(tex, axis=1)).max()
    assert np.abs(tex[:, 0] - tex[:, -1]).max() <= step + 1e-6


def test_texture_dir_errors_are_one_line(tmp_path):
    with pytest.raises(RobopolicyError, match="is not a folder"):
        AppearanceAugmenter({"texture_dir": str(tmp_path / "none")})
    with pytest.raises(RobopolicyError, match="holds no PNG or JPG"):
        AppearanceAugmenter({"texture_dir": str(tmp_path)})
    with pytest.raises(RobopolicyError, match="params.kinds has 'wood'"):
        AppearanceAugmenter({"kinds": ["wood"]})
    iio.imwrite(tmp_path / "red.png", np.full((8, 8, 3), [255, 0, 0], np.uint8))
    tex, info = AppearanceAugmenter({"texture_dir": str(tmp_path)}).draw_texture(
        np.random.default_rng(0))
    assert info == {"kind": "file", "file": str(tmp_path / "red.png")}
    np.testing.assert_allclose(tex[0, 0], [1.0, 0.0, 0.0])


@pytest.mark.slow  # a colour fit and a whole episode rendered from the Gaussians
def test_appearance_changes_the_table_not_the_object_or_the_robot(image_store, small_fit_dir,
                                                                  tmp_path):
    out = tmp_path / "app.zarr"
    fit = {"fit": SMALL_FIT, "fit_cache_dir": str(small_fit_dir)}
    augment(AugmentConfig(("appearance",), image_store, out, copies=1,
                          params={"appearance": fit}))
    store, source = EpisodeStore.open(out), EpisodeStore.open(image_store)
    meta, data = store.episode_meta(0), store.get_episode(0)
    stage = json.loads(meta["provenance"])["stages"][0]
    assert stage["augmenter"] == "appearance" and set(stage["params"]) == {"table", "background"}
    assert stage["params"]["table"]["kind"] in KINDS and meta["source"] == "augment:appearance"

    frames = GaussianFrames("mug", 0, FrameParams(SMALL_FIT, str(small_fit_dir)))
    src = source.get_episode(0)
    base = frames.render_episode(src, source.episode_meta(0), store.keys, (64, 64))
    # geometry is unchanged: the object's mask and the depth are the unchanged scene's
    np.testing.assert_array_equal(data["part_mask.agentview"], base["part_mask.agentview"])
    np.testing.assert_array_equal(data["depth.agentview"], base["depth.agentview"])
    # the segments seen at step 0 from the agentview
    from robopolicy.augment.frames import env_cameras, spec_camera

    state = RecordedState(src["robot_joints"][0], src["object_pose"][0], src["articulation"][0])
    poses = frames.posing.poses(state)
    camera = spec_camera(env_cameras((64, 64))["agentview"], poses)
    with torch.no_grad():
        seg = render(frames.posed(poses), camera, params=frames.raster, segments=True).segment
    seg = seg.numpy()
    ids = {name: frames.scene.segment_ids_of(name) for name in ("table", "robot", "mug_0000")}
    on = {name: np.isin(seg, v) for name, v in ids.items()}
    assert on["table"].sum() > 500 and on["robot"].sum() > 50
    diff = np.abs(data["rgb.agentview"][0].astype(int) - base["rgb.agentview"][0]).sum(-1)
    assert np.median(diff[on["table"]]) > 30  # another texture
    # the robot and the object are rendered as before (their edges blend with the table)
    assert np.median(diff[on["robot"]]) < 4 and np.median(diff[on["mug_0000"]]) < 10
