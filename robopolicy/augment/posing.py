"""World poses of a scene's segments at each step of a stored episode, from its records.

A store records per step ``robot_joints`` (arm joints 7 + gripper width 1), ``object_pose``
(pos 3 + quaternion wxyz 4) and ``articulation`` (the object's joints, zero padded): with the
episode's task (category, instance) that is all the kinematic state of the scene. MuJoCo's own
model of the scene (the one the backend builds) turns it into body poses with
``mj_kinematics``; nothing here re-implements forward kinematics.

Segments are named like the backend's segmentation labels, split per robot link:
``robot/<body>`` (every Panda body), ``<object>/<part>`` (the part's body; a part spanning
several bodies, like the two blades of scissors, also gets ``<object>/<part>/<body>`` for each)
and ``table`` (fixed). A pose is ``(rot (3, 3), trans (3,))``: the segment's own frame (its
body frame) to the world, as `GaussianScene.posed` takes it. A scene whose Gaussians are in the
world frame at some reference state moves with `motions(poses, reference)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Pose = tuple[np.ndarray, np.ndarray]  # (rot (3, 3), trans (3,)): own frame -> world


@dataclass(frozen=True)
class RecordedState:
    """The kinematic state of one step as a store records it."""

    robot_joints: np.ndarray
    """(8,) arm joints 7 + gripper width 1 (metres, both fingers together)."""
    object_pose: np.ndarray
    """(7,) object root position 3 + quaternion wxyz 4."""
    articulation: np.ndarray
    """(>= n_joints,) the object's joints in its body order, zero padded."""


class ScenePosing:
    """Segment poses of the suite's scene holding one object instance (built once; cheap to
    query): a MuJoCo model compiled exactly as the backend compiles it, used for kinematics only."""

    def __init__(self, category: str, instance_id: int) -> None:
        import mujoco

        from sims.core.control import CONTROL_HZ
        from sims.core.types import PlacedObject, SceneSpec
        from sims.mujoco.panda import ARM_JOINTS, FINGER_JOINTS
        from sims.mujoco.scene import build_spec
        from sims.objects import make_instance

        self.asset = make_instance(category, instance_id)
        scene = SceneSpec(objects=[PlacedObject(self.asset, (0.5, 0.0, 0.002))], cameras=[],
                          control_hz=CONTROL_HZ)
        self.model = build_spec(scene).compile()
        self.data = mujoco.MjData(self.model)
        m, obj = self.model, self.asset.name

        def qadr(joint: str) -> int:
            return int(m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)])

        def bid(body: str) -> int:
            return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)

        self._arm = np.array([qadr(j) for j in ARM_JOINTS])
        self._fingers = np.array([qadr(j) for j in FINGER_JOINTS])
        self._root = qadr(f"{obj}/root")
        # the backend's order of `object_joint_positions` (and so of `articulation`)
        self._art = np.array([qadr(f"{obj}/{b.joint.name}") for b in self.asset.bodies
                              if b.joint is not None], int)
        self._bodies: dict[str, int] = {}
        for b in range(1, m.nbody):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b)
            if name and name.startswith("panda_"):
                self._bodies[f"robot/{name}"] = b
        for part_name, part in self.asset.parts.items():
            ids = [bid(f"{obj}/{body}") for body in part.bodies]
            self._bodies[f"{obj}/{part_name}"] = ids[0]
            if len(ids) > 1:
                for body, b in zip(part.bodies, ids, strict=True):
                    self._bodies[f"{obj}/{part_name}/{body}"] = b

    @property
    def segments(self) -> list[str]:
        """Every segment this posing gives a pose for (``table`` included)."""
        return [*self._bodies, "table"]

    def poses(self, state: RecordedState) -> dict[str, Pose]:
        """{segment: (rot, trans)} at one recorded state."""
        import mujoco

        d = self.data
        d.qpos[:] = self.model.qpos0
        joints = np.asarray(state.robot_joints, float)
        d.qpos[self._arm] = joints[:7]
        # the fingers are coupled (an equality keeps them symmetric): each holds half the width
        d.qpos[self._fingers] = joints[7] / 2.0
        pose = np.asarray(state.object_pose, float)
        d.qpos[self._root:self._root + 3] = pose[:3]
        d.qpos[self._root + 3:self._root + 7] = pose[3:] / np.linalg.norm(pose[3:])
        d.qpos[self._art] = np.asarray(state.articulation, float)[: len(self._art)]
        mujoco.mj_kinematics(self.model, d)
        out = {name: (d.xmat[b].reshape(3, 3).copy(), d.xpos[b].copy())
               for name, b in self._bodies.items()}
        out["table"] = (np.eye(3), np.zeros(3))
        return out

    def episode_poses(self, records: Mapping[str, np.ndarray]) -> list[dict[str, Pose]]:
        """The poses at every step of an episode's records (``robot_joints``, ``object_pose``,
        ``articulation``, each with a leading time axis)."""
        return [self.poses(RecordedState(j, p, a)) for j, p, a in zip(
            records["robot_joints"], records["object_pose"], records["articulation"],
            strict=True)]


def episode_posing(store, episode: int) -> tuple[ScenePosing, list[dict[str, Pose]]]:
    """The posing of a stored episode's scene and its segment poses at every step. A store
    without the records posing needs is a one-line RobopolicyError."""
    from robopolicy.errors import RobopolicyError
    from sims.partmanip.obs_layout import RECORDED_KEYS

    missing = [k for k in RECORDED_KEYS if k not in store.keys]
    if missing:
        raise RobopolicyError(f"dataset {store.path}: has no {missing} per step, which posing "
                              "needs; collect it again with `robopolicy collect`")
    meta = store.episode_meta(episode)
    posing = ScenePosing(meta["category"], meta["instance_id"])
    return posing, posing.episode_poses(store.get_episode(episode, list(RECORDED_KEYS)))


def motions(poses: Mapping[str, Pose], reference: Mapping[str, Pose]) -> dict[str, Pose]:
    """World-to-world motions ``pose @ reference^-1`` per segment: what moves Gaussians built in
    the world frame at the `reference` state (e.g. the scene's reset state) to `poses`."""
    out = {}
    for name, (rot, trans) in poses.items():
        r0, t0 = reference[name]
        rel = rot @ r0.T
        out[name] = (rel, trans - rel @ t0)
    return out
