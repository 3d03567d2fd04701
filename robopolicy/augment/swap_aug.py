"""The `swap` augmenter: a source demo redone on another instance of the same category, aligned
on the part its first skill acts on (the grasped or touched part), kept only if the simulator,
replaying it from its new initial state, says it succeeds.

New instances are drawn from the category's train instances of the library's split manifest
(`sims.objects.library.split_manifest`), never the source's own instance and never a held-out
one (test2's instances, and test5's categories, which have no train instances: their demos
give no variants). An instance lacking a part the task names is skipped. The object keeps the
source's placement (x, y, yaw), so the instance is the only change.

Alignment: the key poses up to the attach step are carried in the object frame (as `pose`
does) and translated in the object frame by ``offset``, from the part's surface points at the
reset state (param ``align``):
- ``centroid``: the difference of the part's centroids. It keeps the gripper's orientation and
  its offset from the part's centre, which is what a grasp of a generated part (a handle, a
  lid) depends on.
- ``surface``: the difference of the part's surface points nearest the TCP at the attach step
  (the new one looked up after the centroid shift): the TCP keeps its distance to the surface.
  A touch needs this: a side's centroid sits inside its surface by a share of the object's
  size, so on a larger instance the centroid shift stops the finger short of the surface.
- ``auto`` (default): surface for a demo whose first skill is a touch, centroid for a grasp.
Scaling the offset by the parts' extents would also tilt the approach (a non-rigid map of the
key poses) for little gain where the grasp sits near the part's centre, as the expert's do.
After the attach step the key poses keep their world displacement (`pose_plan`), so a door or
lid whose hinge sits elsewhere on the new instance can fail the replay; such demos are dropped,
and the yield says how often.

The translation is folded into the source's object pose (``T_src @ Trans(-offset)``),
so `PoseAugmenter.variant` plans (`pose_plan.plan_actions`, IK-checked) and replays it unchanged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np

from robopolicy.augment.pose_aug import Placement, PoseAugmenter, Variant, resting_yaw
from robopolicy.augment.pose_plan import key_frames, object_mat
from robopolicy.augment.registry import register_augmenter
from robopolicy.errors import RobopolicyError
from sims.core.rotations import mat_to_quat

log = logging.getLogger(__name__)


def train_instances(category: str) -> list[int]:
    """The category's train-split instance ids (empty for a held-out category)."""
    from sims.objects.library import split_manifest

    entry = split_manifest()["categories"].get(category)
    return list(entry["train_instances"]) if entry else []


def task_parts(task) -> list[str]:
    """The parts a task's chain names, first skill's first (the one the demo is aligned on)."""
    out: list[str] = []
    for call in task.chain:
        part = call.params.get("part")
        if part and part not in out:
            out.append(part)
    return out


def has_parts(category: str, instance: int, parts: list[str]) -> bool:
    """Whether the instance has every named part (a spatial part, a side, every object has)."""
    from sims.objects import make_instance
    from sims.objects.spatial import SPATIAL_PARTS

    have = make_instance(category, instance).parts
    return all(p in have or p in SPATIAL_PARTS for p in parts)


def part_points(env, part: str) -> np.ndarray:
    """`part`'s surface points (N, 3) in the object frame, in the env's current state."""
    snap = env.snapshot()
    pos, quat = snap.body_poses["base"]
    rot = object_mat(np.concatenate([pos, quat]))[:3, :3]
    return (snap.part_points(part) - np.asarray(pos)) @ rot


def _nearest(points: np.ndarray, p: np.ndarray) -> np.ndarray:
    return points[int(np.argmin(np.linalg.norm(points - p, axis=1)))]


def part_offset(src_points: np.ndarray, new_points: np.ndarray, tcp: np.ndarray | None
                ) -> np.ndarray:
    """The object-frame translation taking the source's part onto the new one: the difference
    of their centroids, or (given the source's TCP position at the attach step, `tcp`) of the
    surface points nearest the TCP, so that the TCP keeps its offset from the surface."""
    offset = new_points.mean(axis=0) - src_points.mean(axis=0)
    if tcp is None:
        return offset
    return _nearest(new_points, tcp + offset) - _nearest(src_points, tcp)


ALIGNS = ("auto", "centroid", "surface")


@register_augmenter()
class SwapAugmenter:
    """Generates `Variant`s of a source episode on other instances (see the module doc).

    Params: `pose`'s (`PoseParams`), and ``align``: ``centroid``, ``surface`` or ``auto``
    (surface for a demo that starts with a touch, centroid for one that starts with a grasp)."""

    image_source = "simulator"

    def __init__(self, params: dict | None = None) -> None:
        params = dict(params or {})
        self.align = params.pop("align", "auto")
        if self.align not in ALIGNS:
            raise RobopolicyError(f"augment: swap param align must be one of {list(ALIGNS)}, "
                                  f"got {self.align!r}")
        self.pose = PoseAugmenter(params)
        self.params = self.pose.params
        self._points: dict[tuple[str, int, str], np.ndarray] = {}

    def _part_points(self, env, task, placement: Placement) -> np.ndarray:
        """The aligned part's object-frame surface points on `task`'s instance (cached)."""
        part = task_parts(task)[0]
        key = (task.category, task.instance_id, part)
        if key not in self._points:
            env.reset(options={"task": task,
                               "placement": (placement.x, placement.y, placement.yaw)})
            self._points[key] = part_points(env, part)
        return self._points[key]

    def candidates(self, task, rng: np.random.Generator, n: int) -> list[int]:
        """Up to `n` distinct train instances of the task's category other than its own that
        have its parts, in a random order."""
        parts = task_parts(task)
        pool = [i for i in train_instances(task.category) if i != task.instance_id]
        out = []
        for i in rng.permutation(pool) if pool else []:
            if has_parts(task.category, int(i), parts):
                out.append(int(i))
                if len(out) == n:
                    break
        return out

    def variants(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                 rng: np.random.Generator, n: int) -> list[Variant]:
        """Up to `n` variants of one source episode, each on its own new instance (fewer when
        the category has fewer eligible instances; none for a held-out category)."""
        if not task_parts(task):
            log.info("swap: task %s names no part; no variants", task.task_id)
            return []
        instances = self.candidates(task, rng, n)
        if not instances:
            log.info("swap: no other train instance of %s with parts %s", task.category,
                     task_parts(task))
        return [self.variant(env, task, source, source_meta, i) for i in instances]

    def copy_variant(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                     rng: np.random.Generator, copy: int) -> Variant | None:
        """Copy `copy` of a source episode: the copy-th instance of the episode's draw (`rng`,
        the same for every copy), so copies use distinct instances; None past the last."""
        if not task_parts(task):
            return None
        instances = self.candidates(task, rng, copy + 1)
        return self.variant(env, task, source, source_meta, instances[copy]) if copy < len(instances) else None

    def _attach_tcp(self, task, source: dict[str, np.ndarray], source_meta: dict
                    ) -> np.ndarray | None:
        """The source's TCP position at the attach step in its object frame, where the demo is
        aligned on the surface; None where it is aligned on the centroid."""
        first = task.chain[0].skill
        if self.align == "centroid" or (self.align == "auto" and first == "grasp"):
            return None
        starts = json.loads(source_meta["skill_starts"] or "[0]")
        _, attach = key_frames(source["action"], starts, first, self.params.corner_tol_m)
        return np.linalg.inv(object_mat(source["object_pose"][0])) @ np.append(
            source["action"][attach, :3].astype(float), 1.0)

    def variant(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                instance: int) -> Variant:
        """The source demo redone on `instance` at the source's placement."""
        pose0 = np.asarray(source["object_pose"][0], float)
        placement = Placement(float(pose0[0]), float(pose0[1]), resting_yaw(pose0))
        src_points = self._part_points(env, task, placement)
        new_task = replace(task, instance_id=int(instance), split="train")
        tcp = self._attach_tcp(task, source, source_meta)
        offset = part_offset(src_points, self._part_points(env, new_task, placement),
                             None if tcp is None else tcp[:3])
        # carrying by T_new @ Trans(offset) @ T_src^-1 is carrying by T_new @ (T_src @
        # Trans(-offset))^-1: the source's pose is shifted instead of the new one
        shift = np.eye(4)
        shift[:3, 3] = -offset
        shifted = object_mat(pose0) @ shift
        moved = dict(source)
        moved["object_pose"] = np.concatenate(
            [[np.concatenate([shifted[:3, 3], mat_to_quat(shifted[:3, :3])])],
             source["object_pose"][1:]]).astype(np.float32)
        var = self.pose.variant(env, new_task, moved, source_meta, placement)
        if var.success:
            var.meta["instance_id"] = int(instance)
            var.meta["params"].update(source_instance=int(task.instance_id),
                                      instance_id=int(instance), part=task_parts(task)[0],
                                      align="centroid" if tcp is None else "surface",
                                      offset=[float(v) for v in offset])
        else:
            var.reason = f"instance {instance}: {var.reason}"
        return var
