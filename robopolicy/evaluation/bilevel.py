"""The bi-level policy in the evaluation loop: a planner turns the instruction and what the
agentview camera sees into part-level skill calls, and a low-level policy (a skill policy
trained here, or the scripted expert) executes the current call.

`SkillDirector` is the loop's director (`robopolicy.evaluation.loop`): at each reset it asks
the planner for a plan, sets the first call in the env (`env.set_skill`), and after each step
advances to the next call when the current one is done: by its goal predicates
(`advance=predicate`, privileged: PartInstruct's oracle setting; the expert's own judgement
when the expert executes) or by the low-level policy's skill-done head (`advance=learned`).
When the plan runs out the planner is asked for the next skill; `Done` with the task not
achieved ends the episode as `task_failed`, an answer that is still invalid after the
planner's retry as `planner_invalid`, a skill that runs `skill_timeout` steps as
`skill_timeout`. The task's success is always the env's ground-truth chain.

Planner calls of all envs that need one run concurrently (threads), while no env steps, so a
slow endpoint delays the run but never changes an outcome; their wall time is reported apart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

ADVANCE = ("predicate", "learned")
FAILURES = ("planner_invalid", "skill_timeout", "task_failed")
BILEVEL = "bilevel"  # policy.path (policy=bilevel) naming the bi-level policy


@dataclass(frozen=True)
class BilevelConfig:
    """`robopolicy eval policy=bilevel planner=<name>`: who plans, who executes, how to advance.

    low_level: a skill policy directory (`robopolicy train` on a skill-conditioned store) or
        "expert" (the scripted expert executes each planned skill: the planner measured alone).
    advance: "predicate" (the skill's goal predicates, privileged; the expert's own judgement
        when it executes) or "learned" (the low-level policy's skill-done head).
    skill_timeout: control steps one skill may run before the episode ends as skill_timeout.
    done_threshold: advance=learned: the skill is done when p(done) exceeds it.
    planner: the planner's config (`configs/planner/<name>.yaml`).
    """

    low_level: str = "expert"
    advance: str = "predicate"
    skill_timeout: int = 150
    done_threshold: float = 0.5
    planner: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from robopolicy.errors import RobopolicyError

        if self.advance not in ADVANCE:
            raise RobopolicyError(f"eval: policy.advance={self.advance!r} (known: "
                                  f"{', '.join(ADVANCE)})")
        if self.advance == "learned" and self.low_level == "expert":
            raise RobopolicyError("eval: policy.advance=learned needs a low-level policy with a "
                                  "skill-done head; the expert advances by its own judgement")
        if not isinstance(self.skill_timeout, int) or self.skill_timeout <= 0:
            raise RobopolicyError(f"eval: policy.skill_timeout={self.skill_timeout!r}: must be a "
                                  "positive whole number")
        if not self.planner:
            raise RobopolicyError("eval: policy=bilevel needs a planner, e.g. planner=oracle "
                                  "(configs/planner/)")


@dataclass
class EpisodePlan:
    """One env's episode as the director sees it."""

    task: dict
    queued: list = field(default_factory=list)  # planned calls not yet started
    history: list = field(default_factory=list)  # calls started before the current one
    current: object = None  # the SkillCall executing
    skill_steps: int = 0  # steps the current call has run
    planner_calls: int = 0
    planner_s: float = 0.0
    invalid: int = 0  # answers refused (each retried or ending the episode)

    def fields(self, chain: list[dict]) -> dict:
        """The episode record's bi-level fields: the calls executed, how many match the
        ground-truth chain position by position, and the planner's cost."""
        executed = [_as_dict(c) for c in (*self.history, *([self.current] if self.current else []))]
        correct = sum(a == b for a, b in zip(executed, chain, strict=False))
        return {"skills": executed, "skills_correct": correct, "chain_length": len(chain),
                "plan_valid": self.invalid == 0, "planner_calls": self.planner_calls,
                "planner_s": round(self.planner_s, 4)}


def _as_dict(call) -> dict:
    return {"skill": call.skill, "params": dict(call.params)}


class SkillDirector:
    """Plans and advances the skills of every env slot (see the module docstring)."""

    def __init__(self, planner, advance: str = "predicate", skill_timeout: int = 150,
                 done_threshold: float = 0.5, done_fn=None, max_threads: int = 16):
        if advance not in ADVANCE:
            raise ValueError(f"advance={advance!r} (known: {', '.join(ADVANCE)})")
        self.planner, self.advance = planner, advance
        self.skill_timeout, self.done_threshold = skill_timeout, done_threshold
        self.done_fn = done_fn  # (slots) -> p(done) per slot, for advance=learned
        self.episodes: dict[int, EpisodePlan] = {}
        self._threads = ThreadPoolExecutor(max_threads, thread_name_prefix="planner")

    # -- the loop's director interface -----------------------------------------------------
    def begin(self, items: list[tuple]) -> list[tuple]:
        """New episodes: (slot, obs, info, episode spec) -> directives."""
        for slot, _, _, spec in items:
            self.episodes[slot] = EpisodePlan(task=spec.task)
        answers = self._ask([(slot, "plan", obs, info) for slot, obs, info, _ in items])
        return [self._next_directive(slot, answer) for slot, answer in answers]

    def after_step(self, items: list[tuple]) -> list[tuple]:
        """Running episodes after a step: (slot, obs, info, extra, window()) -> directives."""
        asks, directives = [], []
        for (slot, obs, info, _, _), is_done in zip(items, self._done(items), strict=True):
            ep = self.episodes[slot]
            ep.skill_steps += 1
            if is_done:
                if ep.queued:
                    directives.append(self._start(slot, ep.queued.pop(0)))
                else:
                    asks.append((slot, "next", obs, info))
            elif ep.skill_steps >= self.skill_timeout:
                directives.append((slot, "end", "skill_timeout"))
        answers = self._ask(asks)
        return directives + [self._next_directive(slot, answer) for slot, answer in answers]

    def text(self, slot: int, info: dict) -> str:
        """What conditions the low-level policy: the current skill's instruction."""
        return info["skill_instruction"]

    def finish(self, slot: int) -> dict:
        """The ended episode's bi-level record fields (the slot is forgotten)."""
        ep = self.episodes.pop(slot)
        return ep.fields(ep.task.get("chain", []))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    # -- planning -----------------------------------------------------------------------------
    def _ask(self, asks: list[tuple]) -> list[tuple[int, object]]:
        """Run the planner for each (slot, "plan" | "next", obs, info) concurrently; returns
        (slot, calls list | Done | PlannerInvalid) in order."""
        if not asks:
            return []

        def one(slot, kind, obs, info):
            ep = self.episodes[slot]
            t0 = time.perf_counter()
            try:
                if kind == "plan":
                    out = self.planner.plan(ep.task["instruction"], obs, _object_info(ep.task))
                else:
                    out = self.planner.next_skill(list(ep.history) + [ep.current], obs)
            except PlannerInvalidError as e:
                out = e
            finally:
                ep.planner_s += time.perf_counter() - t0
                ep.planner_calls += 1
            return slot, out

        futures = [self._threads.submit(one, *a) for a in asks]
        return [f.result() for f in futures]

    def _next_directive(self, slot: int, answer) -> tuple:
        ep = self.episodes[slot]
        if isinstance(answer, PlannerInvalidError):
            ep.invalid += 1
            return (slot, "end", "planner_invalid")
        if answer is DONE or (isinstance(answer, list) and not answer):
            return (slot, "end", "task_failed")  # the plan ended, the task did not succeed
        calls = answer if isinstance(answer, list) else [answer]
        ep.queued = list(calls[1:])
        return self._start(slot, calls[0])

    def _start(self, slot: int, call) -> tuple:
        ep = self.episodes[slot]
        if ep.current is not None:
            ep.history.append(ep.current)
        ep.current, ep.skill_steps = call, 0
        return (slot, "skill", (_as_dict(call), [_as_dict(c) for c in ep.history],
                                [_as_dict(c) for c in ep.queued]))

    def _done(self, items: list[tuple]) -> list[bool]:
        """Whether each env's current skill is done: the workers' judgement (predicates or the
        expert), or the low-level policy's skill-done head on the env's observation window."""
        if self.advance == "predicate" or self.done_fn is None:
            return [bool(extra.get("skill_done", False)) for _, _, _, extra, _ in items]
        if not items:
            return []
        p = np.asarray(self.done_fn([window() for *_, window in items],
                                    [info["skill_instruction"] for _, _, info, _, _ in items]))
        return list(p > self.done_threshold)


def _object_info(task: dict) -> dict:
    """What a planner may know of the object: its category and part vocabulary."""
    return {"category": task["category"], "instance_id": task["instance_id"]}


class BilevelRunner:
    """The bi-level policy as the evaluation loop's runner: the low-level runner computes the
    actions (conditioned on the current skill's instruction), the director plans and advances."""

    def __init__(self, low_level, director: SkillDirector):
        self.inner, self.director = low_level, director

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args):
        return self.inner(*args)

