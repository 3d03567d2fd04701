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
`skill_timeout`. With `hold_grasp` a learned low level cannot let go of what it carries: during
a move or rotate with a grasp since the last release, its gripper commands are set closed (only
a release opens the hand, as the skill grammar means). With `replan_every=K` the loop is closed within a skill too: every K steps
of a running skill the planner is asked again what the current skill is, from the skills
finished and the frame of that moment, and a different answer replaces the running skill (a
`Done`, an invalid answer or the same call leaves it running). The task's success is always
the env's ground-truth chain. With `lookahead=N` the executor is told up to N calls after the
one it starts: the plan's queued calls, or, when nothing is queued, the planner's answers to
"what follows" (`next_skill` with the starting call and the calls told before counted as
done, until it answers done), asked before the call starts. A low-level policy conditioned on
the next skill (`next_skill: true`) needs one; the scripted expert uses the rest of the plan
(a touch's side depends on the push after it, where a push ends on whether a grasp follows).

Planner calls of all envs that need one run concurrently (threads), while no env steps, so a
slow endpoint delays the run but never changes an outcome; their wall time is reported apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ADVANCE = ("predicate", "learned")
LOOKAHEAD_EXPERT = 8  # lookahead=auto with the expert executing: the rest of any suite chain
MAX_TIMEOUTS = 2  # a skill timed out this often in an episode ends it as skill_timeout
BILEVEL = "bilevel"  # policy.path (policy=bilevel) naming the bi-level policy
CARRY_SKILLS = ("move", "rotate")  # skills that keep what the hand holds
GRIPPER = 9  # the action's gripper entry (sims.partmanip.env: 1 = open)
GRIPPER_CLOSED = 0.0


@dataclass(frozen=True)
class BilevelConfig:
    """`robopolicy eval policy=bilevel planner=<name>`: who plans, who executes, how to advance.

    low_level: a skill policy directory (`robopolicy train` on a skill-conditioned store) or
        "expert" (the scripted expert executes each planned skill: the planner measured alone).
    advance: "predicate" (the skill's goal predicates, privileged; the expert's own judgement
        when it executes) or "learned" (the low-level policy's skill-done head).
    skill_timeout: control steps one skill may run before the planner is asked again (the
        episode ends as skill_timeout at the third time).
    done_threshold: advance=learned: the skill is done when p(done) exceeds it.
    replan_every: ask the planner again every this many steps of a running skill (0: only
        when a skill ends); the checks count towards a chat planner's `max_calls`.
    lookahead: how many calls after the starting one the executor is told, asking the planner
        for them when the plan has none queued (a planner call each): "auto" (the expert: up
        to LOOKAHEAD_EXPERT; a policy trained with `next_skill: true`: 1; else 0) or N >= 0.
    hold_grasp: a learned low level's gripper stays closed during a move or rotate that
        carries a grasped object (a release is the skill that opens it).
    planner: the planner's config (`configs/planner/<name>.yaml`).
    """

    low_level: str = "expert"
    advance: str = "predicate"
    skill_timeout: int = 150
    done_threshold: float = 0.5
    replan_every: int = 0
    lookahead: str | int = "auto"
    hold_grasp: bool = False
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
        if not isinstance(self.replan_every, int) or self.replan_every < 0:
            raise RobopolicyError(f"eval: policy.replan_every={self.replan_every!r}: must be 0 "
                                  "(off) or a positive whole number")
        if self.lookahead != "auto" and not (isinstance(self.lookahead, int)
                                             and self.lookahead >= 0):
            raise RobopolicyError(f"eval: policy.lookahead={self.lookahead!r}: must be auto or a "
                                  "whole number of calls (0: off)")
        if not isinstance(self.hold_grasp, bool):
            raise RobopolicyError(f"eval: policy.hold_grasp={self.hold_grasp!r}: must be true or "
                                  "false")
        if self.hold_grasp and self.low_level == "expert":
            raise RobopolicyError("eval: policy.hold_grasp is for a learned low level; the "
                                  "scripted expert keeps its own grasp")
        if not self.planner:
            raise RobopolicyError("eval: policy=bilevel needs a planner, e.g. planner=oracle "
                                  "(configs/planner/)")


@dataclass
class EpisodePlan:
    """One env's episode as the director sees it: its planner, the calls planned and started."""

    task: dict
    planner: object  # this episode's Planner (`spawn` of the run's planner)
    key: int = 0  # the episode's run-wide key (EpisodeSpec.key), as the runner is told it
    queued: list = field(default_factory=list)  # planned calls not yet started
    history: list = field(default_factory=list)  # calls finished (or abandoned) before
    current: object = None  # the SkillCall executing
    skill_steps: int = 0  # steps the current call has run
    skill_starts: list = field(default_factory=list)  # the step each started call began at
    steps: int = 0
    timeouts: int = 0
    planner_s: float = 0.0
    failed: str | None = None  # the planner's failure reason, if it failed
    replaced: list = field(default_factory=list)  # (step, call) of each skill a check replaced
    following: object = None  # the first call told to follow `current` (SkillDirector.lookahead)
    said_done: bool = False  # the planner answered done (the episode then ends)

    @property
    def carrying(self) -> bool:
        """Whether the current call carries a grasped object: a move or rotate with a grasp
        among the calls before it since the last release."""
        if self.current is None or _as_dict(self.current)["skill"] not in CARRY_SKILLS:
            return False
        for call in reversed(self.history):
            kind = _as_dict(call)["skill"]
            if kind in ("grasp", "release"):
                return kind == "grasp"
        return False

    def fields(self) -> dict:
        """The episode record's bi-level fields: the calls executed and the step each began,
        how many equal the ground-truth chain's at the same position, and the planner's cost."""
        executed = [_as_dict(c) for c in (*self.history, *([self.current] if self.current else []))]
        chain = self.task.get("chain", [])
        same = [_as_dict(_call(a)) == _as_dict(_call(b))
                for a, b in zip(executed, chain, strict=False)]
        # the answers given after a correct history: each call up to the first that differs from
        # the chain's (a call past the chain's end included), and a "done" before the chain's end
        right = same.index(False) if False in same else len(same)
        answered = min(len(executed), right + 1)
        answered += int(self.said_done and right == len(executed) < len(chain))
        return {"skills": executed, "skill_starts": list(self.skill_starts),
                "skills_correct": sum(same), "chain_length": len(chain),
                "next_skill_answers": answered, "next_skill_correct": right,
                "plan_valid": self.failed is None, "planner_calls": self.planner.calls,
                "replaced": [{"step": t, **_as_dict(c)} for t, c in self.replaced],
                "planner_s": round(self.planner_s, 4)}


def _call(d):
    from sims.partmanip.skill_source import call_from_dict

    return call_from_dict(d)


def _encode(calls: list, following: list | None = None) -> np.ndarray:
    """Calls -> their `encode_skill` vectors (B, SKILL_PARAMS_DIM) float32; with `following`
    (the call after each, or None), each row also holds the next call's vector (zeros for
    None), as `robopolicy.data.skills.with_next` lays them out."""
    from robopolicy.data.skills import SKILL_PARAMS_DIM, encode_skill

    def vec(call) -> np.ndarray:
        if call is None:
            return np.zeros(SKILL_PARAMS_DIM, np.float32)
        call = _call(call)
        return encode_skill(call.skill, call.params)

    if following is None:
        rows = [vec(c) for c in calls]
    else:
        rows = [np.concatenate([vec(c), vec(f)]) for c, f in zip(calls, following, strict=True)]
    width = SKILL_PARAMS_DIM * (1 if following is None else 2)
    return np.stack(rows) if rows else np.zeros((0, width), np.float32)


def _as_dict(call) -> dict:
    from sims.partmanip.skill_source import call_to_dict

    return call_to_dict(_call(call))


class SkillDirector:
    """Plans and advances the skills of every env slot (see the module docstring).

    Each episode gets its own `spawn` of `planner`; a planner that logs writes each split's
    exchanges to `<run>/<split>/planner_log.jsonl`. `done_fn(windows, texts, skill_params)`:
    p(done) per env, for advance=learned (`skill_params`: each env's current call encoded).
    `lookahead`: how many calls after each starting one the executor is told (asking the
    planner when none is queued). `next_skill`: `skill_params` rows hold the current call's
    vector and the first call told after it, as `with_next` lays them out. `skill_text`: the
    text the low-level policy is conditioned on (`robopolicy.data.skills.skill_text`), from
    the env's `skill_instruction` or rebuilt from the current call."""

    def __init__(self, planner, advance: str = "predicate",
                 skill_timeout: int = 150, done_threshold: float = 0.5, done_fn=None,
                 replan_every: int = 0, lookahead: int = 0, next_skill: bool = False,
                 skill_text: str = "instruction"):
        if advance not in ADVANCE:
            raise ValueError(f"advance={advance!r} (known: {', '.join(ADVANCE)})")
        self.planner, self.advance = planner, advance
        self.skill_timeout, self.done_threshold = skill_timeout, done_threshold
        self.done_fn = done_fn
        self.replan_every = replan_every
        self.lookahead = lookahead
        self.next_skill = next_skill
        self.skill_text = skill_text
        self.out_dir: Path | None = None
        self.logs: dict[str, object] = {}  # an ExchangeLog per split (episode group)
        self.episodes: dict[int, EpisodePlan] = {}

    # -- the loop's director interface -----------------------------------------------------
    def open(self, out_dir: Path) -> None:
        """Start a run writing into `out_dir`."""
        self.out_dir = Path(out_dir)

    def begin(self, items: list[tuple]) -> list[tuple]:
        """New episodes: (slot, obs, info, episode spec) -> directives."""
        from robopolicy.planners.vocabulary import ObjectInfo
        from sims.partmanip.tasks import TaskSpec

        asks = []
        for slot, obs, info, spec in items:
            planner = self._spawn(spec.group)
            planner.reset(episode=f"{spec.group}/{spec.index}" if spec.group else str(spec.index))
            self.episodes[slot] = EpisodePlan(task=spec.task, planner=planner, key=spec.key)
            task = TaskSpec.from_dict(spec.task)
            object_info = ObjectInfo.from_task(task, info.get("object_parts"))
            asks.append((slot, lambda p=planner, o=obs, oi=object_info, t=task:
                         p.plan_async(t.instruction, o, oi)))
        directives = [self._answer(slot, answer) for slot, answer in self._ask(asks)]
        return self._look_ahead(directives, {slot: obs for slot, obs, *_ in items})

    def after_step(self, items: list[tuple]) -> list[tuple]:
        """Running episodes after a step: (slot, obs, info, extra, window()) -> directives."""
        asks, checks, directives = [], [], []
        for (slot, obs, _, _, _), is_done in zip(items, self._done(items), strict=True):
            ep = self.episodes[slot]
            ep.skill_steps += 1
            ep.steps += 1
            if is_done:
                ep.history.append(ep.current)
                ep.current = None
            elif ep.skill_steps >= self.skill_timeout:
                ep.timeouts += 1
                if ep.timeouts > MAX_TIMEOUTS:
                    directives.append((slot, "end", "skill_timeout"))
                    continue
                ep.queued = []  # a plan that stalled is planned on from here
            else:
                if self.replan_every and ep.skill_steps % self.replan_every == 0:
                    ep.planner.step = ep.steps
                    checks.append((slot, lambda p=ep.planner, h=list(ep.history), o=obs:
                                   p.next_skill_async(h, o)))
                continue
            if ep.queued:
                directives.append(self._start(slot, ep.queued.pop(0)))
            else:
                ep.planner.step = ep.steps  # the viewer shows the reply at this step
                asks.append((slot, lambda p=ep.planner, h=list(ep.history), o=obs:
                             p.next_skill_async(h, o)))
        answers = self._ask(asks + checks)
        directives += [self._answer(slot, a) for slot, a in answers[:len(asks)]]
        directives += [d for slot, a in answers[len(asks):] if (d := self._recheck(slot, a)) is not None]
        return self._look_ahead(directives, {slot: obs for slot, obs, *_ in items})

    def text(self, slot: int, info: dict) -> str:
        """What conditions the low-level policy: the current skill's instruction (`skill_text`)."""
        from robopolicy.data.skills import skill_text

        call = self.episodes[slot].current
        if call is None:
            return info["skill_instruction"]
        return skill_text(call, info["skill_instruction"], self.skill_text)

    def skill_params(self, keys: list[int]) -> np.ndarray:
        """The current call's `encode_skill` vector (B, SKILL_PARAMS_DIM) of each episode named
        by its key: what a low-level policy trained with skill_params: true is conditioned on;
        with `next_skill`, (B, 2 * SKILL_PARAMS_DIM): the next call's vector follows."""
        by_key = {ep.key: ep for ep in self.episodes.values()}
        return self._vectors([by_key[k] for k in keys])

    def carrying(self, keys: list[int]) -> np.ndarray:
        """(B,) bool: whether the current call of each episode named by its key carries a
        grasped object (`EpisodePlan.carrying`)."""
        by_key = {ep.key: ep for ep in self.episodes.values()}
        return np.array([by_key[k].carrying for k in keys], bool)

    def _vectors(self, plans: list[EpisodePlan]) -> np.ndarray:
        return _encode([ep.current for ep in plans],
                       [ep.following for ep in plans] if self.next_skill else None)

    def finish(self, slot: int) -> dict:
        """The ended episode's bi-level record fields (the slot is forgotten)."""
        return self.episodes.pop(slot).fields()

    def close(self) -> None:
        self.planner.close()

    # -- planning -----------------------------------------------------------------------------
    def _spawn(self, group: str):
        """A planner for an episode of split `group`, logging to the split's file."""
        from robopolicy.planners.base import ExchangeLog

        planner = self.planner.spawn()
        if self.planner.logs and self.out_dir is not None:
            if group not in self.logs:
                self.logs[group] = ExchangeLog(self.out_dir / group / "planner_log.jsonl")
            planner.log = self.logs[group]
        return planner

    def _ask(self, asks: list[tuple]) -> list[tuple[int, object]]:
        """Submit every (slot, submit()) at once (the planner runs them concurrently) and wait
        for all; returns (slot, answer or PlannerFailure) in order."""
        from robopolicy.planners.base import PlannerFailure

        t0 = time.perf_counter()
        pending = []
        for slot, submit in asks:
            future = submit()
            future.add_done_callback(lambda _f, s=slot: self._took(s, time.perf_counter() - t0))
            pending.append((slot, future))
        out = []
        for slot, future in pending:
            try:
                out.append((slot, future.result()))
            except PlannerFailure as e:
                out.append((slot, e))
        return out

    def _took(self, slot: int, seconds: float) -> None:
        self.episodes[slot].planner_s += seconds

    def _answer(self, slot: int, answer) -> tuple:
        from robopolicy.planners.base import PlannerFailure
        from robopolicy.planners.grammar import Done

        ep = self.episodes[slot]
        if isinstance(answer, PlannerFailure):
            ep.failed = answer.reason
            return (slot, "end", answer.reason)
        if isinstance(answer, Done) or (isinstance(answer, list) and not answer):
            ep.said_done = True
            return (slot, "end", "task_failed")  # the planner is done, the task is not
        calls = list(answer) if isinstance(answer, list) else [answer]
        ep.queued = calls[1:]
        return self._start(slot, calls[0])

    def _recheck(self, slot: int, answer) -> tuple | None:
        """A replan_every answer: a call other than the running one replaces it (the plan
        queued after it is dropped); anything else leaves the running skill as it is."""
        from robopolicy.planners.grammar import SkillCall

        ep = self.episodes[slot]
        if not isinstance(answer, SkillCall) or _as_dict(answer) == _as_dict(ep.current):
            return None
        ep.replaced.append((ep.skill_starts.pop(), ep.current))  # `skills` lists executed calls
        ep.queued = []
        return self._start(slot, answer)

    def _look_ahead(self, directives: list[tuple], observations: dict) -> list[tuple]:
        """Each skill directive whose plan has nothing queued after its call is told up to
        `lookahead` calls that follow it: the planner's answers, asked one round at a time for
        all such slots at once, each round counting the calls told before as done; an answer
        other than a skill call ends the slot's list."""
        from robopolicy.planners.grammar import SkillCall

        told = {slot: [] for slot, kind, _ in directives
                if kind == "skill" and not self.episodes[slot].queued}
        open_slots = sorted(told)
        for _ in range(self.lookahead):
            asks = [(slot, lambda ep=self.episodes[slot], t=told[slot], o=observations[slot]:
                     ep.planner.next_skill_async([*ep.history, ep.current, *t], o))
                    for slot in open_slots]
            open_slots = []
            for slot, answer in self._ask(asks):
                if isinstance(answer, list):
                    answer = answer[0] if answer else None
                if isinstance(answer, SkillCall):
                    told[slot].append(answer)
                    open_slots.append(slot)
        for slot, calls in told.items():
            self.episodes[slot].following = calls[0] if calls else None
        return [(slot, kind, (args[0], args[1], [_as_dict(c) for c in told[slot]]))
                if told.get(slot) else (slot, kind, args) for slot, kind, args in directives]

    def _start(self, slot: int, call) -> tuple:
        ep = self.episodes[slot]
        ep.following = ep.queued[0] if ep.queued else None
        ep.current, ep.skill_steps = call, 0
        ep.skill_starts.append(ep.steps)
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
                                    [self.text(slot, info) for slot, _, info, _, _ in items],
                                    self._vectors([self.episodes[slot] for slot, *_ in items])))
        return list(p > self.done_threshold)


class BilevelRunner:
    """The bi-level policy as the evaluation loop's runner: the low-level runner computes the
    actions (conditioned on the current skill's instruction), the director plans and advances."""

    def __init__(self, low_level, director: SkillDirector, hold_grasp: bool = False):
        self.inner, self.director, self.hold_grasp = low_level, director, hold_grasp

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, windows, texts, generators, episodes):
        """The low-level runner's actions; a policy trained with skill_params: true also gets
        each row's current call as its `encode_skill` vector. With `hold_grasp`, rows carrying a
        grasped object get their gripper commands closed (the predicted chunks the viewer shows
        stay as predicted)."""
        params = (self.director.skill_params(episodes)
                  if getattr(self.inner, "uses_skill_params", False) else None)
        actions = self.inner(windows, texts, generators, episodes, skill_params=params)
        if self.hold_grasp:
            actions = np.array(actions, copy=True)
            actions[self.director.carrying(episodes), :, GRIPPER] = GRIPPER_CLOSED
        return actions
