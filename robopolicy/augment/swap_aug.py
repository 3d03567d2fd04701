"""The `swap` augmenter: a source demo redone on another instance of the same category, aligned
on the part its first skill acts on (the grasped or touched part), kept only if the simulator,
replaying it from its new initial state, says it succeeds.

New instances are drawn from the category's train instances of the library's split manifest
(`sims.objects.library.split_manifest`), never the source's own instance and never a held-out
one (test2's instances, and test5's categories, which have no train instances: their demos
give no variants). An instance lacking a part the task names is skipped. The object keeps the
source's placement (x, y, yaw), so the instance is the only change.

Alignment: the key poses up to the attach step are carried in the object frame (as `pose`
does) and translated by the difference of the part's centroids in the object frame,
``c_new - c_src`` (surface points of the part at the reset state). A translation keeps the
gripper's orientation and its offset from the part's centre, which is what a grasp or touch of
a generated part depends on; scaling the offset by the parts' extents would also tilt the
approach (a non-rigid map of the key poses) for little gain where the grasp sits near the part's
centre, as the expert's do. After the attach step the key poses keep their world displacement
(`pose_plan`), so a door or lid whose hinge sits elsewhere on the new instance can fail the
replay; such demos are dropped, and the yield says how often.

The translation is folded into the source's object pose (``T_src @ Trans(-(c_new - c_src))``),
so `PoseAugmenter.variant` plans (`pose_plan.plan_actions`, IK-checked) and replays it unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from robopolicy.augment.pose_aug import Placement, PoseAugmenter, Variant, _yaw
from robopolicy.augment.pose_plan import object_mat
from robopolicy.augment.registry import register_augmenter
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


def part_centroid(env, part: str) -> np.ndarray:
    """The centroid of `part`'s surface points in the object frame, in the env's current state."""
    snap = env.snapshot()
    pos, quat = snap.body_poses["base"]
    world = snap.part_points(part).mean(axis=0)
    return object_mat(np.concatenate([pos, quat]))[:3, :3].T @ (world - np.asarray(pos))


@register_augmenter()
class SwapAugmenter:
    """Generates `Variant`s of a source episode on other instances (see the module doc)."""

    image_source = "simulator"

    def __init__(self, params: dict | None = None) -> None:
        self.pose = PoseAugmenter(params)
        self.params = self.pose.params
        self._centroids: dict[tuple[str, int, str], np.ndarray] = {}

    def _centroid(self, env, task, placement: Placement) -> np.ndarray:
        """The aligned part's object-frame centroid on `task`'s instance (cached)."""
        part = task_parts(task)[0]
        key = (task.category, task.instance_id, part)
        if key not in self._centroids:
            env.reset(options={"task": task,
                               "placement": (placement.x, placement.y, placement.yaw)})
            self._centroids[key] = part_centroid(env, part)
        return self._centroids[key]

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

    def variant(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                instance: int) -> Variant:
        """The source demo redone on `instance` at the source's placement."""
        pose0 = np.asarray(source["object_pose"][0], float)
        placement = Placement(float(pose0[0]), float(pose0[1]), _yaw(pose0))
        c_src = self._centroid(env, task, placement)
        new_task = replace(task, instance_id=int(instance), split="train")
        offset = self._centroid(env, new_task, placement) - c_src
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
                                      offset=[float(v) for v in offset])
        else:
            var.reason = f"instance {instance}: {var.reason}"
        return var
