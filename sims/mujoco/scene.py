"""Build a MuJoCo model from a SceneSpec: Panda, table, lights, cameras and objects."""

from __future__ import annotations

import mujoco
import numpy as np

from sims.core.camera import lookat_rotation
from sims.core.perturb import SURFACE_TEXTURE_PX
from sims.core.rotations import mat_to_quat
from sims.core.types import CameraSpec, SceneSpec
from sims.mujoco.panda import panda_spec
from sims.objects.export import OBJECT_TORSIONAL_FRICTION, to_mjcf

TABLE_GEOM = "table"
FLOOR_GEOM = "floor"
TEXTURED_GEOMS = (TABLE_GEOM, FLOOR_GEOM)  # each with a material "<geom>" and texture "<geom>"


def lookat_quat(pos, lookat, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """wxyz orientation of a camera at `pos` looking at `lookat` (`sims.core.camera`'s
    convention is MuJoCo's: the camera looks along -z)."""
    return mat_to_quat(lookat_rotation(pos, lookat, up))


def _add_camera(spec: mujoco.MjSpec, cam: CameraSpec) -> None:
    parent = spec.worldbody if cam.body is None else spec.body(cam.body)
    if parent is None:
        raise KeyError(f"camera {cam.name}: no body named {cam.body!r}")
    c = parent.add_camera()
    c.name = cam.name
    c.pos = list(cam.pos)
    c.quat = list(lookat_quat(cam.pos, cam.lookat, cam.up) if cam.lookat is not None else cam.quat)
    c.fovy = cam.fovy_deg
    c.resolution = [cam.width, cam.height]


def _add_surface_texture(spec: mujoco.MjSpec, geom) -> None:
    """A plain white texture under `geom`'s colour: it renders exactly as the bare colour, and
    a visual perturbation can rewrite its pixels at run time (`sims.mujoco.visuals`)."""
    tex = spec.add_texture()
    tex.name = geom.name
    tex.type = mujoco.mjtTexture.mjTEXTURE_2D
    tex.builtin = mujoco.mjtBuiltin.mjBUILTIN_FLAT
    tex.rgb1 = [1.0, 1.0, 1.0]
    tex.width = tex.height = SURFACE_TEXTURE_PX
    tex.nchannel = 3
    mat = spec.add_material()
    mat.name = geom.name
    mat.rgba = list(geom.rgba)  # what mesh exporters read of a geom with a material
    roles = [""] * int(mujoco.mjtTextureRole.mjNTEXROLE)
    roles[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = geom.name
    mat.textures = roles
    mat.texuniform = True  # texrepeat counts repeats per metre, whatever the surface's size
    mat.texrepeat = [2.0, 2.0]
    geom.material = geom.name


def build_spec(scene: SceneSpec) -> mujoco.MjSpec:
    """The full MjSpec of `scene` (not yet compiled)."""
    spec = panda_spec()
    spec.modelname = "partmanip"
    opt = spec.option
    opt.timestep = scene.timestep
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0  # stiffer friction: grasped objects do not creep out of the fingers

    vis = spec.visual
    vis.quality.offsamples = 0  # no MSAA: ~10x faster offscreen rendering
    vis.quality.shadowsize = 1024
    width = max([c.width for c in scene.cameras] + [640])
    height = max([c.height for c in scene.cameras] + [480])
    vis.global_.offwidth, vis.global_.offheight = width, height
    vis.headlight.ambient = [0.35, 0.35, 0.35]
    vis.headlight.diffuse = [0.45, 0.45, 0.45]
    vis.map.znear = 0.01

    world = spec.worldbody
    light = world.add_light()
    light.name = "top"
    light.pos = [0.5, 0.0, 1.5]
    light.dir = [0.0, 0.0, -1.0]
    light.type = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    light.diffuse = [0.6, 0.6, 0.6]
    light.castshadow = scene.shadows

    t = scene.table
    table = world.add_geom()
    table.name = TABLE_GEOM
    table.type = mujoco.mjtGeom.mjGEOM_BOX
    table.size = [t.half_size_xy[0], t.half_size_xy[1], t.thickness / 2]
    table.pos = [t.center_xy[0], t.center_xy[1], -t.thickness / 2]
    table.rgba = list(t.rgba)
    # The table outranks the objects in contact parameters: MuJoCo's default, the larger of two
    # geoms' frictions, would slide objects on the table with their own friction, which is
    # high for the fingers' sake; pushed at a part's height they tipped over instead.
    # (torsional: the objects' own, so their spin on the table is unchanged)
    table.friction = [t.friction, OBJECT_TORSIONAL_FRICTION, 0.0001]
    table.condim = 4
    table.priority = 1
    floor = world.add_geom()
    floor.name = FLOOR_GEOM
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [3.0, 3.0, 0.1]
    floor.pos = [0.0, 0.0, -0.75]
    floor.rgba = [0.30, 0.32, 0.35, 1.0]
    floor.contype = floor.conaffinity = 0

    for geom in (table, floor):
        _add_surface_texture(spec, geom)
    for cam in scene.cameras:
        _add_camera(spec, cam)

    for placed in scene.objects:
        child = mujoco.MjSpec.from_string(to_mjcf(placed.asset))
        frame = world.add_frame()
        frame.pos = list(placed.pos)
        frame.quat = list(placed.quat)
        frame.attach_body(child.body("base"), f"{placed.asset.name}/", "")
    return spec
