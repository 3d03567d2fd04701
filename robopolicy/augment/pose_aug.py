"""The `pose` augmenter: a source demo redone with the object at a new placement (x, y, yaw
sampled within the suite's placement ranges; the source's yaw where the task names a spatial
part, a side in the world frame), kept only if the simulator, replaying it from its
new initial state, says it succeeds.

The trajectory is `pose_plan.plan_actions` (key poses carried with the object, IK-checked), one
task phase at a time: a two-phase task's second phase is planned from the object's pose where
the replay of the first left it. A task with a rotate keeps the yaw near the source's
(`rotate_yaw_deg`). The replay that verifies a demo is also what records it: its observations are the simulator's. Its
camera images are too with ``params.image_source: simulator`` (the default: on a CPU the
Gaussian renderer costs about 0.1-0.2 s a frame at 64 px against MuJoCo's milliseconds), or are
re-rendered from the instance's fitted Gaussians posed by the replay's records with
``gaussians`` (`frames`); the store's ``image_source`` attr says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robopolicy.augment.pose_plan import PlanFailure, PoseParams, ReachCheck, plan_actions
from robopolicy.augment.registry import register_augmenter

IMAGE_SOURCES = ("simulator", "gaussians")


@dataclass(frozen=True)
class Placement:
    x: float
    y: float
    yaw: float


@dataclass
class Variant:
    """One generated demo: its placement (pose; None for the others), and (if it was kept) its
    data and metadata (``params``: the draw, for the provenance; ``completion``,
    ``skill_starts``; optionally ``cameras``, the episode's metadata field)."""

    placement: Placement | None
    success: bool
    reason: str = ""
    data: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def sample_placement(rng: np.random.Generator, env_config) -> Placement:
    """x, y, yaw uniformly within the suite's placement ranges (`EnvConfig.x_range` ...)."""
    return Placement(float(rng.uniform(*env_config.x_range)), float(rng.uniform(*env_config.y_range)),
                     float(rng.uniform(*env_config.yaw_range)))


def resting_yaw(object_pose: np.ndarray) -> float:
    """The yaw of a recorded object pose (pos 3 + quaternion wxyz 4) resting on the table."""
    w, x, y, z = (float(v) for v in object_pose[3:7])
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


@register_augmenter()
class PoseAugmenter:
    """Generates `Variant`s of a source episode on a live PartManipEnv (see the module doc)."""

    def __init__(self, params: dict | None = None) -> None:
        from robopolicy.augment.frames import FrameCache, FrameParams
        from robopolicy.errors import RobopolicyError

        params = dict(params or {})
        self.image_source = params.pop("image_source", "simulator")
        if self.image_source not in IMAGE_SOURCES:
            raise RobopolicyError(f"augment pose: params.image_source={self.image_source!r} "
                                  f"(one of {list(IMAGE_SOURCES)})")
        self.frames = FrameCache(FrameParams(params.pop("fit", {}) or {},
                                             params.pop("fit_cache_dir", None)))
        self.params = PoseParams(**params)
        self._reach: ReachCheck | None = None

    def variants(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                 rng: np.random.Generator, n: int) -> list[Variant]:
        """`n` variants of one source episode (`source`: its arrays; `source_meta`: its
        metadata) of `task` (a TaskSpec), each on its own sampled placement."""
        from sims.objects.spatial import SPATIAL_PARTS

        out = []
        for _ in range(n):
            placement = sample_placement(rng, env.config)
            if any(c.params.get("part") in SPATIAL_PARTS for c in task.chain):
                # a spatial part (left, top...) is a side in the world frame: turned, the object
                # would show another side there, so only its position changes
                placement = Placement(placement.x, placement.y, resting_yaw(source["object_pose"][0]))
            elif any(c.skill == "rotate" for c in task.chain):
                # a rotate ends at the source's world orientation, so the wrist makes up the
                # yaw change: beyond a quarter turn or so it runs into its joint limits
                turn = np.radians(self.params.rotate_yaw_deg)
                yaw = resting_yaw(source["object_pose"][0]) + float(rng.uniform(-turn, turn))
                placement = Placement(placement.x, placement.y, yaw)
            out.append(self.variant(env, task, source, source_meta, placement))
        return out

    def variant(self, env, task, source: dict[str, np.ndarray], source_meta: dict,
                placement: Placement) -> Variant:
        if self._reach is None:
            self._reach = ReachCheck(self.params)
        obs, info = env.reset(options={"task": task,
                                       "placement": (placement.x, placement.y, placement.yaw)})
        starts = json.loads(source_meta["skill_starts"] or "[0]")
        chain = json.loads(source_meta["chain"] or "[]") or [{"skill": "grasp"}]
        steps: dict[str, list] = {k: [] for k in obs}
        steps["action"] = []
        skill_starts, plans = [0], []
        # each phase from where the replay left the object: a second phase's grasp or touch
        # is carried with the object's pose after the first, not its initial one
        phases = _phases(task, chain, starts, len(source["action"]))
        for n, (lo, hi, first, world_from, released) in enumerate(phases):
            last = n == len(phases) - 1
            try:
                actions, plan = plan_actions(source["action"][lo:hi], [s - lo for s in starts if lo <= s < hi],
                                             first, source["object_pose"][lo], obs["object_pose"],
                                             env.commanded_target, self.params,
                                             None if world_from is None else world_from - lo,
                                             released, first_phase=n == 0, last_phase=last)
                # the final hold is slack: the task ends the step its last goal holds
                needed = len(steps["action"]) + len(actions) - (self.params.hold_steps if last else 0)
                if needed > task.horizon:
                    raise PlanFailure(f"{needed} steps, over the horizon {task.horizon}")
                self._reach.joint_path(actions, obs["robot_joints"][:7])
            except PlanFailure as e:
                return Variant(placement, False, f"plan: {e}" + (f" (phase from step {lo})" if lo else ""))
            plans.append({"keys": [int(k) + lo for k in plan["keys"]], "attach": int(plan["attach"]) + lo})
            done = False
            for action in actions:
                for k, v in obs.items():
                    steps[k].append(v)
                steps["action"].append(action)
                if len(skill_starts) <= info["skill_index"] < len(task.chain):
                    skill_starts.append(len(steps["action"]) - 1)
                obs, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    done = True
                    break
            if done:
                break
        if not info["success"]:
            return Variant(placement, False, f"replay: skill {info['skill_index']} not done")
        data = {k: np.stack(v) for k, v in steps.items()}
        if self.image_source == "gaussians":
            frames = self.frames.get(source_meta["category"], source_meta["instance_id"])
            data.update(frames.render_episode(
                data, {"chain": source_meta["chain"], "skill_starts": json.dumps(skill_starts)},
                list(data), tuple(env.config.image_size)))
        meta = {"success": True, "completion": float(info["completion"]),
                "skill_starts": json.dumps(skill_starts),
                "params": {"x": placement.x, "y": placement.y, "yaw": placement.yaw,
                           "keys": [k for p in plans for k in p["keys"]],
                           "attach": [p["attach"] for p in plans]}}
        return Variant(placement, True, "", data, meta)


def _phases(task, chain: list[dict], starts: list[int], length: int
            ) -> list[tuple[int, int, str, int | None, bool]]:
    """(first step, end step, first skill, the step its rotate begins or None, whether it ends
    with a release) of each phase of a source demo, from its chain, skill starts and the task's
    phase starts."""
    firsts = [i for i in task.phases if i < len(starts)] or [0]
    bounds = [starts[i] for i in firsts] + [length]
    out = []
    for n, i in enumerate(firsts):
        last = firsts[n + 1] if n + 1 < len(firsts) else len(chain)
        turn = next((starts[j] for j in range(i, min(last, len(starts)))
                     if chain[j].get("skill") == "rotate"), None)
        out.append((bounds[n], bounds[n + 1], chain[i].get("skill", "grasp"), turn,
                    chain[last - 1].get("skill") == "release"))
    return out
