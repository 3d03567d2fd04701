"""A GaussianScene of a live MuJoCo scene (robot links, object parts, table, floor), its cameras
as `PinholeCamera`s, and MuJoCo renders from any pinhole view.

Segments are named like the backend's segmentation labels: ``robot/<body>`` (one per link;
the prefix ``robot`` is the label), ``<object>/<part>``, ``table`` and ``background`` (the
floor plane; MuJoCo labels it background too). Gaussians are in the world frame at the
backend's current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from robopolicy.augment.camera import PinholeCamera
from robopolicy.augment.scene import GaussianScene, MeshSampling

BACKGROUND = "background"
CARRIER_CAMERA = "agentview"  # a world-fixed camera that `render_mujoco` moves to each view


@dataclass
class SimSampling:
    """How a simulated scene is turned into Gaussians."""

    surface: MeshSampling = field(default_factory=lambda: MeshSampling(per_m2=20_000.0))
    """Robot and table surfaces."""
    object_per_m2: float = 150_000.0
    """Objects are small and their part masks are measured: denser, finer discs."""
    near_camera_per_m2: float = 600_000.0
    """The links a camera rides on and those below them (the hand and fingers under the wrist
    camera) fill much of that camera's view from centimetres away: at the robot's density
    their discs leave see-through gaps there."""
    floor_per_m2: float = 400.0
    """The floor is seen far off and in one colour: coarse discs suffice."""
    floor_half_m: float = 3.0
    """Half side of the floor square sampled around the floor's origin (MuJoCo draws the plane
    to its size, 3 m)."""


def sim_backend(category: str, instance: int, size: tuple[int, int] = (128, 128)):
    """A built MuJoCo backend of the suite's scene for one instance, at its reset state (robot
    at home, the object where `PartManipEnv` builds it), with the env's cameras at `size`."""
    import sims.mujoco  # noqa: F401  (registers the backend; loads GL in the right order)
    from sims.core.control import CONTROL_HZ
    from sims.core.registry import make_backend
    from sims.core.types import PlacedObject, SceneSpec
    from sims.objects import make_instance
    from sims.partmanip.env import default_cameras

    backend = make_backend("mujoco")
    asset = make_instance(category, instance)
    backend.build(SceneSpec(objects=[PlacedObject(asset, (0.5, 0.0, 0.002))],
                            cameras=list(default_cameras(*size)), control_hz=CONTROL_HZ))
    return backend


def segment_of_geoms(backend) -> dict[int, str]:
    """{geom id: segment name} of every visible geom of `backend`'s scene."""
    import mujoco

    model = backend.model
    parts = {f"{p.asset.name}/{g.name}": f"{p.asset.name}/{g.part}"
             for p in backend.scene.objects for g in p.asset.geoms}
    out = {}
    for mesh in backend.scene_meshes():
        g = mesh.id
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g)
        if name in parts:
            out[g] = parts[name]
        elif mesh.entity.startswith("robot/"):
            out[g] = "/".join(mesh.entity.split("/")[:2])  # robot/<body>
        else:
            out[g] = mesh.entity  # the table, or another named fixture
    return out


def near_camera_segments(backend) -> set[str]:
    """Segments of the bodies a moving camera is attached to and of every body below them."""
    model = backend.model
    near = {int(b) for b in model.cam_bodyid if b != 0}
    for b in range(1, model.nbody):  # MuJoCo numbers a parent before its children
        if int(model.body_parentid[b]) in near:
            near.add(b)
    return {name for g, name in segment_of_geoms(backend).items() if int(model.geom_bodyid[g]) in near}


def scene_from_backend(backend, sampling: SimSampling | None = None) -> GaussianScene:
    """Gaussians on every visible surface of `backend`'s scene at its current state, coloured
    by each geom's rgba (unlit; `fit` makes them look like MuJoCo's render), one segment per
    robot link, object part, the table and the floor (`BACKGROUND`)."""
    import trimesh

    sampling = sampling or SimSampling()
    names = segment_of_geoms(backend)
    meshes = {m.id: m for m in backend.scene_meshes()}
    ids = sorted(names)
    pos, mat = backend.mesh_poses(ids)
    grouped: dict[str, list] = {}
    colours: dict[str, list] = {}
    for g, p, r in zip(ids, pos, mat, strict=True):
        m = meshes[g]
        world = trimesh.Trimesh(np.asarray(m.vertices, float) @ r.T + p,
                                np.asarray(m.faces, np.int64), process=False)
        if m.fixed:  # cameras sit above the table top: fixed downward faces are never seen
            world.update_faces(world.face_normals[:, 2] > -0.5)
        grouped.setdefault(names[g], []).append(world)
        colours.setdefault(names[g], []).append((world.area, np.asarray(m.rgba[:3], float)))
    joined = {name: trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]
              for name, parts in grouped.items()}
    rgb = {name: tuple(sum(a * c for a, c in cs) / max(sum(a for a, _ in cs), 1e-12))
           for name, cs in colours.items()}
    objects = {p.asset.name for p in backend.scene.objects}
    near = near_camera_segments(backend)
    density = {name: ("object" if name.split("/")[0] in objects else
                      "near" if name in near else "surface") for name in joined}
    samplings = {"surface": sampling.surface,
                 "near": replace(sampling.surface, per_m2=sampling.near_camera_per_m2),
                 "object": replace(sampling.surface, per_m2=sampling.object_per_m2)}
    scenes = [GaussianScene.from_meshes({n: m for n, m in joined.items() if density[n] == kind},
                                        rgb, how)
              for kind, how in samplings.items() if kind in density.values()]
    floor = _floor(backend, sampling)
    return GaussianScene.concat(scenes + ([] if floor is None else [floor]))


def _floor(backend, sampling: SimSampling) -> GaussianScene | None:
    import mujoco
    import trimesh

    model = backend.model
    g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    if g < 0:
        return None
    h = sampling.floor_half_m
    corners = np.array([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]]) + backend.data.geom_xpos[g]
    quad = trimesh.Trimesh(corners, np.array([[0, 1, 2], [0, 2, 3]]), process=False)
    # wide discs: the floor is one flat colour, and no hole may show the black beyond it
    coarse = replace(sampling.surface, per_m2=sampling.floor_per_m2, sigma_per_spacing=1.0,
                     crease_deg=None)
    return GaussianScene.from_meshes({BACKGROUND: quad},
                                     {BACKGROUND: tuple(model.geom_rgba[g][:3])}, coarse)


def mujoco_camera(backend, name: str, size: tuple[int, int] | None = None) -> PinholeCamera:
    """The `PinholeCamera` of MuJoCo camera `name` at the backend's current state (a wrist
    camera moves with the hand), at its own resolution or `size` = (width, height)."""
    import mujoco

    cid = mujoco.mj_name2id(backend.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    if cid < 0:
        raise KeyError(f"no camera named {name!r}")
    pos, rot = backend.camera_pose(name)
    w, h = size if size is not None else (int(v) for v in backend.model.cam_resolution[cid])
    return PinholeCamera(pos, rot, float(backend.model.cam_fovy[cid]), int(w), int(h))


def render_mujoco(backend, camera: PinholeCamera, carrier: str = CARRIER_CAMERA):
    """MuJoCo's RGB (H, W, 3) uint8 and segmentation (H, W) (indices into the backend's
    `segmentation_labels`) seen from `camera`: the world-fixed camera `carrier` is moved there
    for the render and put back."""
    import mujoco

    from sims.core.rotations import mat_to_quat

    model, data = backend.model, backend.data
    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, carrier)
    if cid < 0 or model.cam_bodyid[cid] != 0:
        raise KeyError(f"render_mujoco: no world-fixed camera named {carrier!r}")
    saved = (model.cam_pos[cid].copy(), model.cam_quat[cid].copy(), float(model.cam_fovy[cid]))
    try:
        model.cam_pos[cid] = camera.pos
        model.cam_quat[cid] = mat_to_quat(np.asarray(camera.rot, float))
        model.cam_fovy[cid] = camera.fovy_deg
        mujoco.mj_camlight(model, data)
        out = backend.render(carrier, rgb=True, segmentation=True,
                             size=(camera.width, camera.height))
    finally:
        model.cam_pos[cid], model.cam_quat[cid], model.cam_fovy[cid] = saved
        mujoco.mj_camlight(model, data)
    return out.rgb, out.segmentation
