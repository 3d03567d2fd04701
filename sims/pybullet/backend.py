"""PybulletBackend: the Backend protocol on PyBullet (DIRECT mode: no window, no display).

The same Panda (pybullet_data's URDF, which the MuJoCo model is built from too), the same
objects (their exported URDF), table and cameras as `sims.mujoco`. The IK is the MuJoCo side's
mink solver on the same kinematic model, so a TCP target gives the same joint targets in both.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb

from sims.core.camera import spec_rotation
from sims.core.types import CameraSpec, ContactForce, RenderOutput, SceneMesh, SceneSpec
from sims.mujoco.panda import (
    ARM_JOINTS,
    FINGER_JOINTS,
    FINGER_MAX,
    GRIPPER_FORCE,
    GRIPPER_SQUEEZE,
    HOME_QPOS,
    TCP_OFFSET,
    TORQUE,
)
from sims.pybullet import renderer as rendering
from sims.pybullet.frames import compose, mat_from_xyzw, wxyz_to_xyzw, xyzw_from_mat, xyzw_to_wxyz
from sims.pybullet.meshes import MeshFrames, scene_meshes
from sims.pybullet.scene import LoadedScene, load_scene

MAX_JOINT_STEP = 0.12  # rad per control step, as in sims.mujoco
# PyBullet's position motor corrects this fraction of the joint error per physics step; at
# 0.03 and 500 Hz the arm's time constant is ~0.07 s, near the MuJoCo actuators' kv/kp = 0.1 s.
ARM_POSITION_GAIN = 0.03
GRIPPER_POSITION_GAIN = 0.02
_OBJ_BASE = 13  # per object in the state: COM position 3, quaternion xyzw 4, velocities 6
SAVED_STATES = 256  # in-process PyBullet snapshots kept for exact replay (oldest dropped)


class PybulletBackend:
    """A Panda, a table and part-annotated objects in PyBullet (one DIRECT client each)."""

    name = "pybullet"

    def __init__(self) -> None:
        self._client: int | None = None
        self._ik = None
        self._renderer: int | None = None
        self._saved: dict[bytes, int] = {}  # get_state's bytes -> PyBullet saveState id
        self.segmentation_labels: list[str] = []
        self._mesh_frames: MeshFrames | None = None

    # -- construction --------------------------------------------------------------------
    def build(self, scene: SceneSpec) -> None:
        self.close()
        self.scene = scene
        self._client = pb.connect(pb.DIRECT)
        self._s: LoadedScene = load_scene(scene, self._client)
        self._arm = [self._s.robot_joints[j] for j in ARM_JOINTS]
        self._fingers = [self._s.robot_joints[j] for j in FINGER_JOINTS]
        self._hand = self._s.robot_links["panda_hand"]
        self._finger_side = {self._s.robot_links[f"panda_{s}finger"]: s for s in ("left", "right")}
        self._cameras: dict[str, CameraSpec] = {c.name: c for c in scene.cameras}
        self._moved: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # camera perturbations
        self.segmentation_labels = ["background", "table", "robot"]
        self._seg_lut: dict[int, int] = {self._s.table: 1, self._s.floor: 0}  # mask value -> label
        for name, obj in self._s.objects.items():
            for part in obj.asset.parts:
                self.segmentation_labels.append(f"{name}/{part}")
            for link, part in obj.link_part.items():
                self._seg_lut[obj.uid + ((link + 1) << 24)] = self.segmentation_labels.index(
                    f"{name}/{part}")
        self._time = 0.0
        self._targets = HOME_QPOS.copy()
        self._gripper = 1.0
        self.reset()

    def _c(self) -> int:
        if self._client is None:
            raise RuntimeError("the PyBullet backend is not built (call build(scene))")
        return self._client

    # -- simulation ----------------------------------------------------------------------
    def reset(self) -> None:
        c, robot = self._c(), self._s.robot
        for j, q in zip(self._arm, HOME_QPOS, strict=True):
            pb.resetJointState(robot, j, float(q), 0.0, physicsClientId=c)
        for j in self._fingers:
            pb.resetJointState(robot, j, FINGER_MAX, 0.0, physicsClientId=c)
        for name, obj in self._s.objects.items():
            for j in obj.art_joints:
                pb.resetJointState(obj.uid, j, 0.0, 0.0, physicsClientId=c)
            self.set_object_pose(name, *obj.init)
        self._time = 0.0
        self.apply(HOME_QPOS, 1.0)

    def apply(self, joint_targets: np.ndarray, gripper_open: float) -> None:
        c = self._c()
        self._targets = np.array(joint_targets, float)
        self._gripper = float(np.clip(gripper_open, 0.0, 1.0))
        pb.setJointMotorControlArray(self._s.robot, self._arm, pb.POSITION_CONTROL,
                                     targetPositions=self._targets.tolist(), forces=TORQUE.tolist(),
                                     positionGains=[ARM_POSITION_GAIN] * 7,
                                     velocityGains=[1.0] * 7, physicsClientId=c)
        # the fingers follow one opening target; "closed" lies below the joint limit, so a grasp
        # keeps squeezing at GRIPPER_FORCE however thin the part
        opening = -GRIPPER_SQUEEZE + self._gripper * (FINGER_MAX + GRIPPER_SQUEEZE)
        pb.setJointMotorControlArray(self._s.robot, self._fingers, pb.POSITION_CONTROL,
                                     targetPositions=[opening] * 2, forces=[GRIPPER_FORCE] * 2,
                                     positionGains=[GRIPPER_POSITION_GAIN] * 2,
                                     velocityGains=[1.0] * 2, physicsClientId=c)

    def step(self, n_substeps: int) -> None:
        c = self._c()
        for _ in range(n_substeps):
            pb.stepSimulation(physicsClientId=c)
        self._time += n_substeps * self.scene.timestep

    def get_state(self) -> np.ndarray:
        """Time, robot joints and targets, object base poses and velocities and joints.

        These restore a state in any process to ~1e-6 (PyBullet's contact caches, which warm
        start its solver, are not part of them); a state got in this process is also kept as a
        PyBullet snapshot, so `set_state` replays from it exactly."""
        state = self._explicit_state()
        key = state.tobytes()
        if key not in self._saved:
            if len(self._saved) >= SAVED_STATES:
                oldest = next(iter(self._saved))
                pb.removeState(self._saved.pop(oldest), physicsClientId=self._c())
            self._saved[key] = pb.saveState(physicsClientId=self._c())
        return state

    def _explicit_state(self) -> np.ndarray:
        c, robot = self._c(), self._s.robot
        parts = [[self._time]]
        js = pb.getJointStates(robot, self._arm + self._fingers, physicsClientId=c)
        parts += [[s[0] for s in js], [s[1] for s in js], self._targets, [self._gripper]]
        for obj in self._s.objects.values():
            pos, quat = pb.getBasePositionAndOrientation(obj.uid, physicsClientId=c)
            lin, ang = pb.getBaseVelocity(obj.uid, physicsClientId=c)
            parts += [pos, quat, lin, ang]
            if obj.art_joints:
                js = pb.getJointStates(obj.uid, obj.art_joints, physicsClientId=c)
                parts += [[s[0] for s in js], [s[1] for s in js]]
        return np.concatenate([np.asarray(p, float).reshape(-1) for p in parts])

    def _state_size(self) -> int:
        return 1 + 2 * 9 + 8 + sum(_OBJ_BASE + 2 * len(o.art_joints) for o in self._s.objects.values())

    def set_state(self, state: np.ndarray) -> None:
        c, robot = self._c(), self._s.robot
        state = np.asarray(state, float)
        if state.shape != (self._state_size(),):
            raise ValueError(f"state has shape {state.shape}, this scene needs ({self._state_size()},)")
        saved = self._saved.get(state.tobytes())
        if saved is not None:
            pb.restoreState(saved, physicsClientId=c)
        self._time = float(state[0])
        q, qd = state[1:10], state[10:19]
        for k, j in enumerate(self._arm + self._fingers):
            pb.resetJointState(robot, j, float(q[k]), float(qd[k]), physicsClientId=c)
        self.apply(state[19:26], float(state[26]))
        i = 27
        for obj in self._s.objects.values():
            s = state[i:i + _OBJ_BASE]
            pb.resetBasePositionAndOrientation(obj.uid, s[:3].tolist(), s[3:7].tolist(),
                                               physicsClientId=c)
            pb.resetBaseVelocity(obj.uid, s[7:10].tolist(), s[10:13].tolist(), physicsClientId=c)
            i += _OBJ_BASE
            n = len(obj.art_joints)
            for k, j in enumerate(obj.art_joints):
                pb.resetJointState(obj.uid, j, float(state[i + k]), float(state[i + n + k]),
                                   physicsClientId=c)
            i += 2 * n

    @property
    def arm_targets(self) -> np.ndarray:
        return self._targets.copy()

    # -- objects -------------------------------------------------------------------------
    def _base_frame(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World pose (position, rotation matrix) of object `name`'s base link frame."""
        obj = self._s.objects[name]
        pos, quat = pb.getBasePositionAndOrientation(obj.uid, physicsClientId=self._c())
        ip, ir = obj.inertial  # the COM frame in the link frame: link = com * inverse(inertial)
        rot = mat_from_xyzw(quat) @ ir.T
        return np.asarray(pos, float) - rot @ ip, rot

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pos, rot = self._base_frame(name)
        return pos, xyzw_to_wxyz(xyzw_from_mat(rot))

    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        c, obj = self._c(), self._s.objects[name]
        q = np.asarray(quat_wxyz, float)
        com_pos, com_rot = compose(pos, mat_from_xyzw(wxyz_to_xyzw(q / np.linalg.norm(q))),
                                   *obj.inertial)
        pb.resetBasePositionAndOrientation(obj.uid, com_pos.tolist(), xyzw_from_mat(com_rot),
                                           physicsClientId=c)
        pb.resetBaseVelocity(obj.uid, [0.0] * 3, [0.0] * 3, physicsClientId=c)

    def body_pose(self, object_name: str, body: str) -> tuple[np.ndarray, np.ndarray]:
        obj = self._s.objects[object_name]
        link = obj.links[body]
        if link < 0:
            return self.object_pose(object_name)
        st = pb.getLinkState(obj.uid, link, computeForwardKinematics=True, physicsClientId=self._c())
        return np.asarray(st[4], float), xyzw_to_wxyz(st[5])

    def object_joint_positions(self, name: str) -> np.ndarray:
        obj = self._s.objects[name]
        if not obj.art_joints:
            return np.zeros(0)
        js = pb.getJointStates(obj.uid, obj.art_joints, physicsClientId=self._c())
        return np.array([s[0] for s in js], float)

    def set_object_joint_positions(self, name: str, q: np.ndarray) -> None:
        """Teleport object `name`'s articulation joints (asset order; velocities zeroed)."""
        obj, c = self._s.objects[name], self._c()
        for j, v in zip(obj.art_joints, np.asarray(q, float), strict=True):
            pb.resetJointState(obj.uid, j, float(v), 0.0, physicsClientId=c)

    def object_mass(self, name: str) -> float:
        """Total mass of object `name` (kg), all its links."""
        obj, c = self._s.objects[name], self._c()
        return float(sum(pb.getDynamicsInfo(obj.uid, k, physicsClientId=c)[0]
                         for k in range(-1, pb.getNumJoints(obj.uid, physicsClientId=c))))

    def object_com(self, name: str) -> np.ndarray:
        obj, c = self._s.objects[name], self._c()
        total, moment = 0.0, np.zeros(3)
        for k in range(-1, pb.getNumJoints(obj.uid, physicsClientId=c)):
            m = pb.getDynamicsInfo(obj.uid, k, physicsClientId=c)[0]
            if k < 0:
                p = pb.getBasePositionAndOrientation(obj.uid, physicsClientId=c)[0]
            else:
                p = pb.getLinkState(obj.uid, k, computeForwardKinematics=True, physicsClientId=c)[0]
            total += m
            moment += m * np.asarray(p, float)
        return moment / total

    def finger_contacts(self) -> list[ContactForce]:
        c, out = self._c(), []
        for name, obj in self._s.objects.items():
            for cp in pb.getContactPoints(self._s.robot, obj.uid, physicsClientId=c):
                side = self._finger_side.get(cp[3])
                part = obj.link_part.get(cp[4])
                if side is not None and part is not None:
                    out.append(ContactForce(side, name, part, float(cp[9]), tuple(cp[6])))
        return out

    def object_table_contact(self, name: str) -> bool:
        return len(pb.getContactPoints(self._s.table, self._s.objects[name].uid,
                                       physicsClientId=self._c())) > 0

    # -- robot ---------------------------------------------------------------------------
    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        st = pb.getLinkState(self._s.robot, self._hand, computeForwardKinematics=True,
                             physicsClientId=self._c())
        rot = mat_from_xyzw(st[5])
        return np.asarray(st[4], float) + rot[:, 2] * TCP_OFFSET, rot

    def arm_joint_positions(self) -> np.ndarray:
        js = pb.getJointStates(self._s.robot, self._arm, physicsClientId=self._c())
        return np.array([s[0] for s in js], float)

    def gripper_width(self) -> float:
        js = pb.getJointStates(self._s.robot, self._fingers, physicsClientId=self._c())
        return float(js[0][0] + js[1][0])

    def solve_ik(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray) -> np.ndarray:
        if self._ik is None:
            from sims.mujoco.ik import PandaIK  # the same kinematic model as this Panda

            self._ik = PandaIK()
        q = self._ik.solve(pos, mat, q_seed)
        return q_seed + np.clip(q - q_seed, -MAX_JOINT_STEP, MAX_JOINT_STEP)

    # -- rendering -----------------------------------------------------------------------
    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        cam = self._cameras.get(camera)
        if cam is None:
            raise KeyError(f"no camera named {camera!r}")
        if camera in self._moved:
            return self._moved[camera][0].copy(), self._moved[camera][1].copy()
        pos, rot = np.asarray(cam.pos, float), spec_rotation(cam)
        if cam.body is None:
            return pos, rot
        st = pb.getLinkState(self._s.robot, self._s.robot_links[cam.body],
                             computeForwardKinematics=True, physicsClientId=self._c())
        return compose(st[4], mat_from_xyzw(st[5]), pos, rot)

    def apply_visual(self, change) -> None:
        """A camera change moves a fixed camera; lighting and appearance changes are not
        supported on PyBullet yet (ValueError). None restores the nominal cameras."""
        self._moved = {}
        if change is None:
            return
        if change.kind != "camera":
            raise ValueError(f"the pybullet backend does not render perturb={change.kind} yet "
                             "(supported: camera, pose_wide); use backend=mujoco")
        if self._cameras[change.camera].body is not None:
            raise ValueError(f"camera perturbation: camera {change.camera!r} rides on a body; "
                             "only fixed (world) cameras move")
        self._moved[change.camera] = (np.asarray(change.pos, float), np.asarray(change.rot, float))

    def render(self, camera: str, rgb: bool = True, depth: bool = False,
               segmentation: bool = False, size: tuple[int, int] | None = None) -> RenderOutput:
        cam = self._cameras.get(camera)
        if cam is None:
            raise KeyError(f"no camera named {camera!r}")
        if self._renderer is None:
            self._renderer = rendering.choose_renderer(self._c())
        w, h = size if size is not None else (cam.width, cam.height)
        img, dep, mask = rendering.render(self._c(), self._renderer, *self.camera_pose(camera),
                                          cam.fovy_deg, w, h, segmentation)
        seg = None
        if mask is not None:
            robot = (mask & ((1 << 24) - 1)) == self._s.robot
            seg = np.where(robot & (mask >= 0), 2, 0).astype(np.int32)
            for value, label in self._seg_lut.items():
                seg[mask == value] = label
        return RenderOutput(img if rgb else None, dep if depth else None, seg)

    def scene_meshes(self) -> list[SceneMesh]:
        meshes, self._mesh_frames = scene_meshes(self._s, self.scene.table)
        return meshes

    def mesh_poses(self, ids) -> tuple[np.ndarray, np.ndarray]:
        if self._mesh_frames is None:
            self.scene_meshes()
        return self._mesh_frames.poses(ids, self._c())

    def interactive_viewer(self, on_key=None):
        # PyBullet's window is a GUI client of its own (one per process, on a display): this
        # DIRECT client cannot show one
        raise RuntimeError("the PyBullet backend has no interactive window (PyBullet's GUI "
                           "needs a display and its own client); view the episode in rerun, "
                           "--web or --video instead")

    def close(self) -> None:
        if self._client is not None:
            pb.disconnect(physicsClientId=self._client)
            self._client = None
            self._saved = {}
            self._renderer = None
            self._mesh_frames = None
