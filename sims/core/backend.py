"""The Backend protocol: what the suite and the viewer need from a physics simulator.

`sims.mujoco.MujocoBackend` implements it; a backend is made by name through
`sims.core.registry` (`EnvConfig.backend`), so a new one (e.g. PyBullet) registers itself there
and plugs in without touching the env or the viewer, which use nothing else. Poses are in the
world (= robot base) frame; cameras follow `sims.core.camera`'s convention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from sims.core.types import ContactForce, RenderOutput, SceneMesh, SceneSpec


@runtime_checkable
class Backend(Protocol):
    """A simulated robot + table + objects scene."""

    name: str
    segmentation_labels: list[str]  # "background", "table", "robot", "<object>/<part>", ...

    def build(self, scene: SceneSpec) -> None:
        """Create the physics model, the robot controller and renderers for `scene`."""

    def reset(self) -> None:
        """Robot to its home configuration, objects to their scene poses, velocities zero."""

    def apply(self, joint_targets: np.ndarray, gripper_open: float) -> None:
        """Set the 7 arm joint position targets (rad) and the gripper target in [0, 1] (1 = open)."""

    def step(self, n_substeps: int) -> None:
        """Advance physics by `n_substeps` timesteps holding the current controls."""

    def get_state(self) -> np.ndarray:
        """Full simulator state (positions, velocities, controls, time) as a flat float64 array."""

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from `get_state`; stepping afterwards replays exactly."""

    def render(self, camera: str, rgb: bool = True, depth: bool = False,
               segmentation: bool = False, size: tuple[int, int] | None = None) -> RenderOutput:
        """Render one camera headless, at its resolution or at `size` = (width, height)."""

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Root pose of object `name`: position (3,), quaternion wxyz (4,)."""

    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Teleport object `name` (velocities zeroed)."""

    def body_pose(self, object_name: str, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Pose of one body of an object (its articulated links)."""

    def object_joint_positions(self, name: str) -> np.ndarray:
        """Positions of the object's articulation joints, in asset order."""

    def object_mass(self, name: str) -> float:
        """Total mass of object `name` (kg), all its links."""

    def object_com(self, name: str) -> np.ndarray:
        """Centre of mass of the whole object, all its links (3,), world frame."""

    def finger_contacts(self) -> list[ContactForce]:
        """Contacts between the gripper fingers and object parts, with normal forces."""

    def object_table_contact(self, name: str) -> bool:
        """Whether object `name` touches the table."""

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Tool centre point between the fingertips: position (3,), rotation matrix (3, 3)."""

    def arm_joint_positions(self) -> np.ndarray:
        """The 7 arm joint angles (rad)."""

    @property
    def arm_targets(self) -> np.ndarray:
        """The arm's current joint position targets (rad); the IK seed, part of the state."""

    def gripper_width(self) -> float:
        """Distance between the fingers (m), 0 closed, 0.08 fully open."""

    def solve_ik(self, pos: np.ndarray, mat: np.ndarray, q_seed: np.ndarray) -> np.ndarray:
        """Arm joint angles that put the TCP at `pos` with orientation `mat`, starting from `q_seed`."""

    def apply_visual(self, change) -> None:
        """Render with a `sims.core.perturb` change (lighting, a fixed camera's pose, table and
        floor appearance) instead of the scene's nominal look, until the next call or build;
        None restores the nominal look. Physics is untouched. A backend that cannot render a
        kind raises ValueError naming it."""

    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        """A scene camera's current pose: position (3,), rotation (3, 3) whose columns are its
        axes (x right, y up in the image, looking along -z; `sims.core.camera`), also for a
        camera riding on a robot body. With the CameraSpec's fovy and size, `sims.core.camera.
        project` maps world points to its pixels."""

    def scene_meshes(self) -> list[SceneMesh]:
        """The visible robot, table and object pieces as triangle meshes in their own frames
        (object pieces named `object/<part>/<geom>`), for viewers."""

    def mesh_poses(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """World poses of the meshes with these `SceneMesh.id`s now: positions (N, 3),
        rotations (N, 3, 3)."""

    def interactive_viewer(self, on_key: Callable[[str], None] | None = None):
        """A live window on the simulation (needs a display): an object with `is_running()`,
        `sync()` (redraw the current state), `set_overlay({corner: (left, right)})` (text over
        the scene; corners "top left", "top right", "bottom left", "bottom right") and `close()`
        (returns once the window is gone). `on_key(name)` is called for each key press, from
        the window's thread: "space", "right", "left", "backspace", ... or the key's character
        ("r", ".")."""

    def close(self) -> None:
        """Free renderers and GL contexts (calling it twice is allowed)."""
