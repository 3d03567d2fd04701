"""The backend's scene meshes (what the viewer draws) and camera poses sit where the
simulator's geometry is."""

from __future__ import annotations

import numpy as np


def world_vertices(mesh, backend) -> np.ndarray:
    pos, rot = backend.mesh_poses([mesh.id])
    return mesh.vertices @ rot[0].T + pos[0]


def test_meshes_match_the_point_cloud_and_the_robot():
    import trimesh
    from scipy.spatial import cKDTree

    from sims.partmanip.factory import make_env

    env = make_env({"obs_keys": ("pcd", "proprio")})
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
