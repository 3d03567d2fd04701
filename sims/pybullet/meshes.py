"""Triangle meshes of a PyBullet scene's visible pieces, each in its own frame, named for a viewer
as `sims.mujoco.meshes` names them: `robot/<link>/<piece>`, `object/<part>/<geom>`, `table`
(`PybulletBackend.scene_meshes`).

PyBullet keeps no triangles of rigid bodies it hands back, so the meshes come from where the
bodies were loaded from: the Panda's URDF visuals (its mesh files in `pybullet_data`) and the
objects' geoms (the asset's own meshes, as the exported URDF places them). Each piece is fixed
in one link's URDF frame; its world pose is that frame's (from PyBullet) times the piece's
local pose (`MeshFrames.poses`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pybullet as pb

from sims.core.rotations import quat_to_mat
from sims.core.types import GeomSpec, SceneMesh, TableSpec
from sims.mujoco.panda import panda_urdf_path
from sims.pybullet.frames import mat_from_xyzw
from sims.pybullet.scene import LoadedScene

ROBOT_RGBA = (0.9, 0.9, 0.9, 1.0)  # the Panda URDF's materials are all white


@dataclass
class MeshFrames:
    """Where each mesh id sits: its (body uid, link index) and its pose in that link's frame."""

    links: list[tuple[int, int]] = field(default_factory=list)
    local_pos: list[np.ndarray] = field(default_factory=list)
    local_rot: list[np.ndarray] = field(default_factory=list)

    def add(self, uid: int, link: int, pos, rot) -> int:
        self.links.append((uid, link))
        self.local_pos.append(np.asarray(pos, float))
        self.local_rot.append(np.asarray(rot, float))
        return len(self.links) - 1

    def poses(self, ids, client: int) -> tuple[np.ndarray, np.ndarray]:
        """World positions (N, 3) and rotations (N, 3, 3) of meshes `ids` now."""
        ids = [int(i) for i in np.asarray(ids, int).reshape(-1)]
        frames: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        pos, rot = np.zeros((len(ids), 3)), np.zeros((len(ids), 3, 3))
        for k, i in enumerate(ids):
            key = self.links[i]
            if key not in frames:
                frames[key] = link_frame(*key, client)
            p, r = frames[key]
            pos[k], rot[k] = p + r @ self.local_pos[i], r @ self.local_rot[i]
        return pos, rot


def link_frame(uid: int, link: int, client: int) -> tuple[np.ndarray, np.ndarray]:
    """World pose (position, rotation matrix) of a link's URDF frame; -1 is the base, which
    PyBullet places by its centre of mass."""
    if link >= 0:
        st = pb.getLinkState(uid, link, computeForwardKinematics=True, physicsClientId=client)
        return np.asarray(st[4], float), mat_from_xyzw(st[5])
    pos, quat = pb.getBasePositionAndOrientation(uid, physicsClientId=client)
    dyn = pb.getDynamicsInfo(uid, -1, physicsClientId=client)
    ir = mat_from_xyzw(dyn[4])  # the COM frame in the link frame: link = com * inverse(inertial)
    rot = mat_from_xyzw(quat) @ ir.T
    return np.asarray(pos, float) - rot @ np.asarray(dyn[3], float), rot


def _rpy_mat(rpy) -> np.ndarray:
    """URDF's fixed-axis roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _mesh(verts, faces, rgba, entity: str, mesh_id: int, fixed: bool) -> SceneMesh:
    import trimesh

    m = trimesh.Trimesh(np.asarray(verts, float), np.asarray(faces, int), process=False)
    return SceneMesh(mesh_id, entity, np.asarray(m.vertices, np.float32),
                     np.asarray(m.faces, np.uint32), np.asarray(m.vertex_normals, np.float32),
                     np.asarray(rgba, np.float32), fixed=fixed)


def _robot_meshes(scene: LoadedScene, frames: MeshFrames) -> list[SceneMesh]:
    """The Panda's URDF visuals, one mesh per visual, fixed for the base link."""
    import trimesh

    path = panda_urdf_path()
    out = []
    for link in ET.parse(path).getroot().findall("link"):
        name = link.get("name")
        index = -1 if name == "panda_link0" else scene.robot_links.get(name)
        if index is None:
            continue
        for k, vis in enumerate(link.findall("visual")):
            shape = vis.find("geometry/mesh")
            if shape is None:
                continue
            file = path.parent / shape.get("filename").replace("package://", "")
            if not Path(file).exists():
                continue
            m = trimesh.load(file, force="mesh")
            m.apply_scale(np.array([float(s) for s in shape.get("scale", "1 1 1").split()]))
            origin = vis.find("origin")
            xyz = [float(v) for v in origin.get("xyz", "0 0 0").split()] if origin is not None else [0] * 3
            rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()] if origin is not None else [0] * 3
            mesh_id = frames.add(scene.robot, index, xyz, _rpy_mat(rpy))
            out.append(_mesh(m.vertices, m.faces, ROBOT_RGBA, f"robot/{name}/{file.stem}_{k}",
                             mesh_id, fixed=index < 0))
    return out


def _object_meshes(scene: LoadedScene, frames: MeshFrames) -> list[SceneMesh]:
    """Each object's visible geoms, in the link that holds their part (`sims.pybullet.urdf`:
    a part's own link is fixed at its body's origin, so the geom's pose in it is its pose in
    the body)."""
    from sims.objects.geometry import geom_mesh

    out = []
    for obj in scene.objects.values():
        asset = obj.asset
        for g in asset.geoms:
            if not g.visible:
                continue
            link = obj.links.get(f"{g.body}__{g.part}", obj.links[g.body])
            m = geom_mesh(GeomSpec(g.name, g.type, g.size, g.part, mesh=g.mesh), asset.meshes)
            mesh_id = frames.add(obj.uid, link, g.pos, quat_to_mat(np.asarray(g.quat, float)))
            out.append(_mesh(m.vertices, m.faces, g.rgba, f"object/{g.part}/{g.name}", mesh_id,
                             fixed=False))
    return out


def _table_mesh(scene: LoadedScene, table: TableSpec, frames: MeshFrames) -> SceneMesh:
    import trimesh

    box = trimesh.creation.box(extents=[2 * table.half_size_xy[0], 2 * table.half_size_xy[1],
                                        table.thickness])
    mesh_id = frames.add(scene.table, -1, np.zeros(3), np.eye(3))
    return _mesh(box.vertices, box.faces, table.rgba, "table", mesh_id, fixed=True)


def scene_meshes(scene: LoadedScene, table: TableSpec) -> tuple[list[SceneMesh], MeshFrames]:
    """The robot's, the table's and the objects' meshes, and the frames that pose them by id."""
    frames = MeshFrames()
    meshes = _robot_meshes(scene, frames) + [_table_mesh(scene, table, frames)]
    return meshes + _object_meshes(scene, frames), frames
