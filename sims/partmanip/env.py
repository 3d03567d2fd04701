"""PartManipEnv: the part-level manipulation suite as a gymnasium environment.

Control at 20 Hz. Action (10,): absolute TCP target in the robot base frame,
``pos (3) + rot6d (6) + gripper (1)`` with gripper in [0, 1] (1 = open); `action_mode="delta"`
adds pos/rotation to the previous target instead. Observation keys (each optional):
``rgb.<cam>`` (H,W,3) uint8, ``depth.<cam>`` (H,W) float32 metres, ``part_mask.<cam>`` (H,W) bool,
``proprio`` (17,) = joints 7 + gripper width 1 + TCP pos 3 + TCP rot6d 6, ``state`` = object pos 3
+ object rot6d 6 + target-part centroid 3 + target-part principal axis 3 + articulation
`articulation_dim`. `info` carries instruction, skill_instruction, skill_index, success,
completion, predicates, task_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from sims.core.config import ConfigMixin
from sims.core.rotations import mat_to_rot6d, quat_to_mat, rot6d_to_mat, yaw_quat
from sims.core.types import CameraSpec, PlacedObject, SceneSpec
from sims.objects import make_instance
from sims.objects.kinematics import object_points
from sims.partmanip.chain import ChainTracker, target_part
from sims.partmanip.predicates import Snapshot
from sims.partmanip.tasks import TaskPool, TaskSpec

PROPRIO_DIM = 17
ACTION_DIM = 10


def default_cameras(width: int = 128, height: int = 128) -> tuple[CameraSpec, ...]:
    """`agentview`: fixed, looking at the workspace from the front left; `wrist`: on the hand,
    looking along the fingers."""
    return (
        CameraSpec("agentview", width, height, fovy_deg=50.0, pos=(0.9, 0.4, 0.55),
                   lookat=(0.42, 0.0, 0.08)),
        CameraSpec("wrist", width, height, fovy_deg=75.0, body="panda_hand",
                   pos=(-0.07, 0.0, 0.02), lookat=(0.0, 0.0, 0.16), up=(-1.0, 0.0, 0.0)),
    )


@dataclass
class EnvConfig(ConfigMixin):
    """Configuration of PartManipEnv (mirrors `configs/suite/partmanip.yaml`)."""

    obs_keys: tuple[str, ...] = ("proprio", "state")
    image_size: tuple[int, int] = (128, 128)  # width, height of every camera
    action_mode: str = "absolute"  # or "delta"
    articulation_dim: int = 2
    x_range: tuple[float, float] = (0.45, 0.60)  # object placement, metres
    y_range: tuple[float, float] = (-0.12, 0.12)
    yaw_range: tuple[float, float] = (-np.pi, np.pi)  # object yaw, radians
    settle_steps: int = 50  # physics steps to let the object come to rest after placement
    render_size: tuple[int, int] = (256, 256)  # env.render() frames (videos)
    backend: str = "mujoco"


def initial_pose(init_seed: int, config: EnvConfig) -> tuple[np.ndarray, float]:
    """Where an episode places the object: position (3,) and yaw, a pure function of its seed."""
    rng = np.random.default_rng(init_seed)
    pos = np.array([rng.uniform(*config.x_range), rng.uniform(*config.y_range), 0.002])
    return pos, float(rng.uniform(*config.yaw_range))


def make_backend(name: str):
    """A simulator backend by name."""
    if name == "mujoco":
        from sims.mujoco import MujocoBackend

        return MujocoBackend()
    raise ValueError(f"unknown backend {name!r} (known: mujoco)")


class PartManipEnv(gym.Env):
    """Part-level manipulation of one object on a table by a Franka Panda."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, config: EnvConfig | None = None, tasks=None,
                 render_mode: str | None = "rgb_array"):
        self.config = config or EnvConfig()
        self.tasks = tasks if tasks is not None else TaskPool()  # or a CatalogTasks
        self.render_mode = render_mode
        self.backend = None  # created on the first reset, inside the process that steps it
        w, h = self.config.image_size
        self.cameras = default_cameras(w, h)
        self._camera_names = [c.name for c in self.cameras]
        for key in self.config.obs_keys:
            self._check_obs_key(key)
        self.observation_space = self._make_observation_space()
        low = np.full(ACTION_DIM, -np.inf, np.float32)
        low[-1], high = 0.0, np.full(ACTION_DIM, np.inf, np.float32)
        high[-1] = 1.0
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._built_for: tuple[str, int] | None = None
        self.task: TaskSpec | None = None
        self.asset = None
        self._target = np.zeros(ACTION_DIM)

    @property
    def commanded_target(self) -> np.ndarray:
        """The last absolute action (10,) sent to the robot; at reset, the TCP's own pose with
        the gripper open (so stepping it holds the robot still)."""
        return self._target.copy()

    # -- spaces --------------------------------------------------------------------------
    def _check_obs_key(self, key: str) -> None:
        kind, _, cam = key.partition(".")
        if key in ("proprio", "state"):
            return
        if kind in ("rgb", "depth", "part_mask") and cam in self._camera_names:
            return
        raise ValueError(f"unknown observation key {key!r} (cameras: {self._camera_names})")

    @property
    def state_dim(self) -> int:
        return 3 + 6 + 3 + 3 + self.config.articulation_dim

    def _make_observation_space(self) -> gym.spaces.Dict:
        w, h = self.config.image_size
        spaces = {}
        for key in self.config.obs_keys:
            kind = key.split(".")[0]
            if key == "proprio":
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32)
            elif key == "state":
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
            elif kind == "rgb":
                spaces[key] = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
            elif kind == "depth":
                spaces[key] = gym.spaces.Box(0, np.inf, (h, w), np.float32)
            else:
                spaces[key] = gym.spaces.MultiBinary((h, w))
        return gym.spaces.Dict(spaces)

    def shape_meta(self) -> dict:
        """diffusion_policy-style shape metadata of observations and actions."""
        obs = {}
        for key, space in self.observation_space.spaces.items():
            kind = key.split(".")[0]
            typ = {"rgb": "rgb", "depth": "depth", "part_mask": "mask"}.get(kind, "low_dim")
            obs[key] = {"shape": list(space.shape), "type": typ}
        return {"obs": obs, "action": {"shape": [ACTION_DIM]}}

    # -- episode -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode: `options["task"]` (a TaskSpec or its dict) from its `init_seed`
        (or from `seed` if given); without a task, the pool's task for `seed`."""
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if isinstance(task, dict):
            task = TaskSpec.from_dict(task)
        if task is None:
            task = self.tasks.task(0 if seed is None else seed)
        init_seed = task.init_seed if seed is None else seed
        self.task = task
        self._ensure_scene(task.category, task.instance_id)
        pos, yaw = initial_pose(init_seed, self.config)
        self.backend.reset()
        self.backend.set_object_pose(self.asset.name, pos, yaw_quat(yaw))
        self.backend.step(self.config.settle_steps)
        tcp_pos, tcp_mat = self.backend.tcp_pose()
        self._target = np.concatenate([tcp_pos, mat_to_rot6d(tcp_mat), [1.0]])
        self._steps = 0
        self.tracker = ChainTracker(task)
        self.tracker.reset(self.snapshot())
        return self._observation(), self._info()

    def _ensure_scene(self, category: str, instance_id: int) -> None:
        if self._built_for == (category, instance_id):
            return
        if self.backend is None:
            self.backend = make_backend(self.config.backend)
        self.asset = make_instance(category, instance_id)
        scene = SceneSpec(objects=[PlacedObject(self.asset, (0.5, 0.0, 0.002))],
                          cameras=list(self.cameras),
                          control_hz=20.0)
        self.backend.build(scene)
        self._substeps = scene.substeps
        self._built_for = (category, instance_id)
        pts, _, idx, names = object_points(self.asset)
        self._axes = {n: _principal_axis(pts[idx == i]) for i, n in enumerate(names)}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(ACTION_DIM)
        if self.config.action_mode == "delta":
            a = self._apply_delta(a)
        pos, mat = a[:3], rot6d_to_mat(a[3:9])
        self._target = np.concatenate([pos, mat_to_rot6d(mat), [np.clip(a[9], 0.0, 1.0)]])
        q = self.backend.solve_ik(pos, mat, self.backend.arm_targets)
        self.backend.apply(q, self._target[9])
        self.backend.step(self._substeps)
        self._steps += 1
        self.tracker.update(self.snapshot())
        success = self.tracker.done
        truncated = self._steps >= self.task.horizon and not success
        return self._observation(), float(success), success, truncated, self._info()

    def _apply_delta(self, a: np.ndarray) -> np.ndarray:
        prev_mat = rot6d_to_mat(self._target[3:9])
        mat = rot6d_to_mat(a[3:9]) @ prev_mat
        return np.concatenate([self._target[:3] + a[:3], mat_to_rot6d(mat), a[9:]])

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
        """The part the current skill acts on."""
        return target_part(self.task.chain, self.tracker.index)

    def _proprio(self) -> np.ndarray:
        pos, mat = self.backend.tcp_pose()
        return np.concatenate([self.backend.arm_joint_positions(), [self.backend.gripper_width()],
                               pos, mat_to_rot6d(mat)]).astype(np.float32)

    def _state(self) -> np.ndarray:
        name = self.asset.name
        obj_pos, obj_quat = self.backend.object_pose(name)
        part = self.target_part()
        centroid, axis = np.zeros(3), np.zeros(3)
        if part is not None and part not in self.asset.parts:  # a spatial part (left, top...)
            pts = self.snapshot().part_points(part)
            centroid = pts.mean(axis=0)
            axis = _principal_axis(pts)
        elif part is not None:
            p = self.asset.parts[part]
            poses = {}
            for body in p.bodies:
                bpos, bquat = self.backend.body_pose(name, body)
                poses[body] = (bpos, quat_to_mat(bquat))
            centroid = p.posed(poses)[0].mean(axis=0)
            # the axis is fixed in the object frame (taken with joints at rest), so its sign
            # never flips as the object turns
            axis = quat_to_mat(obj_quat) @ self._axes[part]
        art = np.zeros(self.config.articulation_dim)
        joints = self.backend.object_joint_positions(name)[: self.config.articulation_dim]
        art[: len(joints)] = joints
        return np.concatenate([obj_pos, mat_to_rot6d(quat_to_mat(obj_quat)), centroid, axis,
                               art]).astype(np.float32)

    def _observation(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        keys = self.config.obs_keys
        if "proprio" in keys:
            obs["proprio"] = self._proprio()
        if "state" in keys:
            obs["state"] = self._state()
        for cam in self._camera_names:
            want = {k: f"{k}.{cam}" in keys for k in ("rgb", "depth", "part_mask")}
            if not any(want.values()):
                continue
            out = self.backend.render(cam, rgb=want["rgb"], depth=want["depth"],
                                      segmentation=want["part_mask"])
            if want["rgb"]:
                obs[f"rgb.{cam}"] = out.rgb
            if want["depth"]:
                obs[f"depth.{cam}"] = out.depth_m
            if want["part_mask"]:
                obs[f"part_mask.{cam}"] = self._part_mask(out.segmentation)
        return obs

    def _part_mask(self, seg: np.ndarray) -> np.ndarray:
        part = self.target_part()
        if part is None:
            return np.zeros(seg.shape, bool)
        labels = self.backend.segmentation_labels
        if part not in self.asset.parts:  # a spatial part: the whole object (no per-pixel split yet)
            ids = [i for i, name in enumerate(labels) if name.startswith(f"{self.asset.name}/")]
            return np.isin(seg, ids)
        return seg == labels.index(f"{self.asset.name}/{part}")

    def _info(self) -> dict:
        t, idx = self.task, self.tracker.index
        return {
            "task_id": t.task_id, "instruction": t.instruction,
            "skill_instruction": t.skill_instructions[min(idx, len(t.chain) - 1)],
            "skill_index": idx, "success": self.tracker.done,
            "completion": self.tracker.completion, "predicates": dict(self.tracker.predicates),
        }

    def render(self):
        """An agentview frame at `config.render_size` (for videos)."""
        w, h = self.config.render_size
        return self.backend.render("agentview", size=(w, h)).rgb

    def get_state(self) -> np.ndarray:
        """Full simulator state (for exact replay with `set_state`)."""
        return self.backend.get_state()

    def set_state(self, state: np.ndarray) -> None:
        """Restore a simulator state of the current scene; the chain tracker is not rewound."""
        self.backend.set_state(state)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def _principal_axis(points: np.ndarray) -> np.ndarray:
    """Unit principal axis of a point set, sign fixed so its largest component is positive."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    return axis if axis[np.argmax(np.abs(axis))] > 0 else -axis

