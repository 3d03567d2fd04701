"""Plain data types shared by object generators, backends and the suite.

Frames and units: metres, radians, quaternions wxyz. The world frame is the robot base frame:
+x away from the robot, +y to its left, +z up; the table top is the plane z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sims.core.control import CONTROL_HZ

GeomType = Literal["box", "sphere", "capsule", "cylinder", "ellipsoid", "mesh"]
Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
IDENTITY_QUAT: Quat = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class GeomSpec:
    """One geometric primitive of an object, labelled with the part it belongs to.

    `size` follows MuJoCo: box = 3 half-extents, sphere = (radius,), capsule/cylinder =
    (radius, half-length along the geom's local z), ellipsoid = 3 radii. `pos`/`quat` are in
    the frame of `body`. `collide=False` geoms are visual only (no mass); `visible=False` geoms
    are collision only (hidden from cameras).
    """

    name: str
    type: GeomType
    size: tuple[float, ...]
    part: str
    body: str = "base"
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    rgba: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    mesh: str | None = None
    collide: bool = True
    visible: bool = True
    density: float = 1000.0  # kg/m^3
    friction: float = 1.0


@dataclass(frozen=True)
class JointSpec:
    """A joint between a body and its parent (articulated parts: lids, screens, handles)."""

    name: str
    type: Literal["hinge", "slide"]
    axis: Vec3
    range: tuple[float, float]
    pos: Vec3 = (0.0, 0.0, 0.0)  # in the child body frame
    damping: float = 0.05
    frictionloss: float = 0.0


@dataclass(frozen=True)
class BodySpec:
    """A rigid body of an object; the root body is named "base" and has `parent=None`."""

    name: str
    parent: str | None = None
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    joint: JointSpec | None = None


@dataclass
class Part:
    """A named part of an object instance.

    A part may span several bodies (both legs of eyeglasses, both halves' blades of
    scissors): `points`/`normals` (N, 3) sample its surface, each point in the frame of the
    body `bodies[point_body[i]]`, so they move with articulations. `joints` are the joints of
    those bodies, if any.
    """

    name: str
    geoms: list[str]
    bodies: tuple[str, ...] = ("base",)
    joints: tuple[str, ...] = ()
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    normals: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    point_body: np.ndarray | None = None  # (N,) index into `bodies`; None = all on bodies[0]

    def body_index(self) -> np.ndarray:
        """(N,) index into `bodies` of each point."""
        if self.point_body is None:
            return np.zeros(len(self.points), np.int64)
        return self.point_body

    def posed(self, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Points and normals moved by `poses` {body: (position (3,), rotation matrix (3,3))}."""
        idx = self.body_index()
        pts = np.empty(self.points.shape, np.float64)
        nrm = np.empty(self.normals.shape, np.float64)
        for k, body in enumerate(self.bodies):
            pos, rot = poses[body]
            sel = idx == k
            pts[sel] = self.points[sel] @ np.asarray(rot).T + pos
            nrm[sel] = self.normals[sel] @ np.asarray(rot).T
        return pts, nrm


@dataclass
class ObjectAsset:
    """A part-annotated object instance, generated deterministically from (category, instance_id).

    The same description exports MJCF (MuJoCo) and URDF (PyBullet), so both backends see the
    same object. The object frame has its origin at the bottom centre of the object's resting
    footprint, +z up.
    """

    category: str
    instance_id: int
    scale: float
    bodies: list[BodySpec]
    geoms: list[GeomSpec]
    parts: dict[str, Part]
    meshes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.category}_{self.instance_id:04d}"

    def part_of_geom(self) -> dict[str, str]:
        """Map geom name -> part name."""
        return {g.name: g.part for g in self.geoms}


@dataclass(frozen=True)
class CameraSpec:
    """A camera at `pos`, oriented by `lookat` (+ `up`) or else by `quat` (MuJoCo convention:
    looking along -z, +y up in the image). With `body` set, the camera rides on that robot body
    and `pos`/`lookat`/`up`/`quat` are in the body's frame; otherwise in the world frame."""

    name: str
    width: int = 128
    height: int = 128
    fovy_deg: float = 60.0
    pos: Vec3 = (0.0, 0.0, 0.0)
    lookat: Vec3 | None = None
    up: Vec3 = (0.0, 0.0, 1.0)
    quat: Quat = IDENTITY_QUAT
    body: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A box table whose top surface is the plane z = 0."""

    center_xy: tuple[float, float] = (0.45, 0.0)
    half_size_xy: tuple[float, float] = (0.7, 0.6)
    thickness: float = 0.05
    rgba: tuple[float, float, float, float] = (0.55, 0.42, 0.30, 1.0)
    friction: float = 0.5  # what objects slide with (a desk's, for plastic or metal)


@dataclass
class PlacedObject:
    """An object asset and its initial pose on the table (world frame)."""

    asset: ObjectAsset
    pos: Vec3 = (0.5, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT


@dataclass
class SceneSpec:
    """Everything a backend needs to build a scene: robot, table, objects, cameras, physics."""

    objects: list[PlacedObject] = field(default_factory=list)
    cameras: list[CameraSpec] = field(default_factory=list)
    table: TableSpec = field(default_factory=TableSpec)
    robot: str = "panda"
    timestep: float = 0.002
    control_hz: float = CONTROL_HZ
    shadows: bool = False

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return max(1, round(1.0 / (self.control_hz * self.timestep)))


@dataclass(frozen=True)
class ContactForce:
    """A contact between a gripper finger and an object part (normal force in newtons)."""

    finger: Literal["left", "right"]
    object: str
    part: str
    normal_force: float
    pos: Vec3


@dataclass
class RenderOutput:
    """One camera's images: rgb (H,W,3) uint8, depth (H,W) float32 metres, segmentation (H,W)
    int32 indices into the backend's `segmentation_labels` (None when not requested)."""

    rgb: np.ndarray | None = None
    depth_m: np.ndarray | None = None
    segmentation: np.ndarray | None = None


@dataclass
class SceneMesh:
    """One visible piece of the scene as a viewer draws it: a triangle mesh in its own frame
    (vertices (V, 3) metres, normals (V, 3), faces (F, 3), rgba (4,) in [0, 1]), named by
    `entity` below the scene root (`robot/<link>/<piece>`, `object/<part>/<geom>`, `table`).
    `id` asks the backend for its pose (`Backend.mesh_poses`); a `fixed` mesh never moves."""

    id: int
    entity: str
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    rgba: np.ndarray
    fixed: bool = False
