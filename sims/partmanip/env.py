"""PartManipEnv: the part-level manipulation suite as a gymnasium environment.

Control at `CONTROL_HZ` (20 Hz). Action (`ACTION_DIM` = 10,): absolute TCP target in the robot base frame,
``pos (3) + rot6d (6) + gripper (1)`` with gripper in [0, 1] (1 = open); `action_mode="delta"`
adds pos/rotation to the previous target instead.

Observation keys (each optional; layout version `OBS_LAYOUT_VERSION` = 2,
`sims.partmanip.obs_layout`). Task-level keys never carry the current skill:

- ``proprio`` (17,) float32 = arm joints 7 + gripper width 1 + TCP pos 3 + TCP rot6d 6;
- ``state`` (9 + `articulation_dim`,) = object pos 3 + object rot6d 6 + articulation;
- ``rgb.<cam>`` (H,W,3) uint8, ``depth.<cam>`` (H,W) float32 metres (at most `MAX_DEPTH`);
- ``pcd`` (`pcd_points`, 3) float32 = the object's points seen by the agentview depth camera,
  xyz in metres in the robot base frame;
- ``robot_joints`` (8,) = arm joints 7 + gripper width 1; ``object_pose`` (7,) = pos 3 +
  quaternion wxyz 4; ``articulation`` (4,) = every object joint, zero padded (demo stores
  record these three whatever `obs_keys` says).

Skill-level keys follow the env's skill source: the ground-truth chain tracker (the oracle, the
default) or the skill a planner set with `set_skill(call)` (`sims.partmanip.skill_source`):

- ``skill_state`` (20,) = target-part centroid 3 + target-part principal axis 3 + skill goal
  position 3 + skill type one-hot 5 (grasp touch move rotate release) + direction one-hot 6
  (front back left right top bottom; a move's direction, a rotate's facing); after the chain,
  zeros but the goal (where the object was when the last skill began);
- ``skill_delta`` (6,) = goal - object position 3 + part centroid - TCP 3 (`obs_layout.skill_delta`);
- ``skill_geom`` (9,) = the target part's bounding box (world axes) min - centroid 3 and max -
  centroid 3 + its surface point nearest the TCP - TCP 3 (`obs_layout.skill_geom`);
- ``skill_pcd`` (`pcd_points`, 4) = the ``pcd`` points + 1.0 on the skill's target part;
- ``part_mask.<cam>`` (H,W) bool, True on the skill's target part.

`info` carries task_id, instruction, skill_instruction (the source's skill), skill_source,
skill_index, success, completion and predicates; skill_index, success, completion and
predicates are the ground-truth chain's, whatever the source. Every action and observation lies
in the declared spaces (`sims.partmanip.spaces`): positions beyond the arm's reach are clipped
into it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import gymnasium as gym
import numpy as np

from sims.core.camera import fixed_camera_rays, pixel_rays
from sims.core.control import ACTION_DIM, CONTROL_HZ
from sims.core.perturb import CameraChange
from sims.core.registry import make_backend
from sims.core.rotations import mat_to_rot6d, quat_to_mat, rot6d_to_mat, yaw_quat
from sims.core.types import PlacedObject, SceneSpec
from sims.objects import make_instance
from sims.objects.kinematics import object_points
from sims.objects.spatial import SPATIAL_PARTS
from sims.partmanip.chain import ChainTracker
from sims.partmanip.env_config import PCD_CAMERA, EnvConfig, default_cameras, initial_pose
from sims.partmanip.env_state import EnvState
from sims.partmanip.instructions import skill_instruction
from sims.partmanip.obs_layout import (
    ARTICULATION_RECORD_DIM,
    RECORDED_KEYS,
    skill_delta,
    skill_geom,
)
from sims.partmanip.perturb import EpisodePerturbation, episode_perturbation, make_perturbation
from sims.partmanip.pointcloud import depth_cloud, principal_axis
from sims.partmanip.predicates import Snapshot
from sims.partmanip.skill_source import CurrentSkill, SkillSource, call_from_dict, skill_state
from sims.partmanip.spaces import (
    DELTA_POS_MAX,
    MAX_DEPTH,
    PCD_WORKSPACE,
    action_space,
    clip_target_position,
    observation_space,
)
from sims.partmanip.tasks import SkillCall, TaskPool, TaskSpec


class PartManipEnv(gym.Env):
    """Part-level manipulation of one object on a table by a Franka Panda."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(CONTROL_HZ)}

    def __init__(self, config: EnvConfig | None = None, tasks=None,
                 render_mode: str | None = "rgb_array"):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r}: known are None and "
                             f"{self.metadata['render_modes']}")
        self.config = config or EnvConfig()
        self.tasks = tasks if tasks is not None else TaskPool()  # or a CatalogTasks
        self.render_mode = render_mode
        self.backend = None  # created on the first reset, inside the process that steps it
        w, h = self.config.image_size
        self.cameras = default_cameras(w, h)
        self._camera_names = [c.name for c in self.cameras]
        for key in self.config.obs_keys:
            self._check_obs_key(key)
        if {"pcd", "skill_pcd"} & set(self.config.obs_keys):  # the camera is fixed: its pixel rays never change
            cam = next(c for c in self.cameras if c.name == PCD_CAMERA)
            self._pcd_origin, self._pcd_rays = fixed_camera_rays(cam)
        self.observation_space = observation_space(
            self.config.obs_keys, self.config.image_size, self.config.articulation_dim,
            self.config.pcd_points)
        self.action_space = action_space(self.config.action_mode)
        self._built_for: tuple[str, int] | None = None
        self.task: TaskSpec | None = None
        self.asset = None
        self._target = np.zeros(ACTION_DIM)
        self._perturb = make_perturbation(self.config.perturb)
        self.perturbation: EpisodePerturbation | None = None  # this episode's (config.perturb)
        # seconds spent in physics (with IK) and in rendering observations, for profiling
        self.timings = {"physics": 0.0, "render": 0.0}

    @property
    def commanded_target(self) -> np.ndarray:
        """The last absolute action (10,) sent to the robot; at reset, the TCP's own pose with
        the gripper open (so stepping it holds the robot still)."""
        return self._target.copy()

    @property
    def elapsed_steps(self) -> int:
        """Control steps taken since the last reset (the episode ends at `task.horizon`)."""
        return self._steps

    # -- spaces --------------------------------------------------------------------------
    def _check_obs_key(self, key: str) -> None:
        kind, _, cam = key.partition(".")
        if key in ("proprio", "state", "skill_state", "skill_delta", "skill_geom", "pcd",
                   "skill_pcd", *RECORDED_KEYS):
            return
        if kind in ("rgb", "depth", "part_mask") and cam in self._camera_names:
            return
        raise ValueError(f"unknown observation key {key!r} (cameras: {self._camera_names})")

    @property
    def state_dim(self) -> int:
        return 3 + 6 + self.config.articulation_dim

    def shape_meta(self) -> dict:
        """diffusion_policy-style shape metadata of observations and actions."""
        obs = {}
        for key, space in self.observation_space.spaces.items():
            kind = key.split(".")[0]
            typ = {"rgb": "rgb", "depth": "depth", "part_mask": "mask", "pcd": "pcd",
                   "skill_pcd": "pcd"}.get(kind, "low_dim")
            obs[key] = {"shape": list(space.shape), "type": typ}
        return {"obs": obs, "action": {"shape": [ACTION_DIM]}}

    # -- episode -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode: `options["task"]` (a TaskSpec or its dict) from its `init_seed`
        (or from `seed` if given); without a task, the source's task for `seed` (a catalog
        split's episodes wrap round, so any seed gives an episode). `options["state"]` (an
        EnvState or its dict, from `get_state`) continues from that explicit state instead
        (its task, unless `options["task"]` names one). `options["placement"]` = (x, y, yaw)
        places the object there instead of where `init_seed` puts it (augmented demos). With
        `config.perturb`, the episode's perturbation is drawn from its identity and applied
        (`self.perturbation`; an explicit placement outranks pose_wide's). The skill source is
        the oracle."""
        super().reset(seed=seed)
        if (options or {}).get("state") is not None:
            state = EnvState.from_dict(options["state"])
            if options.get("task") is not None:
                task = options["task"]
                task = task.to_dict() if isinstance(task, TaskSpec) else dict(task)
                state = replace(state, task=task)
            self.set_state(replace(state, skill=None))
            return self._observation(), self._info()
        task = (options or {}).get("task")
        if isinstance(task, dict):
            task = TaskSpec.from_dict(task)
        if task is None:
            index = 0 if seed is None else seed
            if hasattr(self.tasks, "__len__"):
                index %= len(self.tasks)
            task = self.tasks.task(index)
        init_seed = task.init_seed if seed is None else seed
        self.task = task
        self._ensure_scene(task.category, task.instance_id)
        pos, yaw = initial_pose(init_seed, self.config)
        if self._apply_perturbation(task, init_seed):
            pos[:2] = self.perturbation.placement
        placement = (options or {}).get("placement")
        if placement is not None:
            x, y, yaw = (float(v) for v in placement)
            pos = np.array([x, y, pos[2]])
        self.backend.reset()
        self.backend.set_object_pose(self.asset.name, pos, yaw_quat(yaw))
        self.backend.step(self.config.settle_steps)
        tcp_pos, tcp_mat = self.backend.tcp_pose()
        self._target = np.concatenate([tcp_pos, mat_to_rot6d(tcp_mat), [1.0]])
        self._steps = 0
        self.tracker = ChainTracker(task)
        self.tracker.reset(self.snapshot())
        self.skill_source = SkillSource(self.tracker)
        return self._observation(), self._info()

    def _apply_perturbation(self, task: TaskSpec, init_seed: int) -> bool:
        """Draw and apply the episode's perturbation (none without `config.perturb`); returns
        whether it places the object (pose_wide). A moved pcd camera gets its pixel rays anew."""
        if self._perturb is None:
            return False
        self.perturbation = p = episode_perturbation(self._perturb, task, init_seed,
                                                     self.config, self.cameras)
        if p.visual is not None:
            self.backend.apply_visual(p.visual)
        if isinstance(p.visual, CameraChange) and p.visual.camera == PCD_CAMERA:
            cam = next(c for c in self.cameras if c.name == PCD_CAMERA)
            self._pcd_origin = np.asarray(p.visual.pos)
            self._pcd_rays = pixel_rays(self._pcd_origin, np.asarray(p.visual.rot), cam.fovy_deg,
                                        cam.width, cam.height)
        return p.placement is not None

    def set_skill(self, call: SkillCall | dict | None,
                  history: tuple[SkillCall, ...] | None = None) -> None:
        """Make a planner's `call` the current skill of the skill-level observations (from this
        state: a move's goal starts where the object is now); `history`: the calls done before
        it (default: the calls set before since reset). None returns to the oracle (the chain
        tracker). Success is still the chain's. Takes effect from the next observation."""
        if call is not None:
            call = call_from_dict(call)
            part = call.params.get("part")
            if part is not None and part not in self.asset.parts and part not in SPATIAL_PARTS:
                raise ValueError(f"set_skill {call}: {self.task.category} instance "
                                 f"{self.task.instance_id} has no part {part!r} (parts: "
                                 f"{sorted(self.asset.parts)} and spatial {list(SPATIAL_PARTS)})")
            if history is not None:
                history = tuple(call_from_dict(c) for c in history)
        self.skill_source.set(call, self.backend.object_pose(self.asset.name)[0], history)

    def observe(self) -> tuple[dict[str, np.ndarray], dict]:
        """(observation, info) of the current state, without stepping (e.g. after set_skill)."""
        return self._observation(), self._info()

    def current_skill(self) -> CurrentSkill:
        """The skill-level observations' current skill, from the skill source."""
        return self.skill_source.current()

    def _ensure_scene(self, category: str, instance_id: int) -> None:
        if self._built_for == (category, instance_id):
            return
        if self.backend is None:
            self.backend = make_backend(self.config.backend)
        self.asset = make_instance(category, instance_id)
        scene = SceneSpec(objects=[PlacedObject(self.asset, (0.5, 0.0, 0.002))],
                          cameras=list(self.cameras),
                          control_hz=CONTROL_HZ)
        self.backend.build(scene)
        self._substeps = scene.substeps
        self._built_for = (category, instance_id)
        pts, _, idx, names = object_points(self.asset)
        self._axes = {n: principal_axis(pts[idx == i]) for i, n in enumerate(names)}

    def step(self, action):
        t0 = time.perf_counter()
        a = np.asarray(action, dtype=np.float64).reshape(ACTION_DIM)
        if self.config.action_mode == "delta":
            a = self._apply_delta(a)
        pos, mat = clip_target_position(a[:3]), rot6d_to_mat(a[3:9])
        self._target = np.concatenate([pos, mat_to_rot6d(mat), [np.clip(a[9], 0.0, 1.0)]])
        q = self.backend.solve_ik(pos, mat, self.backend.arm_targets)
        self.backend.apply(q, self._target[9])
        self.backend.step(self._substeps)
        self._steps += 1
        self.tracker.update(self.snapshot())
        success = self.tracker.done  # the ground-truth chain, whatever the skill source
        truncated = self._steps >= self.task.horizon and not success
        t1 = time.perf_counter()
        obs = self._observation()
        self.timings["physics"] += t1 - t0
        self.timings["render"] += time.perf_counter() - t1
        return obs, float(success), success, truncated, self._info()

    def _apply_delta(self, a: np.ndarray) -> np.ndarray:
        prev_mat = rot6d_to_mat(self._target[3:9])
        mat = rot6d_to_mat(a[3:9]) @ prev_mat
        step = np.clip(a[:3], -DELTA_POS_MAX, DELTA_POS_MAX)
        return np.concatenate([self._target[:3] + step, mat_to_rot6d(mat), a[9:]])

    # -- observation -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The scene as the predicates see it."""
        b, name = self.backend, self.asset.name
        return Snapshot(
            asset=self.asset,
            body_poses={body.name: b.body_pose(name, body.name) for body in self.asset.bodies},
            contacts=b.finger_contacts(), on_table=b.object_table_contact(name),
            tcp_pos=b.tcp_pose()[0], gripper_width=b.gripper_width())

    def target_part(self) -> str | None:
        """The part the current skill (of the skill source) acts on."""
        return self.current_skill().part

    def _proprio(self) -> np.ndarray:
        pos, mat = self.backend.tcp_pose()
        return np.concatenate([self.backend.arm_joint_positions(), [self.backend.gripper_width()],
                               pos, mat_to_rot6d(mat)]).astype(np.float32)

    def _state(self) -> np.ndarray:
        obj_pos, obj_quat = self.backend.object_pose(self.asset.name)
        art = np.zeros(self.config.articulation_dim)
        joints = self.backend.object_joint_positions(self.asset.name)[: self.config.articulation_dim]
        art[: len(joints)] = joints
        return np.concatenate([obj_pos, mat_to_rot6d(quat_to_mat(obj_quat)), art]).astype(np.float32)

    def _recorded(self, key: str) -> np.ndarray:
        """`robot_joints`, `object_pose` or `articulation` (see the module docstring)."""
        b, name = self.backend, self.asset.name
        if key == "robot_joints":
            return np.append(b.arm_joint_positions(), b.gripper_width()).astype(np.float32)
        if key == "object_pose":
            return np.concatenate(b.object_pose(name)).astype(np.float32)
        joints = b.object_joint_positions(name)
        if len(joints) > ARTICULATION_RECORD_DIM:
            raise ValueError(f"{self.task.category} instance {self.task.instance_id} has "
                             f"{len(joints)} joints; `articulation` holds {ARTICULATION_RECORD_DIM}")
        out = np.zeros(ARTICULATION_RECORD_DIM, np.float32)
        out[: len(joints)] = joints
        return out

    def _skill_fields(self) -> tuple[np.ndarray, np.ndarray | None]:
        """`skill_state` and the skill's target-part points, world frame (None without a part)."""
        skill = self.current_skill()
        name, part = self.asset.name, skill.part
        axis, pts = np.zeros(3), None
        if part is not None and part not in self.asset.parts:  # a spatial part (left, top...)
            pts = self.snapshot().part_points(part)
            axis = principal_axis(pts)
        elif part is not None:
            poses = {}
            for body in self.asset.parts[part].bodies:
                bpos, bquat = self.backend.body_pose(name, body)
                poses[body] = (bpos, quat_to_mat(bquat))
            pts = self.asset.parts[part].posed(poses)[0]
            # fixed in the object frame (joints at rest), so its sign never flips as it turns
            axis = quat_to_mat(self.backend.object_pose(name)[1]) @ self._axes[part]
        return skill_state(skill, np.zeros(3) if pts is None else pts.mean(axis=0), axis), pts

    def _observation(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        keys = self.config.obs_keys
        if "proprio" in keys:
            obs["proprio"] = self._proprio()
        if "state" in keys:
            obs["state"] = self._state()
        if {"skill_state", "skill_delta", "skill_geom"} & set(keys):
            skill, part_points = self._skill_fields()
            if "skill_state" in keys:
                obs["skill_state"] = skill
            if "skill_delta" in keys:
                obs["skill_delta"] = skill_delta(obs["proprio"] if "proprio" in obs else self._proprio(),
                                                 obs["state"] if "state" in obs else self._state(), skill)
            if "skill_geom" in keys:
                obs["skill_geom"] = skill_geom(part_points, self.backend.tcp_pose()[0])
        for key in RECORDED_KEYS:
            if key in keys:
                obs[key] = self._recorded(key)
        for cam in self._camera_names:
            want = {k: f"{k}.{cam}" in keys for k in ("rgb", "depth", "part_mask")}
            pcd = bool({"pcd", "skill_pcd"} & set(keys)) and cam == PCD_CAMERA
            if not (any(want.values()) or pcd):
                continue
            out = self.backend.render(cam, rgb=want["rgb"], depth=want["depth"] or pcd,
                                      segmentation=want["part_mask"] or pcd)
            mask = self._part_mask(out.segmentation) if want["part_mask"] or pcd else None
            if want["rgb"]:
                obs[f"rgb.{cam}"] = out.rgb
            if want["depth"]:
                obs[f"depth.{cam}"] = np.minimum(out.depth_m, np.float32(MAX_DEPTH))
            if want["part_mask"]:
                obs[f"part_mask.{cam}"] = mask
            if pcd:
                cloud = self._point_cloud(out.depth_m, out.segmentation, mask)
                if "pcd" in keys:
                    obs["pcd"] = np.ascontiguousarray(cloud[:, :3])
                if "skill_pcd" in keys:
                    obs["skill_pcd"] = cloud
        return obs

    def _point_cloud(self, depth_m: np.ndarray, seg: np.ndarray, part_mask: np.ndarray) -> np.ndarray:
        """(pcd_points, 4) float32: object pixels of the pcd camera back-projected to the robot
        base frame + skill target-part flag (`depth_cloud`). Table, robot and background are
        dropped by their segmentation labels."""
        keep = np.isin(seg, self._object_label_ids())
        return depth_cloud(self._pcd_origin, self._pcd_rays, depth_m, keep, part_mask,
                           self.config.pcd_points, PCD_WORKSPACE)

    def _object_label_ids(self) -> list[int]:
        """Segmentation ids of the object's geoms (every part)."""
        prefix = f"{self.asset.name}/"
        return [i for i, name in enumerate(self.backend.segmentation_labels) if name.startswith(prefix)]

    def _part_mask(self, seg: np.ndarray) -> np.ndarray:
        part = self.target_part()
        if part is None:
            return np.zeros(seg.shape, bool)
        labels = self.backend.segmentation_labels
        if part not in self.asset.parts:  # a spatial part: the whole object (no per-pixel split yet)
            return np.isin(seg, self._object_label_ids())
        return seg == labels.index(f"{self.asset.name}/{part}")

    def _info(self) -> dict:
        t, idx = self.task, self.tracker.index
        if self.skill_source.call is not None:
            skill_text = skill_instruction(t.category, self.skill_source.call)
        else:  # the chain's own (after the chain: its last skill's)
            skill_text = t.skill_instructions[min(idx, len(t.chain) - 1)]
        return {
            "task_id": t.task_id, "instruction": t.instruction, "skill_instruction": skill_text,
            "skill_source": self.skill_source.kind,
            "skill_index": idx, "success": self.tracker.done,
            "completion": self.tracker.completion, "predicates": dict(self.tracker.predicates),
        }

    def render(self):
        """An agentview frame at `config.render_size` (for videos); None when the env was made
        with `render_mode=None`."""
        if self.render_mode is None:
            return None
        w, h = self.config.render_size
        return self.backend.render("agentview", size=(w, h)).rgb

    def get_state(self) -> EnvState:
        """The episode's full state: task, simulator, chain tracker position, steps, commanded
        target and skill source (for exact replay with `set_state`)."""
        return EnvState(self.task.to_dict(), self.backend.get_state(), self.tracker.index,
                        self.tracker.move_start, self._steps, self._target.copy(),
                        self.skill_source.to_dict())

    def set_state(self, state: EnvState | dict) -> None:
        """Restore a state from `get_state` (or its dict): the task's instance is built if
        another is loaded, then the simulator, the tracker's position and the skill source."""
        state = EnvState.from_dict(state)
        task = TaskSpec.from_dict(state.task)
        self._ensure_scene(task.category, task.instance_id)
        self.task = task
        self._apply_perturbation(task, task.init_seed)  # its look; the state holds the placement
        self.backend.set_state(state.sim)
        self._steps, self._target = state.steps, np.asarray(state.target, float).copy()
        self.tracker = ChainTracker(task)
        self.tracker.restore(state.skill_index, state.skill_start, self.snapshot())
        self.skill_source = SkillSource(self.tracker)
        self.skill_source.load(state.skill)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
