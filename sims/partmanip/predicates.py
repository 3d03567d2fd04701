"""Goal predicates of the skills, evaluated on a Snapshot of the scene.

A Snapshot holds what the predicates read (contacts, poses, gripper), so predicates are pure
functions that tests can evaluate on hand-constructed states. Thresholds follow PartInstruct
(see ../shared/reference/partinstruct.md) except where noted:
- grasping: PartInstruct asks for > 20 N normal force in total; we ask for
  GRASP_MIN_FORCE per finger on the target part, so a one-sided push never counts as a grasp.
- touching: PartInstruct asks for contact; we ask for TOUCH_MIN_FORCE, so a graze does not count.

Parts are the category's semantic parts or the spatial parts (left/right/front/back/top/
bottom/middle, `sims.objects.spatial`), which are computed from the object's posed point cloud
at the moment of the check; a contact is on a spatial part when it lies within
SPATIAL_CONTACT_DIST of the part's points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.core.rotations import quat_to_mat
from sims.core.types import ContactForce, ObjectAsset
from sims.objects.spatial import SPATIAL_PARTS, spatial_part_masks

GRASP_MIN_FORCE = 5.0  # N per finger on the part
# N: PartInstruct asks for contact only; this ignores grazes yet counts the light push that
# slides eyeglasses (a few dozen grams) along the table
TOUCH_MIN_FORCE = 0.1
TOUCH_MAX_WIDTH = 0.01  # m: "gripper closed" for touching
POSITION_TOL = 0.05  # m: at_position threshold (PartInstruct uses 0.02-0.08 by task)
RELEASE_MIN_WIDTH = 0.06  # m: "gripper open"
RELEASE_MIN_DIST = 0.05  # m between the TCP and the nearest object point
FACING_TOL = 0.5  # rad between (object centre -> part centre) and the direction
SPATIAL_CONTACT_DIST = 0.01  # m from a contact to the nearest point of a spatial part


@dataclass
class Snapshot:
    """What the predicates see of one object and the gripper at one instant (world frame)."""

    asset: ObjectAsset
    body_poses: dict[str, tuple[np.ndarray, np.ndarray]]  # body -> (pos, quat wxyz)
    contacts: list[ContactForce] = field(default_factory=list)
    on_table: bool = True
    tcp_pos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper_width: float = 0.08

    @property
    def object_pos(self) -> np.ndarray:
        return self.body_poses["base"][0]

    def _poses(self, part: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {b: (self.body_poses[b][0], quat_to_mat(self.body_poses[b][1]))
                for b in self.asset.parts[part].bodies}

    def object_points(self) -> np.ndarray:
        """Every semantic part's surface points in the world frame."""
        return np.concatenate([self.part_points(p) for p in self.asset.parts])

    def part_points(self, part: str) -> np.ndarray:
        """The part's surface points in the world frame (spatial parts: from the posed cloud)."""
        if part in SPATIAL_PARTS and part not in self.asset.parts:
            pts = self.object_points()
            return pts[spatial_part_masks(pts)[part]]
        return self.asset.parts[part].posed(self._poses(part))[0]

    def part_normals(self, part: str) -> np.ndarray:
        """The part's outward surface normals in the world frame."""
        if part in SPATIAL_PARTS and part not in self.asset.parts:
            names = list(self.asset.parts)
            pts = self.object_points()
            nrm = np.concatenate([self.asset.parts[p].posed(self._poses(p))[1] for p in names])
            return nrm[spatial_part_masks(pts)[part]]
        return self.asset.parts[part].posed(self._poses(part))[1]

    def finger_forces(self, part: str | None = None) -> dict[str, float]:
        """Total normal force per finger on `part` (any part of the object if None)."""
        out = {"left": 0.0, "right": 0.0}
        mine = [c for c in self.contacts if c.object == self.asset.name]
        if part in SPATIAL_PARTS and part not in self.asset.parts:
            region = self.part_points(part)
            for c in mine:
                if np.min(np.linalg.norm(region - np.asarray(c.pos), axis=1)) <= SPATIAL_CONTACT_DIST:
                    out[c.finger] += c.normal_force
            return out
        for c in mine:
            if part is None or c.part == part:
                out[c.finger] += c.normal_force
        return out


def grasping(s: Snapshot, part: str) -> bool:
    """Both fingers press on `part` with at least GRASP_MIN_FORCE each."""
    f = s.finger_forces(part)
    return min(f["left"], f["right"]) >= GRASP_MIN_FORCE


def touching(s: Snapshot, part: str) -> bool:
    """The gripper is closed and a finger touches `part`."""
    f = s.finger_forces(part)
    return s.gripper_width <= TOUCH_MAX_WIDTH and max(f.values()) >= TOUCH_MIN_FORCE


def at_position(s: Snapshot, target: np.ndarray, tol: float = POSITION_TOL) -> bool:
    """The object's origin is within `tol` metres of `target`."""
    return float(np.linalg.norm(s.object_pos - np.asarray(target))) <= tol


def on_table(s: Snapshot) -> bool:
    """The object touches the table."""
    return s.on_table


def released(s: Snapshot) -> bool:
    """Gripper open, no finger contact with the object, TCP clear of every part."""
    if s.gripper_width < RELEASE_MIN_WIDTH or any(v > 0 for v in s.finger_forces().values()):
        return False
    pts = np.concatenate([s.part_points(p) for p in s.asset.parts])
    return float(np.min(np.linalg.norm(pts - s.tcp_pos, axis=1))) > RELEASE_MIN_DIST


def _centre_to_part(s: Snapshot, part: str) -> np.ndarray:
    """The vector from the object's centre to the part's centre (world frame)."""
    return s.part_points(part).mean(axis=0) - s.object_points().mean(axis=0)


def yaw_to_face(s: Snapshot, part: str, direction: str) -> float:
    """The turn about the vertical (rad, counter-clockwise positive) after which the vector
    from the object's centre to the part's centre points `direction` (horizontally)."""
    v = _centre_to_part(s, part)
    f = DIRECTIONS[direction]
    return float(np.arctan2(v[0] * f[1] - v[1] * f[0], v[:2] @ f[:2]))


def facing(s: Snapshot, part: str, direction: str, tol: float = FACING_TOL) -> bool:
    """The vector from the object's centre to the part's centre points within `tol` radians of
    `direction` (robot base frame)."""
    v = _centre_to_part(s, part)
    norm = np.linalg.norm(v)
    if norm < 1e-6:
        return False
    return float(np.arccos(np.clip(v @ DIRECTIONS[direction] / norm, -1.0, 1.0))) <= tol
