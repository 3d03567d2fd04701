"""Discs squeezed at a mesh's creases: which edges count, how far a disc reaches, and the
silhouette of a thin plate against its true outline."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from robopolicy.augment.camera import PinholeCamera, RasterParams
from robopolicy.augment.creases import crease_frames, crease_segments
from robopolicy.augment.render import render
from robopolicy.augment.scene import GaussianScene, MeshSampling, quat_to_mat


def test_crease_segments_are_a_boxs_twelve_edges_and_a_sheets_open_rim():
    box = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    edges = crease_segments(box, crease_deg=60.0)
    assert len(edges) == 12  # the faces' diagonals (0 degrees) are not creases
    lengths = np.sort(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1))
    assert np.allclose(lengths, np.repeat([0.1, 0.2, 0.3], 4))
    # a mesh stored with split vertices (one vertex per face corner) has the same creases
    split = trimesh.Trimesh(box.vertices[box.faces].reshape(-1, 3),
                            np.arange(3 * len(box.faces)).reshape(-1, 3), process=False)
    assert len(crease_segments(split, crease_deg=60.0)) == 12
    sheet = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]],
                            process=False)
    assert len(crease_segments(sheet, crease_deg=60.0)) == 4  # the open rim, not the diagonal
    cylinder = trimesh.creation.cylinder(radius=0.05, height=0.1, sections=32)
    assert len(crease_segments(cylinder, crease_deg=60.0)) == 64  # the rims, not the side's facets


def test_a_squeezed_disc_reaches_the_edge_at_reach_sigmas_and_keeps_its_size_along_it():
    edge = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])  # along x
    points = np.array([[0.5, 0.001, 0.0], [0.5, 0.004, 0.0], [0.5, 0.0, 0.0], [0.5, 0.05, 0.0]])
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    near, away, across = crease_frames(points, normals, edge, sigma=0.002, reach_sigmas=3.0,
                                       min_fraction=0.15)
    assert near.tolist() == [True, True, True, False]
    assert np.allclose(across[:2], [0.001 / 3, 0.004 / 3])
    assert np.isclose(across[2], 0.15 * 0.002)  # on the edge: the floor
    assert np.allclose(away[:2], [0.0, 1.0, 0.0], atol=1e-6)  # in the plane, away from the edge
    assert np.allclose(np.abs(away[2] @ [0.0, 0.0, 1.0]), 0.0)
    scene = GaussianScene.from_meshes(
        {"plate": trimesh.creation.box(extents=(0.04, 0.012, 0.002))},
        sampling=MeshSampling(per_m2=150_000.0, crease_deg=60.0, reach_sigmas=3.0))
    x = quat_to_mat(scene.quats_wxyz)[:, :, 0].numpy()
    sx = scene.log_scales[:, 0].exp().numpy()
    means = scene.means.numpy()
    sigma = 0.6 / np.sqrt(150_000.0)
    # on the top face, away from the corners: 3 standard deviations along the disc's x axis
    # end at the long edges (y = +-6 mm), except for discs closer to them than 3 x the floor
    top = (np.abs(means[:, 2] - 0.001) < 1e-6) & (np.abs(means[:, 0]) < 0.02 - 3 * sigma)
    reach = np.abs(means[top, 1]) + 3.0 * sx[top] * np.abs(x[top, 1])
    floored = 0.006 - np.abs(means[top, 1]) < 3 * 0.15 * sigma
    assert np.all(reach[~floored] <= 0.006 + 1e-6)
    assert np.all(reach[floored] <= 0.006 + 3 * 0.15 * sigma + 1e-6)
    assert np.sum(top & (np.abs(means[:, 1]) > 0.006 - sigma)) >= 5  # the edges have discs


def _plate_mask_error(sampling: MeshSampling) -> float:
    """Signed relative pixel-count error of a thin plate's alpha > 0.5 mask against its outline, seen
    from above with every pixel about 1 mm (the top face's outline is the silhouette)."""
    turn = trimesh.transformations.rotation_matrix(0.4, [0, 0, 1])
    plate = trimesh.creation.box(extents=(0.06, 0.006, 0.002))
    plate.apply_transform(turn)
    scene = GaussianScene.from_meshes({"plate": plate}, sampling=sampling)
    camera = PinholeCamera.look_at([0.0, 0.0, 0.12], [0.0, 0.0, 0.0], 50.0, 96, 96,
                                   up=(0.0, 1.0, 0.0))
    out = render(scene, camera, params=RasterParams(eps2d_px2=0.002), segments=False)
    ours = int((out.alpha > 0.5).sum())
    # what a rasterizer like MuJoCo's labels: pixels whose centre's ray meets the top face
    v, u = np.mgrid[0:96, 0:96] + 0.5
    f = 48.0 / np.tan(np.radians(25.0))
    rays = np.stack([(u - 48.0) / f, -(v - 48.0) / f, -np.ones_like(u)], -1) @ camera.rot.T
    hit = camera.pos + rays * ((0.001 - camera.pos[2]) / rays[..., 2:])
    local = hit @ turn[:3, :3]  # into the plate's frame (the inverse turn)
    truth = int(((np.abs(local[..., 0]) <= 0.03) & (np.abs(local[..., 1]) <= 0.003)).sum())
    return (ours - truth) / truth


def test_squeezed_discs_draw_a_thin_plate_closer_to_its_outline_than_round_ones():
    torch.manual_seed(0)
    round_discs = _plate_mask_error(MeshSampling(per_m2=150_000.0))
    squeezed = _plate_mask_error(MeshSampling(per_m2=150_000.0, crease_deg=60.0))
    assert round_discs > 0.3  # round discs spill past the rim: the mask comes out too wide
    assert abs(squeezed) < 0.1
