"""Load a SceneSpec into a PyBullet client: the Panda, the table, a floor and the objects.

Objects come from their exported URDF with one link per part (`sims.pybullet.urdf`),
since PyBullet reports contacts and segmentation per link. Their joints are made stable here:
the URDF's viscous damping is tuned for MuJoCo (implicit, with armature); PyBullet applies it
explicitly, which diverges on light links (a dispenser pump reached 101 m/s). So PyBullet gets
no viscous damping and a velocity motor towards zero with the joint's friction as its force
limit: Coulomb friction, solved implicitly with the contacts.

MuJoCo's armature also gives a nearly weightless moving part (a dispenser's pump: ~5 mg on a
~0.25 kg bottle) inertia along its joint; PyBullet has no armature, and against such a mass ratio
its solver lets a finger pull the pump far past its joint limit. So each link a joint moves gets
at least MIN_MOVING_MASS (inertia scaled alike), and that joint's friction grows by a margin over
the weight added below it, so a pump left anywhere stays there, through the jolts of the object
landing too (at reset, or released from a carry: a sunk pump head leaves no room for a grasp).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from sims.core.types import ObjectAsset, PlacedObject, SceneSpec
from sims.mujoco.panda import FINGER_FRICTION, panda_urdf_path
from sims.pybullet.frames import mat_from_xyzw
from sims.pybullet.urdf import urdf_link_per_part

MIN_JOINT_FRICTION = 0.002  # N m (or N): the least friction an object joint gets, so it settles
MIN_MOVING_MASS = 1e-3  # kg: the least mass of a link an object joint moves (see above)
GRAVITY = 9.81
HOLD_MARGIN = 25.0  # joint friction added per unit of weight added below the joint (~0.5 N for a pump)
FLOOR_Z = -0.75


@dataclass
class LoadedObject:
    """An object's PyBullet body and the indices the backend reads."""

    asset: ObjectAsset
    uid: int
    links: dict[str, int]  # link name -> PyBullet link index (-1 = base)
    art_joints: list[int]  # articulation joint indices, in asset body order
    link_part: dict[int, str]  # link index -> part
    init: tuple[np.ndarray, np.ndarray]  # scene pose: position (3,), quaternion wxyz (4,)
    inertial: tuple[np.ndarray, np.ndarray]  # the base's COM frame in its link frame


@dataclass
class LoadedScene:
    robot: int
    robot_joints: dict[str, int]
    robot_links: dict[str, int]
    table: int
    floor: int
    objects: dict[str, LoadedObject]


def _link_names(uid: int, client: int) -> tuple[dict[str, int], dict[str, int]]:
    joints, links = {}, {}
    for j in range(pb.getNumJoints(uid, physicsClientId=client)):
        info = pb.getJointInfo(uid, j, physicsClientId=client)
        joints[info[1].decode()] = j
        links[info[12].decode()] = j
    return joints, links


def load_panda(client: int) -> tuple[int, dict[str, int], dict[str, int]]:
    """The Panda, fixed at the origin (the world is the robot base frame)."""
    uid = pb.loadURDF(str(panda_urdf_path()), useFixedBase=True,
                      flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    joints, links = _link_names(uid, client)
    for side in ("left", "right"):
        pb.changeDynamics(uid, links[f"panda_{side}finger"], lateralFriction=FINGER_FRICTION,
                          spinningFriction=0.01, physicsClientId=client)
    return uid, joints, links


def _raise_moving_masses(uid: int, art_joints: list[int], client: int) -> dict[int, float]:
    """Raise every link moved by an articulation joint to MIN_MOVING_MASS; per joint, the
    friction (N, or N m) to add: HOLD_MARGIN times the most the added weight below it exerts."""
    n = pb.getNumJoints(uid, physicsClientId=client)
    parent = {k: pb.getJointInfo(uid, k, physicsClientId=client)[16] for k in range(n)}
    added = {j: 0.0 for j in art_joints}
    for k in range(n):
        mass, _, inertia = pb.getDynamicsInfo(uid, k, physicsClientId=client)[:3]
        if mass >= MIN_MOVING_MASS:
            continue
        movers = [j for j in art_joints if _below(k, j, parent)]
        if not movers:
            continue
        scale = MIN_MOVING_MASS / max(mass, 1e-12)
        pb.changeDynamics(uid, k, mass=MIN_MOVING_MASS, localInertiaDiagonal=[i * scale for i in inertia],
                          physicsClientId=client)
        com = np.asarray(_link_state(uid, k, client)[0])
        for j in movers:
            # a hinge feels the weight as a torque, at most its lever from the joint's origin
            hinge = pb.getJointInfo(uid, j, physicsClientId=client)[2] == pb.JOINT_REVOLUTE
            lever = float(np.linalg.norm(com - _link_state(uid, j, client)[4])) if hinge else 1.0
            added[j] += HOLD_MARGIN * (MIN_MOVING_MASS - mass) * GRAVITY * lever
    return added


def _link_state(uid: int, link: int, client: int) -> tuple:
    return pb.getLinkState(uid, link, computeForwardKinematics=True, physicsClientId=client)


def _below(link: int, joint: int, parent: dict[int, int]) -> bool:
    """Whether `link` is `joint`'s child link or hangs from it."""
    while link != -1:
        if link == joint:
            return True
        link = parent[link]
    return False


def _load_object(placed: PlacedObject, client: int) -> LoadedObject:
    asset = placed.asset
    urdf, files = urdf_link_per_part(asset)
    with tempfile.TemporaryDirectory(prefix="sims_pb_") as d:
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "wb") as f:
                f.write(data)
        path = os.path.join(d, "model.urdf")
        with open(path, "w") as f:
            f.write(urdf)
        uid = pb.loadURDF(path, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    joints, links = _link_names(uid, client)
    links["base"] = -1
    part_of = {}
    for g in asset.geoms:  # the link of each part: its body's, or `<body>__<part>`
        part_of[links.get(f"{g.body}__{g.part}", links[g.body])] = g.part
    art = [joints[b.joint.name] for b in asset.bodies if b.joint is not None]
    friction = {joints[b.joint.name]: b.joint.frictionloss for b in asset.bodies if b.joint}
    added = _raise_moving_masses(uid, art, client)
    for j, fr in friction.items():
        pb.changeDynamics(uid, j, jointDamping=0.0, physicsClientId=client)
        pb.setJointMotorControl2(uid, j, pb.VELOCITY_CONTROL, targetVelocity=0.0,
                                 force=max(float(fr), MIN_JOINT_FRICTION) + added[j],
                                 physicsClientId=client)
    dyn = pb.getDynamicsInfo(uid, -1, physicsClientId=client)
    init = (np.array(placed.pos, float), np.array(placed.quat, float))
    return LoadedObject(asset, uid, links, art, part_of, init,
                        (np.array(dyn[3], float), mat_from_xyzw(dyn[4])))


def load_scene(scene: SceneSpec, client: int) -> LoadedScene:
    """Everything in `scene`, loaded into `client` (physics parameters included)."""
    pb.setGravity(0, 0, -9.81, physicsClientId=client)
    pb.setPhysicsEngineParameter(fixedTimeStep=scene.timestep, numSubSteps=1,
                                 deterministicOverlappingPairs=1, physicsClientId=client)
    robot, joints, links = load_panda(client)
    t = scene.table
    half = [t.half_size_xy[0], t.half_size_xy[1], t.thickness / 2]
    table = pb.createMultiBody(
        baseMass=0.0,
        baseCollisionShapeIndex=pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half,
                                                        physicsClientId=client),
        baseVisualShapeIndex=pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=t.rgba,
                                                  physicsClientId=client),
        basePosition=[t.center_xy[0], t.center_xy[1], -t.thickness / 2], physicsClientId=client)
    pb.changeDynamics(table, -1, lateralFriction=t.friction, physicsClientId=client)
    floor = pb.createMultiBody(  # seen, never touched (the table stands on nothing)
        baseMass=0.0, baseCollisionShapeIndex=-1,
        baseVisualShapeIndex=pb.createVisualShape(pb.GEOM_BOX, halfExtents=[10.0, 10.0, 0.001],
                                                  rgbaColor=[0.30, 0.32, 0.35, 1.0],
                                                  physicsClientId=client),
        basePosition=[0.0, 0.0, FLOOR_Z], physicsClientId=client)
    objects = {p.asset.name: _load_object(p, client) for p in scene.objects}
    return LoadedScene(robot, joints, links, table, floor, objects)
