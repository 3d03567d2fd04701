"""Physical sanity checks of generated instances, used by tests/sims/test_library.py:
does it rest stably on a table, do its joints move, can the gripper grasp its parts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.core.types import ObjectAsset
from sims.objects.export import to_mjcf
from sims.objects.kinematics import object_points


@dataclass(frozen=True)
class DropResult:
    """Outcome of releasing an instance above a table."""

    max_penetration: float  # deepest object-table contact seen after the first impact (m)
    final_speed: float  # linear speed of the root body at the end (m/s)
    final_angular_speed: float  # rad/s
    drift_xy: float  # horizontal distance travelled (m)
    settled: bool


def _object_on_table(asset: ObjectAsset, height: float, fixed: bool = False):
    import mujoco

    spec = mujoco.MjSpec.from_string(to_mjcf(asset))
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    table = spec.worldbody.add_geom()
    table.name = "table"
    table.type = mujoco.mjtGeom.mjGEOM_BOX
    table.size = [0.5, 0.5, 0.025]
    table.pos = [0.0, 0.0, -0.025]
    table.friction = [0.8, 0.005, 0.0001]
    base = spec.body("base")
    base.pos = [0.0, 0.0, height]
    if fixed:
        spec.delete(base.first_joint())
    return spec


def drop_test(asset: ObjectAsset, height: float = 0.01, seconds: float = 2.0) -> DropResult:
    """Release the instance `height` above a table and simulate `seconds`."""
    import mujoco

    model = _object_on_table(asset, height).compile()
    data = mujoco.MjData(model)
    table = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table")
    start = data.qpos[:2].copy()
    deepest = 0.0
    for _ in range(int(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
        for c in data.contact[: data.ncon]:
            if table in (c.geom1, c.geom2):
                deepest = max(deepest, -float(c.dist))
    v = np.linalg.norm(data.qvel[:3])
    w = np.linalg.norm(data.qvel[3:6])
    drift = float(np.linalg.norm(data.qpos[:2] - start))
    return DropResult(deepest, float(v), float(w), drift, bool(v < 0.01 and w < 0.1))


def joint_sweep(asset: ObjectAsset, seconds: float = 1.5) -> dict[str, tuple[float, float]]:
    """Drive every joint (object base held fixed, gravity off) towards each end of its range
    with a position servo; returns the {joint: (lowest, highest)} positions reached."""
    import mujoco

    spec = _object_on_table(asset, 0.3, fixed=True)
    spec.option.gravity = [0.0, 0.0, 0.0]
    joints = [b.joint for b in asset.bodies if b.joint is not None]
    for j in joints:
        act = spec.add_actuator()
        act.name = j.name
        act.target = j.name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=20.0, kv=1.0)
        act.ctrlrange = list(j.range)
        act.ctrllimited = True
    model = spec.compile()
    reached = {}
    for i, j in enumerate(joints):
        adr = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j.name)]
        ends = []
        for goal in j.range:
            data = mujoco.MjData(model)
            data.ctrl[i] = goal
            for _ in range(int(seconds / model.opt.timestep)):
                mujoco.mj_step(model, data)
            ends.append(float(data.qpos[adr]))
        reached[j.name] = (min(ends), max(ends))
    return reached


def grasp_parts(asset: ObjectAsset) -> list[str]:
    """The parts of an instance that tasks may grasp (the spec's `grasp_parts` it has)."""
    from sims.objects.geometry import load_category_spec

    wanted = load_category_spec(asset.category).get("grasp_parts", [])
    return [p for p in wanted if p in asset.parts]


def topdown_grasp(asset: ObjectAsset, part: str, yaw: float = 0.0):
    """The best top-down grasp on `part` with the instance resting on the table at `yaw`
    (joints at 0), or None: the gripper's 8 cm opening must span an antipodal region of the
    part with the fingertips clear of the table and the hand clear of the object."""
    from sims.core.rotations import rot_z
    from sims.partmanip.grasp import plan_topdown_grasp

    pts, nrm, idx, names = object_points(asset)
    rot = rot_z(yaw)
    return plan_topdown_grasp(pts @ rot.T, nrm @ rot.T, idx == names.index(part))
