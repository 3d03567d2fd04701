"""Gaussian scenes of the MuJoCo suite scene: segments, camera agreement with MuJoCo, the
colour fit to MuJoCo's renders and its cache (real MuJoCo renders throughout)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from robopolicy.augment.camera import RasterParams
from robopolicy.augment.fit import FitConfig
from robopolicy.augment.fit_cache import fit_paths, fitted_instance
from robopolicy.augment.from_sim import (
    SimSampling,
    mujoco_camera,
    near_camera_segments,
    scene_from_backend,
    segment_of_geoms,
    sim_backend,
)
from robopolicy.augment.render import render

# small and quick: 64 px, sparse surfaces, a few views and iterations
SMALL = FitConfig(iterations=30, train_views=6, heldout_views=2, size=64, per_m2=5_000.0,
                  object_per_m2=40_000.0, near_camera_per_m2=40_000.0, env_views=("agentview",))


@pytest.fixture(scope="module")
def backend():
    b = sim_backend("mug", 3)
    yield b
    b.close()


def test_scene_segments_are_the_backends_labels_per_link_and_part(backend):
    scene = scene_from_backend(backend, SMALL.sampling())
    names = set(scene.segments.values())
    labels = set(backend.segmentation_labels)
    assert {"table", "background"} <= names
    assert {n for n in names if not n.startswith("robot/")} == labels - {"robot"}
    assert {"robot/panda_link3", "robot/panda_hand", "robot/panda_leftfinger"} <= names
    # the mug's Gaussians lie on the mug: within its parts' world bounding box
    mug = scene.select("mug_0003").means.numpy()
    com = backend.object_com("mug_0003")
    assert np.all(np.abs(mug[:, :2] - com[:2]) < 0.1) and mug[:, 2].min() > -0.01


def _robot_silhouette_iou(backend, sampling: SimSampling, camera: str, size: int) -> float:
    """IoU of the robot's pixels in MuJoCo's segmentation and in the Gaussians' segment ids."""
    seen = backend.render(camera, segmentation=True, size=(size, size)).segmentation
    mujoco_robot = np.asarray(backend.segmentation_labels)[seen] == "robot"
    scene = scene_from_backend(backend, sampling)
    r = render(scene, mujoco_camera(backend, camera, (size, size)), params=RasterParams(eps2d_px2=0.002),
               segments=True)
    robot_ids = torch.tensor(scene.segment_ids_of("robot"))
    gauss_robot = torch.isin(r.segment, robot_ids).numpy()
    return (mujoco_robot & gauss_robot).sum() / (mujoco_robot | gauss_robot).sum()


def test_the_hand_under_the_wrist_camera_is_sampled_densely_enough_for_its_close_up(backend):
    assert near_camera_segments(backend) == {"robot/panda_hand", "robot/panda_leftfinger",
                                             "robot/panda_rightfinger"}
    dense = SimSampling()
    assert _robot_silhouette_iou(backend, dense, "wrist", 64) >= 0.9
    # at the rest of the robot's density the fingers' discs blur into the table around them
    sparse = SimSampling(near_camera_per_m2=dense.surface.per_m2)
    assert _robot_silhouette_iou(backend, sparse, "wrist", 64) < 0.85


def _mujoco_pixel_points(backend, camera: str, size: int, stride: int):
    """(pixel (u, v) centres, the 3-D points and geoms MuJoCo's own camera model sees there)
    by `mjv_select`, which casts its ray from the OpenGL frustum it renders with."""
    m, d = backend.model, backend.data
    scn = mujoco.MjvScene(m, maxgeom=2000)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
    cam.fixedcamid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    opt = mujoco.MjvOption()
    mujoco.mjv_updateScene(m, d, opt, None, cam, mujoco.mjtCatBit.mjCAT_ALL.value, scn)
    pix, pts, geoms = [], [], []
    point, geom, flex, skin = np.zeros(3), np.zeros(1, np.int32), np.zeros(1, np.int32), \
        np.zeros(1, np.int32)
    for v in range(stride // 2, size, stride):
        for u in range(stride // 2, size, stride):
            body = mujoco.mjv_select(m, d, opt, 1.0, (u + 0.5) / size, 1.0 - (v + 0.5) / size,
                                     scn, point, geom, flex, skin)
            if body >= 0:
                pix.append((u + 0.5, v + 0.5))
                pts.append(point.copy())
                geoms.append(int(geom[0]))
    return np.array(pix), np.array(pts), geoms


@pytest.mark.parametrize("camera", ["agentview", "wrist"])
def test_pinhole_camera_of_a_mujoco_camera_projects_points_where_mujoco_renders_them(backend,
                                                                                      camera):
    size = 128
    cam = mujoco_camera(backend, camera, (size, size))
    pix, pts, geoms = _mujoco_pixel_points(backend, camera, size, stride=16)
    assert len(pts) >= 30
    world = torch.as_tensor(pts, dtype=torch.float64)
    local = (world - torch.as_tensor(cam.pos)) @ torch.as_tensor(cam.rot)
    depth = -local[:, 2]
    u = size / 2 + cam.focal_px * local[:, 0] / depth
    v = size / 2 - cam.focal_px * local[:, 1] / depth
    err = np.abs(np.stack([u.numpy(), v.numpy()], 1) - pix)
    assert err.max() <= 1.0, err.max()
    # and MuJoCo's render shows the selected geoms at those pixels (the floor is background)
    seg = backend.render(camera, segmentation=True, size=(size, size)).segmentation
    labels = backend.segmentation_labels
    names = segment_of_geoms(backend)
    want = [names.get(g, "background").split("/")[0] if names.get(g, "").startswith("robot/")
            else names.get(g, "background") for g in geoms]
    seen = [labels[seg[int(y), int(x)]] for x, y in pix]
    assert sum(a == b for a, b in zip(want, seen, strict=True)) >= 0.95 * len(pix)
    assert len(set(seen)) >= 2


def test_fit_improves_psnr_and_the_cache_returns_it_without_refitting(tmp_path):
    fit = fitted_instance("mug", 3, SMALL, cache_dir=tmp_path)
    assert not fit.cached
    assert fit.metrics.psnr_db >= fit.initial.psnr_db + 2.0, (fit.initial, fit.metrics)
    assert set(fit.metrics.part_iou) >= {"mug_0003/body", "mug_0003/handle"}
    assert all(0.0 <= v <= 1.0 for v in fit.metrics.part_iou.values())
    ply, meta = fit_paths("mug", 3, SMALL, tmp_path)
    assert ply.is_file() and meta.is_file()

    again = fitted_instance("mug", 3, SMALL, cache_dir=tmp_path)
    assert again.cached
    assert again.scene.segments == fit.scene.segments
    for a, b in [(again.scene.means, fit.scene.means), (again.scene.sh_dc, fit.scene.sh_dc),
                 (again.scene.opacity_logits, fit.scene.opacity_logits),
                 (again.scene.log_scales, fit.scene.log_scales),
                 (again.scene.segment_ids, fit.scene.segment_ids)]:
        assert torch.equal(a, b)
    assert again.metrics == fit.metrics
    # other settings are another entry
    other = fit_paths("mug", 3, FitConfig(**{**SMALL.__dict__, "iterations": 31}), tmp_path)
    assert other[0] != ply
