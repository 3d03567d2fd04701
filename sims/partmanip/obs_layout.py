"""The observation layout of PartManipEnv: what each observation key holds, and its version.

Keys are task-level (the same whoever says what the current skill is) or skill-level (they
follow the env's skill source: the ground-truth chain tracker, or a planner's current skill
via `env.set_skill`). Stores record the layout they hold (`obs_layout(...)` in their attrs),
so a store or policy of another layout is refused in one line instead of being misread.

Version 2 (this one) split version 1's `state` (which carried the oracle skill's target part
and goal) into task-level `state` and skill-level `skill_state`, and `pcd` (xyz + target flag)
into task-level `pcd` (xyz) and skill-level `skill_pcd` (xyz + target flag).
"""

from __future__ import annotations

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip.skills import SKILLS

OBS_LAYOUT_VERSION = 2
# Keys whose meaning changed from version 1 (a version-1 store or policy using them is stale).
CHANGED_SINCE_V1: tuple[str, ...] = ("state", "pcd")

PROPRIO_DIM = 17
OBJECT_POSE_DIM = 7  # pos 3 + quaternion wxyz 4
ROBOT_JOINTS_DIM = 8  # arm joints 7 + gripper width 1
ARTICULATION_RECORD_DIM = 4  # every object joint (the library's objects have at most 2), zero padded
DIRECTION_NAMES: tuple[str, ...] = tuple(DIRECTIONS)  # front back left right top bottom
SKILL_STATE_DIM = 3 + 3 + 3 + len(SKILLS) + len(DIRECTION_NAMES)  # 20
SKILL_DELTA_DIM = 6  # goal - object position 3 + target-part centroid - TCP position 3
SKILL_GEOM_DIM = 9  # part box min - centroid 3 + box max - centroid 3 + nearest part point - TCP 3
# Where skill_delta's inputs sit: proprio's TCP position, state's object position, and
# skill_state's centroid, goal and skill one-hot.
_TCP_POS, _OBJ_POS = slice(8, 11), slice(0, 3)
_CENTROID, _GOAL, _SKILL = slice(0, 3), slice(6, 9), slice(9, 9 + len(SKILLS))

# Keys every demo store records whatever `obs_keys` asks (exact replays, augmentation).
RECORDED_KEYS: tuple[str, ...] = ("robot_joints", "object_pose", "articulation")
SKILL_LEVEL_PREFIXES: tuple[str, ...] = ("skill_state", "skill_delta", "skill_geom", "skill_pcd",
                                         "part_mask.")
# Keys that are functions of other keys (`derive`), so a store recording the inputs serves them
# too: key -> (input keys, size).
DERIVED_KEYS: dict[str, tuple[tuple[str, ...], int]] = {
    "skill_delta": (("proprio", "state", "skill_state"), SKILL_DELTA_DIM)}


def is_skill_level(key: str) -> bool:
    """True for keys that follow the skill source (never seen by an end-to-end policy)."""
    return key.startswith(SKILL_LEVEL_PREFIXES)


def describe(key: str, articulation_dim: int = 2) -> str:
    """What observation `key` holds, in one line (the layout a store records)."""
    kind, _, cam = key.partition(".")
    fixed = {
        "proprio": "task: arm joints 7 + gripper width 1 + TCP pos 3 + TCP rot6d 6",
        "state": f"task: object pos 3 + object rot6d 6 + articulation {articulation_dim}",
        "skill_state": ("skill: target-part centroid 3 + target-part principal axis 3 + skill "
                        f"goal position 3 + skill one-hot {len(SKILLS)} ({' '.join(SKILLS)}) + "
                        f"direction one-hot {len(DIRECTION_NAMES)} ({' '.join(DIRECTION_NAMES)})"),
        "pcd": "task: (points, 3) object points xyz, agentview depth, robot base frame",
        "skill_delta": ("skill: skill goal - object position 3 + target-part centroid - TCP "
                        "position 3 (zeros once no skill is left)"),
        "skill_geom": ("skill: target-part bounding box min - centroid 3 + max - centroid 3 + "
                       "nearest target-part surface point - TCP position 3 (zeros without a part)"),
        "skill_pcd": "skill: (points, 4) the pcd points xyz + 1.0 on the skill's target part",
        "robot_joints": "task: arm joints 7 + gripper width 1",
        "object_pose": "task: object pos 3 + quaternion wxyz 4",
        "articulation": f"task: every object joint position, zero padded to {ARTICULATION_RECORD_DIM}",
    }
    if key in fixed:
        return fixed[key]
    per_camera = {"rgb": "task: (H, W, 3) uint8 image", "depth": "task: (H, W) depth, metres",
                  "part_mask": "skill: (H, W) bool, True on the skill's target part"}
    if kind in per_camera and cam:
        return f"{per_camera[kind]} ({cam})"
    raise ValueError(f"unknown observation key {key!r}")


def skill_delta(proprio: np.ndarray, state: np.ndarray, skill_state: np.ndarray) -> np.ndarray:
    """`skill_delta` (..., 6) from `proprio`, `state` and `skill_state` of the same steps:
    what is left of the skill as vectors (the object's way to its goal, the gripper's way to
    the target part), so a policy reads a move's stopping point and a reach's direction
    without subtracting positions it sees in separate normalized inputs."""
    skill_state = np.asarray(skill_state, np.float32)
    active = skill_state[..., _SKILL].any(axis=-1, keepdims=True)
    out = np.concatenate([skill_state[..., _GOAL] - np.asarray(state, np.float32)[..., _OBJ_POS],
                          skill_state[..., _CENTROID] - np.asarray(proprio, np.float32)[..., _TCP_POS]],
                         axis=-1)
    return np.where(active, out, np.float32(0.0)).astype(np.float32)


def skill_geom(part_points: np.ndarray | None, tcp_pos: np.ndarray) -> np.ndarray:
    """`skill_geom` (9,) from the skill's target-part surface points (world frame; None or empty
    when the skill names no part: zeros) and the TCP position: the part's extent about its
    centroid (bounding-box min and max along the world axes), which says how tall and wide the
    part stands, and the way from the TCP to the part's nearest surface point, which a touch or
    a grasp of a part whose centroid lies off its surface (a ring, an arched handle) needs."""
    if part_points is None or len(part_points) == 0:
        return np.zeros(SKILL_GEOM_DIM, np.float32)
    pts = np.asarray(part_points, np.float64)
    centroid = pts.mean(axis=0)
    nearest = pts[np.argmin(((pts - tcp_pos) ** 2).sum(axis=1))]
    return np.concatenate([pts.min(axis=0) - centroid, pts.max(axis=0) - centroid,
                           nearest - tcp_pos]).astype(np.float32)


def derive(key: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The derived key `key` (one of `DERIVED_KEYS`) from `arrays` holding its inputs."""
    inputs, _ = DERIVED_KEYS[key]
    return skill_delta(*(arrays[k] for k in inputs))


def obs_layout(obs_keys, articulation_dim: int = 2) -> dict:
    """The layout record of `obs_keys`: {"version", "keys": {key: description}}."""
    return {"version": OBS_LAYOUT_VERSION,
            "keys": {k: describe(k, articulation_dim) for k in obs_keys}}


def layout_of_keys(obs_keys) -> dict:
    """This version's layout record of any keys (those that are not the env's described as
    "not an env observation"), for stores written outside collection."""
    keys = {}
    for k in obs_keys:
        try:
            keys[k] = describe(k)
        except ValueError:
            keys[k] = "not a PartManipEnv observation"
    return {"version": OBS_LAYOUT_VERSION, "keys": keys}


def stale_keys(layout: dict, keys) -> list[str]:
    """The `keys` whose meaning in a store or policy of `layout` differs from this version's."""
    version = layout.get("version", 1) if isinstance(layout, dict) else 1
    if version == OBS_LAYOUT_VERSION:
        return []
    if version == 1:
        return [k for k in keys if k in CHANGED_SINCE_V1]
    return list(keys)  # a newer layout than this code knows: nothing can be trusted
