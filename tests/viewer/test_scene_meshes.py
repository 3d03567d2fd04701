"""The backend's scene meshes (what the viewer draws) and camera poses sit where the
simulator's geometry is."""

from __future__ import annotations

import numpy as np
import pytest

BACKENDS = ["mujoco", "pybullet"]


def world_vertices(mesh, backend) -> np.ndarray:
    pos, rot = backend.mesh_poses([mesh.id])
    return mesh.vertices @ rot[0].T + pos[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_meshes_match_the_point_cloud_and_the_robot(backend):
    import trimesh
    from scipy.spatial import cKDTree

    from sims.partmanip.factory import make_env

    env = make_env({"obs_keys": ("pcd", "proprio"), "backend": backend})
    try:
        obs, _ = env.reset(seed=0)  # the default pool's task 0: a mug, grasped by its handle
        backend = env.backend
        meshes = {m.entity: m for m in backend.scene_meshes()}
        parts = {e.split("/")[1] for e in meshes if e.startswith("object/")}
        assert {"handle", "body"} <= parts and "table" in meshes
        assert meshes["table"].fixed and not any(m.fixed for e, m in meshes.items()
                                                 if e.startswith(("object/", "robot/panda_hand")))
        links = {e.split("/")[1] for e in meshes if e.startswith("robot/")}
        assert {f"panda_link{i}" for i in range(8)} | {"panda_hand", "panda_leftfinger"} <= links
        for m in meshes.values():
            assert m.faces.max() < len(m.vertices) and m.normals.shape == m.vertices.shape
        # the object's meshes, posed, carry the depth camera's object points (within ~2 mm)
        posed = [trimesh.Trimesh(world_vertices(m, backend), m.faces) for e, m in meshes.items()
                 if e.startswith("object/")]
        surface = trimesh.util.concatenate(posed).sample(20000)
        dist, _ = cKDTree(surface).query(obs["pcd"][:, :3])
        assert np.median(dist) < 0.002 and np.percentile(dist, 95) < 0.004
        # the fingers are at the TCP (proprio's TCP position, robot base = world frame)
        fingers = np.concatenate([world_vertices(m, backend) for e, m in meshes.items()
                                  if "finger" in e])
        assert np.linalg.norm(fingers.mean(axis=0) - obs["proprio"][8:11]) < 0.03
    finally:
        env.close()


def test_camera_projection_lands_on_the_rendered_pixels():
    # sims.core.camera.project with the backend's camera pose puts the target part's points on
    # the part mask and at the rendered depth, for the fixed camera and the one on the hand
    from sims.core.camera import project
    from sims.partmanip.factory import make_env

    keys = [f"{k}.{c}" for c in ("agentview", "wrist") for k in ("depth", "part_mask")]
    env = make_env({"obs_keys": keys})
    try:
        obs, _ = env.reset(seed=0)
        points = env.snapshot().part_points(env.target_part())
        for spec in env.cameras:
            pos, rot = env.backend.camera_pose(spec.name)
            uv, depth = project(points, pos, rot, spec.fovy_deg, spec.width, spec.height)
            inside = ((depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < spec.width)
                      & (uv[:, 1] >= 0) & (uv[:, 1] < spec.height))
            assert inside.sum() > 20, spec.name
            col, row = uv[inside].astype(int).T
            mask = obs[f"part_mask.{spec.name}"]
            seen = np.abs(obs[f"depth.{spec.name}"][row, col] - depth[inside]) < 0.005
            assert seen.sum() > 10, spec.name  # the points facing the camera
            assert mask[row[seen], col[seen]].mean() > 0.85, spec.name  # 0.92-1.0; edges blur
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_posed_part_meshes_fall_on_their_segmentation_labels(backend):
    # a kettle turned 40 degrees (a lid on a hinge, a body holding two parts): each part's posed mesh surface, where the camera sees it, lies on the
    # pixels segmented with that part's label, and the part's pixels are where its mesh projects
    import trimesh

    from sims.core.camera import project
    from sims.core.registry import make_backend
    from sims.core.types import PlacedObject, SceneSpec
    from sims.objects import make_instance
    from sims.partmanip.env import default_cameras

    asset = make_instance("kettle", 0)
    scene = SceneSpec(objects=[PlacedObject(asset, (0.5, 0.05, 0.002), (0.9397, 0, 0, 0.3420))],
                      cameras=list(default_cameras()))
    b = make_backend(backend)
    try:
        b.build(scene)
        b.step(5)
        meshes = b.scene_meshes()
        by_part: dict[str, list] = {}
        for m in meshes:
            if m.entity.startswith("object/"):
                by_part.setdefault(m.entity.split("/")[1], []).append(m)
        assert {f"{asset.name}/{p}" for p in by_part} == {
            label for label in b.segmentation_labels if label.startswith(f"{asset.name}/")}
        spec = scene.cameras[0]
        w, h = 2 * spec.width, 2 * spec.height  # finer pixels: fewer points on an edge
        out = b.render(spec.name, rgb=False, depth=True, segmentation=True, size=(w, h))
        pos, rot = b.camera_pose(spec.name)
        for part, part_meshes in by_part.items():
            label = b.segmentation_labels.index(f"{asset.name}/{part}")
            pixels = np.argwhere(out.segmentation == label)
            assert len(pixels) > 30, part  # seen from this camera
            posed = trimesh.util.concatenate([trimesh.Trimesh(world_vertices(m, b), m.faces)
                                              for m in part_meshes])
            uv, depth = project(posed.sample(5000, seed=0), pos, rot, spec.fovy_deg, w, h)
            col, row = np.clip(uv.astype(int), 0, [w - 1, h - 1]).T
            seen = np.abs(out.depth_m[row, col] - depth) < 0.003
            assert seen.sum() > 20, part
            on_label = out.segmentation[row[seen], col[seen]] == label
            assert on_label.mean() > 0.9, (part, on_label.mean())  # 0.97-0.99
            centroid = np.array([row[seen].mean(), col[seen].mean()])
            assert np.linalg.norm(centroid - pixels.mean(axis=0)) < 5, part  # 0-3 px of 256
        assert set(by_part) == {"body", "handle", "lid"}
        pos0, rot0 = b.mesh_poses([m.id for m in meshes])
        assert pos0.shape == (len(meshes), 3) and rot0.shape == (len(meshes), 3, 3)
    finally:
        b.close()


def test_pybullet_has_no_window_and_says_so():
    from sims.core.registry import make_backend

    b = make_backend("pybullet")
    with pytest.raises(RuntimeError, match="needs a display") as e:
        b.interactive_viewer()
    assert "\n" not in str(e.value)
