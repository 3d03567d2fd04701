"""PartManipEnv's action and observation spaces: every value the env takes or returns lies in
them, with the dtype they declare. What each observation key holds (task- or skill-level) is
written in `sims.partmanip.env`'s docstring and `sims.partmanip.obs_layout`.

The bounds are physical, not normalised: positions in metres in the robot base frame, rot6d
entries (columns of a rotation matrix) in [-1, 1], the gripper command in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from sims.core.control import ACTION_DIM
from sims.partmanip.obs_layout import (
    ARTICULATION_RECORD_DIM,
    DIRECTION_NAMES,
    OBJECT_POSE_DIM,
    PROPRIO_DIM,  # noqa: F401  (re-exported: the proprio vector's size)
    ROBOT_JOINTS_DIM,
    SKILL_DELTA_DIM,
    SKILL_GEOM_DIM,
)
from sims.partmanip.skills import SKILLS

# A box (m, robot base frame) around everything the Panda's TCP can reach (an 0.855 m arm plus
# the hand, around the shoulder at z = 0.333): a target outside it is unreachable anyway, so
# clipping actions to it leaves every reachable target as it is.
REACH_BOX = ((-1.1, 1.1), (-1.1, 1.1), (-0.8, 1.4))
DELTA_POS_MAX = 0.1  # m per control step in delta mode (2 m/s at 20 Hz, beyond the arm's speed)
# Box (metres, robot base frame) a `pcd` point must lie in, besides being on the object: a guard
# against stray pixels (depth at silhouette edges), reaching just below the table top.
PCD_WORKSPACE = ((0.05, 1.1), (-0.6, 0.6), (-0.005, 0.8))
POSITION_BOUND = 4.0  # m: any observed position (the scene is ~2.2 m across; the floor stops falls)
JOINT_BOUND = 2 * np.pi  # rad (or m, a slide joint): any joint position observed
GRIPPER_WIDTH = (-0.01, 0.1)  # m: fingers open to 0.08; squeezed pads can read a hair below 0
MAX_DEPTH = 10.0  # m: depth pixels that see nothing nearer (the sky) read this


def action_space(mode: str) -> gym.spaces.Box:
    """The (10,) action: pos 3 + rot6d 6 + gripper 1. Absolute: a TCP target inside
    `REACH_BOX`; delta: a translation of at most `DELTA_POS_MAX` per axis and a relative
    rotation."""
    if mode == "absolute":
        lo_pos, hi_pos = [lo for lo, _ in REACH_BOX], [hi for _, hi in REACH_BOX]
    elif mode == "delta":
        lo_pos, hi_pos = [-DELTA_POS_MAX] * 3, [DELTA_POS_MAX] * 3
    else:
        raise ValueError(f"unknown action_mode {mode!r} (known: absolute, delta)")
    low = np.array([*lo_pos, *[-1.0] * 6, 0.0], np.float32)
    high = np.array([*hi_pos, *[1.0] * 6, 1.0], np.float32)
    assert len(low) == ACTION_DIM
    return gym.spaces.Box(low, high, dtype=np.float32)


def clip_target_position(pos: np.ndarray) -> np.ndarray:
    """A TCP target position moved into `REACH_BOX`."""
    return np.clip(pos, [lo for lo, _ in REACH_BOX], [hi for _, hi in REACH_BOX])


def _box(bounds: Sequence[tuple[float, float]]) -> gym.spaces.Box:
    low, high = zip(*bounds, strict=True)
    return gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)


def proprio_space() -> gym.spaces.Box:
    """joints 7 + gripper width 1 + TCP pos 3 + TCP rot6d 6."""
    pos, unit = (-POSITION_BOUND, POSITION_BOUND), (-1.0, 1.0)
    return _box([(-JOINT_BOUND, JOINT_BOUND)] * 7 + [GRIPPER_WIDTH] + [pos] * 3 + [unit] * 6)


def state_space(articulation_dim: int) -> gym.spaces.Box:
    """Task-level: object pos 3 + rot6d 6 + articulation."""
    pos, unit = (-POSITION_BOUND, POSITION_BOUND), (-1.0, 1.0)
    return _box([pos] * 3 + [unit] * 6 + [(-JOINT_BOUND, JOINT_BOUND)] * articulation_dim)


def skill_state_space() -> gym.spaces.Box:
    """Skill-level: part centroid 3 + part axis 3 + skill goal 3 + skill one-hot 5 + direction
    one-hot 6."""
    pos, unit, flag = (-POSITION_BOUND, POSITION_BOUND), (-1.0, 1.0), (0.0, 1.0)
    return _box([pos] * 3 + [unit] * 3 + [pos] * 3 + [flag] * (len(SKILLS) + len(DIRECTION_NAMES)))


def recorded_space(key: str) -> gym.spaces.Box:
    """`robot_joints` (joints 7 + gripper width), `object_pose` (pos 3 + quat wxyz 4) or
    `articulation` (every object joint, zero padded)."""
    pos, unit, joint = (-POSITION_BOUND, POSITION_BOUND), (-1.0, 1.0), (-JOINT_BOUND, JOINT_BOUND)
    if key == "robot_joints":
        return _box([joint] * (ROBOT_JOINTS_DIM - 1) + [GRIPPER_WIDTH])
    if key == "object_pose":
        return _box([pos] * 3 + [unit] * (OBJECT_POSE_DIM - 3))
    return _box([joint] * ARTICULATION_RECORD_DIM)


def pcd_space(n_points: int, flag: bool = False) -> gym.spaces.Box:
    """(n, 3): xyz inside `PCD_WORKSPACE` (or all zeros when no point is seen); `flag`: (n, 4),
    + a 0/1 target-part flag (`skill_pcd`)."""
    xyz = [(min(lo, 0.0), max(hi, 0.0)) for lo, hi in PCD_WORKSPACE]
    low = [lo for lo, _ in xyz] + ([0.0] if flag else [])
    high = [hi for _, hi in xyz] + ([1.0] if flag else [])
    low = np.tile(np.array(low, np.float32), (n_points, 1))
    high = np.tile(np.array(high, np.float32), (n_points, 1))
    return gym.spaces.Box(low, high, dtype=np.float32)


def observation_space(obs_keys: Sequence[str], image_size: tuple[int, int],
                      articulation_dim: int, pcd_points: int) -> gym.spaces.Dict:
    """The Dict space of `obs_keys` (keys already checked by the env)."""
    w, h = image_size
    spaces: dict[str, gym.spaces.Space] = {}
    for key in obs_keys:
        kind = key.split(".")[0]
        if key == "proprio":
            spaces[key] = proprio_space()
        elif key == "state":
            spaces[key] = state_space(articulation_dim)
        elif key == "skill_state":
            spaces[key] = skill_state_space()
        elif key == "skill_delta":
            spaces[key] = _box([(-2 * POSITION_BOUND, 2 * POSITION_BOUND)] * SKILL_DELTA_DIM)
        elif key == "skill_geom":
            spaces[key] = _box([(-2 * POSITION_BOUND, 2 * POSITION_BOUND)] * SKILL_GEOM_DIM)
        elif key in ("robot_joints", "object_pose", "articulation"):
            spaces[key] = recorded_space(key)
        elif key in ("pcd", "skill_pcd"):
            spaces[key] = pcd_space(pcd_points, flag=key == "skill_pcd")
        elif kind == "rgb":
            spaces[key] = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        elif kind == "depth":
            spaces[key] = gym.spaces.Box(0.0, MAX_DEPTH, (h, w), np.float32)
        else:  # part_mask: True on the skill's target part
            spaces[key] = gym.spaces.Box(0, 1, (h, w), np.bool_)
    return gym.spaces.Dict(spaces)
