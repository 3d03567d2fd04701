"""The oracle planner: the task's own skill chain (PartInstruct's ground-truth skill sequence).

It reads the privileged `ObjectInfo.task` and returns its chain in order. When a skill counts
as finished is the bi-level policy's business (`policy.advance`: the goal predicates or the
low-level policy's skill-done head).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from robopolicy.errors import RobopolicyError
from robopolicy.planners import register_planner
from robopolicy.planners.base import Planner, done_future
from robopolicy.planners.grammar import DONE, Done, SkillCall
from robopolicy.planners.vocabulary import ObjectInfo


@register_planner()
class OraclePlanner(Planner):
    """The ground-truth chain, in order (see the module docstring)."""

    obs_keys = ()  # it reads the task, not the scene

    def __init__(self, concurrency: int = 1) -> None:
        super().__init__(concurrency=concurrency)
        self.chain: tuple[SkillCall, ...] | None = None

    def reset(self, episode: str | None = None) -> None:
        super().reset(episode)
        self.chain = None

    def plan(self, instruction: str, observation: Mapping[str, Any],
             object_info: ObjectInfo) -> list[SkillCall]:
        if object_info.task is None:
            raise RobopolicyError("planner=oracle needs the task's chain: pass "
                                  "ObjectInfo.from_task(task) as object_info")
        self.chain = tuple(object_info.task.chain)
        self.calls += 1
        return list(self.chain)

    def next_skill(self, history: Sequence[SkillCall],
                   observation: Mapping[str, Any]) -> SkillCall | Done:
        if self.chain is None:
            raise RobopolicyError("planner 'oracle': next_skill before plan(): call plan() at the "
                                  "episode's start")
        self.calls += 1
        return self.chain[len(history)] if len(history) < len(self.chain) else DONE

    # answers are immediate: no thread pool
    def plan_async(self, instruction: str, observation: Mapping[str, Any],
                   object_info: ObjectInfo) -> Future:
        return done_future(self.plan, instruction, observation, object_info)

    def next_skill_async(self, history: Sequence[SkillCall], observation: Mapping[str, Any]) -> Future:
        return done_future(self.next_skill, list(history), observation)
