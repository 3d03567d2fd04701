"""The viewer's meshes of a MuJoCo scene sit where the simulator's geometry is."""

from __future__ import annotations

import numpy as np


def world_vertices(mesh, data) -> np.ndarray:
    return mesh.vertices @ data.geom_xmat[mesh.geom_id].reshape(3, 3).T + data.geom_xpos[mesh.geom_id]


def test_meshes_match_the_point_cloud_and_the_robot():
    import trimesh
    from scipy.spatial import cKDTree

    from robopolicy.viewer.scene_meshes import object_geom_parts, scene_meshes
    from sims.partmanip.factory import make_env

    env = make_env({"obs_keys": ("pcd", "proprio")})
    try:
        obs, _ = env.reset(seed=0)  # the default pool's task 0: a mug, grasped by its handle
        model, data = env.backend.model, env.backend.data
        meshes = {m.entity: m for m in scene_meshes(model, object_geom_parts(env.asset))}
    finally:
        env.close()
    parts = {e.split("/")[1] for e in meshes if e.startswith("object/")}
    assert {"handle", "body"} <= parts and "table" in meshes
    links = {e.split("/")[1] for e in meshes if e.startswith("robot/")}
    assert {f"panda_link{i}" for i in range(8)} | {"panda_hand", "panda_leftfinger"} <= links
    assert all(model.geom_group[m.geom_id] < 3 for m in meshes.values())  # no collision shells
    for m in meshes.values():
        assert m.faces.max() < len(m.vertices) and m.normals.shape == m.vertices.shape
    # the object's meshes, posed, carry the depth camera's object points (within ~2 mm)
    posed = [trimesh.Trimesh(world_vertices(m, data), m.faces) for e, m in meshes.items()
             if e.startswith("object/")]
    surface = trimesh.util.concatenate(posed).sample(20000)
    dist, _ = cKDTree(surface).query(obs["pcd"][:, :3])
    assert np.median(dist) < 0.002 and np.percentile(dist, 95) < 0.004
    # the fingers are at the TCP (proprio's TCP position, robot base = world frame)
    fingers = np.concatenate([world_vertices(m, data) for e, m in meshes.items() if "finger" in e])
    assert np.linalg.norm(fingers.mean(axis=0) - obs["proprio"][8:11]) < 0.03
