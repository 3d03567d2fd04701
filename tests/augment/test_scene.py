"""GaussianScene: building from meshes, segments, concatenation and rigid posing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from robopolicy.augment.scene import GaussianScene, MeshSampling, mat_to_quat, quat_to_mat
from robopolicy.augment.sh import dc_to_rgb


def _box_scene(seed: int = 0, per_m2: float = 20_000.0) -> tuple[GaussianScene, trimesh.Trimesh]:
    box = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    sampling = MeshSampling(per_m2=per_m2, seed=seed)
    return GaussianScene.from_meshes({"box": box}, {"box": (0.8, 0.2, 0.1)}, sampling), box


def test_from_meshes_puts_flat_discs_on_the_surface_at_the_requested_density():
    scene, box = _box_scene()
    half = np.array([0.05, 0.1, 0.15])
    assert len(scene) == round(box.area * 20_000)
    x = scene.means.numpy().astype(float)
    assert np.all(np.abs(x) <= half + 1e-6)
    assert np.all(np.min(half - np.abs(x), axis=1) < 1e-6)  # on a face, not inside
    # each disc's thin axis is its face's normal
    face_axis = np.argmin(half - np.abs(x), axis=1)
    thin = quat_to_mat(scene.quats_wxyz)[:, :, 2].numpy()
    assert np.allclose(np.abs(thin[np.arange(len(x)), face_axis]), 1.0, atol=1e-5)
    scales = scene.log_scales.exp()
    assert torch.allclose(scales[:, 0], scales[:, 1]) and torch.all(scales[:, 2] < scales[:, 0])
    # area-weighted: the 0.2 x 0.3 faces (normal x) hold 3x what the 0.1 x 0.2 ones hold
    per_axis = np.bincount(face_axis, minlength=3)
    assert 2.4 < per_axis[0] / per_axis[2] < 3.6
    assert torch.allclose(dc_to_rgb(scene.sh_dc), torch.tensor([0.8, 0.2, 0.1]).expand(len(x), 3),
                          atol=1e-6)
    assert scene.segments == {0: "box"} and torch.all(scene.segment_ids == 0)


def test_from_meshes_is_deterministic_by_seed_and_takes_vertex_face_arrays():
    a, box = _box_scene(seed=1)
    b = GaussianScene.from_meshes({"box": (box.vertices, box.faces)}, {"box": (0.8, 0.2, 0.1)},
                                  MeshSampling(per_m2=20_000.0, seed=1))
    c, _ = _box_scene(seed=2)
    assert torch.equal(a.means, b.means) and torch.equal(a.quats_wxyz, b.quats_wxyz)
    assert not torch.equal(a.means, c.means)


def _two_part_scene() -> GaussianScene:
    box = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    meshes = {"robot/link1": box, "robot/link2": box.copy(), "table": box.copy()}
    return GaussianScene.from_meshes(meshes, sampling=MeshSampling(per_m2=5_000.0))


def test_segments_select_by_name_or_prefix_and_concat_merges_by_name():
    scene = _two_part_scene()
    assert scene.segments == {0: "robot/link1", 1: "robot/link2", 2: "table"}
    robot = scene.select("robot")
    assert set(robot.segments.values()) == {"robot/link1", "robot/link2"}
    assert len(robot) == int((scene.segment_ids < 2).sum())
    other = GaussianScene.from_meshes({"mug/handle": trimesh.creation.box(extents=(0.01,) * 3),
                                       "table": trimesh.creation.box(extents=(0.01,) * 3)},
                                      sampling=MeshSampling(per_m2=5_000.0))
    merged = GaussianScene.concat([scene, other])
    assert merged.segments == {0: "robot/link1", 1: "robot/link2", 2: "table", 3: "mug/handle"}
    assert len(merged) == len(scene) + len(other)
    assert len(merged.select("table")) == len(scene.select("table")) + len(other.select("table"))
    assert len(merged.select("mug/handle")) == len(other.select("mug/handle"))
    with pytest.raises(KeyError):
        merged.select("drawer")


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_transform_moves_one_segment_rigidly():
    scene = _two_part_scene()
    rot, trans = _rot_z(np.pi / 3), np.array([0.1, -0.2, 0.3])
    moved = scene.transform(rot, trans, "robot/link2")
    m = scene.mask("robot/link2")
    r = torch.as_tensor(rot, dtype=torch.float32)
    assert torch.allclose(moved.means[m], scene.means[m] @ r.T + torch.tensor(trans).float(),
                          atol=1e-6)
    assert torch.equal(moved.means[~m], scene.means[~m])
    assert torch.allclose(quat_to_mat(moved.quats_wxyz[m]), r @ quat_to_mat(scene.quats_wxyz[m]),
                          atol=1e-5)
    # posing several segments at once agrees with one at a time
    rot2, trans2 = _rot_z(-0.4), np.array([0.0, 0.0, 0.05])
    both = scene.posed({"robot/link2": (rot, trans), "table": (rot2, trans2)})
    one_by_one = scene.transform(rot, trans, "robot/link2").transform(rot2, trans2, "table")
    assert torch.allclose(both.means, one_by_one.means, atol=1e-6)
    assert torch.allclose(quat_to_mat(both.quats_wxyz), quat_to_mat(one_by_one.quats_wxyz),
                          atol=1e-5)


def test_mat_to_quat_inverts_quat_to_mat():
    q = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(quat_to_mat(mat_to_quat(quat_to_mat(q))), quat_to_mat(q), atol=1e-9)
