"""Triangle meshes of a MuJoCo scene's visible geoms, each in its own geom frame, named for a
viewer: the robot's links, the object's parts and the table (`MujocoBackend.scene_meshes`).

A geom's world pose at any time is (`data.geom_xpos[g]`, `data.geom_xmat[g]`), so a viewer logs
each mesh once and then only moves it. Mesh geoms come from `model.mesh_vert`/`mesh_face`
(MuJoCo stores them in the geom frame after compiling); primitives are built with
`trimesh.creation`. Collision-only geoms (group >= 3, hidden by MuJoCo's own renderer) and
planes are left out.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sims.core.types import SceneMesh

VISIBLE_GROUPS = (0, 1, 2)  # MuJoCo's default visible geom groups


def _primitive(geom_type: int, size: np.ndarray):
    """A trimesh of a primitive geom (MuJoCo half-sizes), or None for a type not drawn."""
    import trimesh

    t = mujoco.mjtGeom
    if geom_type == t.mjGEOM_BOX:
        return trimesh.creation.box(extents=2 * size)
    if geom_type == t.mjGEOM_SPHERE:
        return trimesh.creation.icosphere(subdivisions=2, radius=size[0])
    if geom_type == t.mjGEOM_ELLIPSOID:
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        mesh.apply_scale(size)
        return mesh
    if geom_type == t.mjGEOM_CAPSULE:
        return trimesh.creation.capsule(height=2 * size[1], radius=size[0], count=[16, 16])
    if geom_type == t.mjGEOM_CYLINDER:
        return trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=24)
    return None  # plane, height field


def geom_entity(model: mujoco.MjModel, geom_id: int, object_parts: dict[str, str]) -> str:
    """Where a geom lives in the viewer's tree: `object/<part>/<geom>` for an object's geom
    (`object_parts` maps full geom names to part names), `robot/<body>/<geom>` for a robot
    link's, else `<geom>` (the table)."""
    name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, geom_id)
    body = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(model.geom_bodyid[geom_id]))
    if name in object_parts:
        return f"object/{object_parts[name]}/{name.rsplit('/', 1)[-1]}"
    mesh_id = int(model.geom_dataid[geom_id])
    mesh = (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MESH, mesh_id)
            if model.geom_type[geom_id] == mujoco.mjtGeom.mjGEOM_MESH and mesh_id >= 0 else None)
    label = name or (f"{mesh}_{geom_id}" if mesh else f"geom_{geom_id}")
    if body and body.startswith("panda_"):
        return f"robot/{body}/{label}"
    return label if name else f"{body or 'world'}/{label}"


def scene_meshes(model: mujoco.MjModel, object_parts: dict[str, str] | None = None) -> list[SceneMesh]:
    """The meshes of `model`'s visible geoms (see the module docstring); a mesh's `id` is its
    geom id."""
    import trimesh

    object_parts = object_parts or {}
    meshes = []
    for g in range(model.ngeom):
        if model.geom_group[g] not in VISIBLE_GROUPS or model.geom_rgba[g][3] == 0:
            continue
        mesh_id = int(model.geom_dataid[g])
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and mesh_id >= 0:
            v0, nv = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
            f0, nf = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
            mesh = trimesh.Trimesh(model.mesh_vert[v0:v0 + nv], model.mesh_face[f0:f0 + nf],
                                   process=False)
        else:
            mesh = _primitive(int(model.geom_type[g]), np.asarray(model.geom_size[g]))
            if mesh is None:
                continue
        mat = int(model.geom_matid[g])
        rgba = model.mat_rgba[mat] if mat >= 0 else model.geom_rgba[g]
        meshes.append(SceneMesh(g, geom_entity(model, g, object_parts),
                                np.asarray(mesh.vertices, np.float32),
                                np.asarray(mesh.faces, np.uint32),
                                np.asarray(mesh.vertex_normals, np.float32),
                                np.asarray(rgba, np.float32),
                                fixed=bool(model.body_weldid[model.geom_bodyid[g]] == 0)))
    return meshes
