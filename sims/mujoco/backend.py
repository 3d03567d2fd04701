"""MujocoBackend: the Backend protocol on MuJoCo (physics, IK control, rendering, contacts)."""

from __future__ import annotations

import mujoco
import numpy as np

from sims.core.perturb import VisualChange
from sims.core.types import ContactForce, RenderOutput, SceneMesh, SceneSpec
from sims.mujoco.ik import PandaIK
from sims.mujoco.meshes import scene_meshes
from sims.mujoco.panda import ARM_JOINTS, FINGER_JOINTS, FINGER_MAX, HOME_QPOS
from sims.mujoco.renderer import Renderer
from sims.mujoco.scene import TABLE_GEOM, build_spec
from sims.mujoco.visuals import ModelVisuals

MAX_JOINT_STEP = 0.12  # rad per control step: joint targets never jump further than this
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


class MujocoBackend:
    """A Panda, a table and part-annotated objects in MuJoCo.

    Control: `apply(joint_targets, gripper_open)` sets position-actuator targets; `step(n)`
    integrates. The IK in `solve_ik` runs on a separate robot-only model, so solving never
    touches the simulation state. Renderers are created on first use, inside the calling
    process.
    """

    name = "mujoco"

    def __init__(self) -> None:
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._renderers: dict[tuple[int, int], Renderer] = {}
        self._ik: PandaIK | None = None
        self.segmentation_labels: list[str] = []  # filled by build()

    # -- construction --------------------------------------------------------------------
    def build(self, scene: SceneSpec) -> None:
        self.close()
        self.scene = scene
        self.model = build_spec(scene).compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in ARM_JOINTS]
        self._arm_qpos = np.array([m.jnt_qposadr[j] for j in jid])
        self._arm_dof = np.array([m.jnt_dofadr[j] for j in jid])
        fid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in FINGER_JOINTS]
        self._finger_qpos = np.array([m.jnt_qposadr[j] for j in fid])
        self._arm_act = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR,
                                                    j.replace("joint", "act")) for j in ARM_JOINTS])
        self._gripper_act = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "gripper")
        self._tcp_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tcp")
        self._finger_geoms = {
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"panda_{side}finger_pad"): side
            for side in ("left", "right")}
        self._index_objects(scene)
        self._visuals = ModelVisuals(m)
        self._state = np.empty(mujoco.mj_stateSize(m, _STATE_SPEC))
        self.reset()

    def _index_objects(self, scene: SceneSpec) -> None:
        m = self.model
        self.segmentation_labels = ["background", "table", "robot"]
        self._geom_label = np.full(m.ngeom, 2, np.int32)  # robot unless found below
        self._geom_part: dict[int, tuple[str, str]] = {}
        table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, TABLE_GEOM)
        self._geom_label[table] = 1
        self._geom_label[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")] = 0
        self._objects: dict[str, dict] = {}
        for placed in scene.objects:
            a = placed.asset
            jnt = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{a.name}/root")
            bodies = {b.name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"{a.name}/{b.name}")
                      for b in a.bodies}
            art = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{a.name}/{b.joint.name}")
                   for b in a.bodies if b.joint is not None]
            self._objects[a.name] = {
                "qpos": m.jnt_qposadr[jnt], "dof": m.jnt_dofadr[jnt], "bodies": bodies,
                "art_qpos": np.array([m.jnt_qposadr[j] for j in art], int),
                "init": (np.array(placed.pos, float), np.array(placed.quat, float)),
            }
            for part in a.parts:
                self.segmentation_labels.append(f"{a.name}/{part}")
            for g in a.geoms:
                gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{a.name}/{g.name}")
                self._geom_label[gid] = self.segmentation_labels.index(f"{a.name}/{g.part}")
                self._geom_part[gid] = (a.name, g.part)

    # -- simulation ----------------------------------------------------------------------
    def reset(self) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._arm_qpos] = HOME_QPOS
        d.qpos[self._finger_qpos] = FINGER_MAX
        d.ctrl[self._arm_act] = HOME_QPOS
        d.ctrl[self._gripper_act] = FINGER_MAX
        for name, obj in self._objects.items():
            self.set_object_pose(name, *obj["init"])
        mujoco.mj_forward(m, d)

    def apply(self, joint_targets: np.ndarray, gripper_open: float) -> None:
        self.data.ctrl[self._arm_act] = joint_targets
        lo, hi = self.model.actuator_ctrlrange[self._gripper_act]
        self.data.ctrl[self._gripper_act] = lo + float(np.clip(gripper_open, 0.0, 1.0)) * (hi - lo)

    def step(self, n_substeps: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n_substeps)

    def get_state(self) -> np.ndarray:
        mujoco.mj_getState(self.model, self.data, self._state, _STATE_SPEC)
        return self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        if state.shape != self._state.shape:
            raise ValueError(f"state has shape {state.shape}, this model needs {self._state.shape}")
        mujoco.mj_setState(self.model, self.data, np.asarray(state, float), _STATE_SPEC)
        mujoco.mj_forward(self.model, self.data)

    @property
    def arm_targets(self) -> np.ndarray:
        """The arm's current joint position targets (the IK seed: part of the saved state)."""
        return self.data.ctrl[self._arm_act].copy()

    # -- objects -------------------------------------------------------------------------
    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        adr = self._objects[name]["qpos"]
        return self.data.qpos[adr:adr + 3].copy(), self.data.qpos[adr + 3:adr + 7].copy()

    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        obj = self._objects[name]
        self.data.qpos[obj["qpos"]:obj["qpos"] + 3] = pos
        self.data.qpos[obj["qpos"] + 3:obj["qpos"] + 7] = np.asarray(quat_wxyz) / np.linalg.norm(quat_wxyz)
        self.data.qvel[obj["dof"]:obj["dof"] + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def body_pose(self, object_name: str, body: str) -> tuple[np.ndarray, np.ndarray]:
        bid = self._objects[object_name]["bodies"][body]
        return self.data.xpos[bid].copy(), self.data.xquat[bid].copy()

    def object_joint_positions(self, name: str) -> np.ndarray:
        return self.data.qpos[self._objects[name]["art_qpos"]].copy()

    def object_mass(self, name: str) -> float:
        """Total mass of object `name` (kg), all its bodies."""
        return float(self.model.body_subtreemass[self._objects[name]["bodies"]["base"]])

    def object_com(self, name: str) -> np.ndarray:
        return self.data.subtree_com[self._objects[name]["bodies"]["base"]].copy()

    def finger_contacts(self) -> list[ContactForce]:
        m, d = self.model, self.data
        out, f6 = [], np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            for finger_geom, other in ((g1, g2), (g2, g1)):
                side = self._finger_geoms.get(finger_geom)
                if side is None or other not in self._geom_part:
                    continue
                mujoco.mj_contactForce(m, d, i, f6)
                obj, part = self._geom_part[other]
                out.append(ContactForce(side, obj, part, float(f6[0]), tuple(c.pos)))
        return out

    def object_table_contact(self, name: str) -> bool:
        """Whether any geom of object `name` touches the table."""
        d = self.data
        table = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, TABLE_GEOM)
        for i in range(d.ncon):
            g1, g2 = int(d.contact[i].geom1), int(d.contact[i].geom2)
            other = g2 if g1 == table else g1 if g2 == table else None
            if other is not None and self._geom_part.get(other, ("",))[0] == name:
                return True
        return False

    # -- robot ---------------------------------------------------------------------------
    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.site_xpos[self._tcp_site].copy(), d.site_xmat[self._tcp_site].reshape(3, 3).copy()

    def arm_joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._arm_qpos].copy()

    def gripper_width(self) -> float:
        return float(self.data.qpos[self._finger_qpos].sum())

    def solve_ik(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray) -> np.ndarray:
        if self._ik is None:
            self._ik = PandaIK()
        q = self._ik.solve(pos, mat, q_seed)
        return q_seed + np.clip(q - q_seed, -MAX_JOINT_STEP, MAX_JOINT_STEP)

    # -- rendering -----------------------------------------------------------------------
    def render(self, camera: str, rgb: bool = True, depth: bool = False,
               segmentation: bool = False, size: tuple[int, int] | None = None) -> RenderOutput:
        """Render `camera` at its own resolution, or at `size` = (width, height)."""
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            raise KeyError(f"no camera named {camera!r}")
        w, h = size if size is not None else (int(v) for v in self.model.cam_resolution[cid])
        renderer = self._renderers.get((w, h))
        if renderer is None:
            renderer = self._renderers[(w, h)] = Renderer(self.model, w, h, self.scene.shadows)
        img, dep, seg = renderer.render(self.data, camera, rgb, depth, segmentation)
        if seg is not None:
            seg = np.where(seg >= 0, self._geom_label[np.maximum(seg, 0)], 0).astype(np.int32)
        return RenderOutput(img, dep, seg)

    def apply_visual(self, change: VisualChange | None) -> None:
        """Render with `change` (`sims.core.perturb`: lighting, a fixed camera's pose, table and
        floor appearance) instead of the nominal look; None restores it. Physics is untouched."""
        for tex in self._visuals.apply(change):
            for renderer in self._renderers.values():
                renderer.upload_texture(tex)
        mujoco.mj_camlight(self.model, self.data)  # camera poses in `data` follow the model's now

    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cid < 0:
            raise KeyError(f"no camera named {camera!r}")
        # MuJoCo's camera frame is sims.core.camera's convention (x right, y up, looks along -z)
        return self.data.cam_xpos[cid].copy(), self.data.cam_xmat[cid].reshape(3, 3).copy()

    def scene_meshes(self) -> list[SceneMesh]:
        parts = {f"{p.asset.name}/{g.name}": g.part for p in self.scene.objects
                 for g in p.asset.geoms}
        return scene_meshes(self.model, parts)

    def mesh_poses(self, ids) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, int)
        return self.data.geom_xpos[ids].copy(), self.data.geom_xmat[ids].reshape(-1, 3, 3).copy()

    def interactive_viewer(self, on_key=None):
        """MuJoCo's passive viewer on this simulation (`sims.mujoco.viewer.PassiveViewer`; needs
        a display, and MUJOCO_GL=glfw set before mujoco was first imported)."""
        from sims.mujoco.viewer import PassiveViewer

        return PassiveViewer(self.model, self.data, on_key)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers = {}
