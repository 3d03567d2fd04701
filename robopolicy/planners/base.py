"""The Planner interface, its typed failures, and the retry policy of model planners.

A planner turns the instruction, what the camera sees and the object's parts into skill calls:

    planner.reset(episode="test1/17")
    calls = planner.plan(instruction, observation, object_info)    # open loop, at reset
    nxt = planner.next_skill(history, observation)                  # SkillCall or DONE

One planner object holds one episode's state; `spawn()` gives another (for another env) that
shares the model, endpoint, thread pool and log. `plan_async`/`next_skill_async` return
futures, so many envs wait on a slow endpoint together rather than one after another.

Every answer of a model planner is parsed and validated (`robopolicy.planners.grammar`); an
invalid answer is asked again once with the error appended to the prompt, and a second
invalid answer raises `PlannerInvalid` (the episode ends as `planner_invalid`: nothing is
executed blindly). More than `max_calls` model calls in one episode raise
`PlannerBudgetExhausted` (`planner_budget`).
"""

from __future__ import annotations

import abc
import copy
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from robopolicy.errors import RobopolicyError
from robopolicy.planners.grammar import (
    Done,
    PlannerAnswerError,
    SkillCall,
    parse_next_skill,
    parse_skill_calls,
    validate,
)
from robopolicy.planners.prompt import Mode, Prompt, build_prompt
from robopolicy.planners.vocabulary import DEFAULT_SNAP_THRESHOLD, ObjectInfo, PartVocabulary


class PlannerFailure(RobopolicyError):
    """The planner could not give a usable skill: the episode ends with `reason`."""

    reason: ClassVar[str] = "planner_failure"


class PlannerInvalid(PlannerFailure):
    """Invalid answers after the retry (the message holds the last error)."""

    reason = "planner_invalid"


class PlannerBudgetExhausted(PlannerFailure):
    """The episode used its model-call budget."""

    reason = "planner_budget"


class Planner(abc.ABC):
    """Base class of all planners (see the module docstring)."""

    name: ClassVar[str] = ""
    #: the observations the planner looks at (the env renders them for it)
    obs_keys: ClassVar[tuple[str, ...]] = ("rgb.agentview",)
    #: whether its exchanges are logged (its constructor takes `log_path`)
    logs: ClassVar[bool] = False
    #: [width, height] of the frames it learned from, which the env then renders at (None: any)
    image_size: list[int] | None = None

    def __init__(self, *, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise RobopolicyError(f"planner.concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self._shared = {"executor": None, "lock": threading.Lock()}  # shared by spawns
        self.episode: str | None = None
        self.step = 0  # the episode's control step the caller asks at (labels log records)
        self.calls = 0

    def reset(self, episode: str | None = None) -> None:
        """Start a new episode (`episode` labels its log records)."""
        self.episode = episode
        self.step = 0
        self.calls = 0

    @abc.abstractmethod
    def plan(self, instruction: str, observation: Mapping[str, Any],
             object_info: ObjectInfo) -> list[SkillCall]:
        """The whole plan for the episode (called at reset; sets the episode's context)."""

    @abc.abstractmethod
    def next_skill(self, history: Sequence[SkillCall],
                   observation: Mapping[str, Any]) -> SkillCall | Done:
        """The skill to run after `history` (the skills finished so far), or DONE."""

    def spawn(self) -> Planner:
        """A planner for another episode running at the same time: its own episode state, the
        same model, endpoint, thread pool and log."""
        other = copy.copy(self)
        other.reset()
        return other

    def _executor(self) -> ThreadPoolExecutor:
        with self._shared["lock"]:
            if self._shared["executor"] is None:
                self._shared["executor"] = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix=f"planner-{self.name}")
            return self._shared["executor"]

    def _submit(self, fn: Callable, *args: Any) -> Future:
        return self._executor().submit(fn, *args)

    def plan_async(self, instruction: str, observation: Mapping[str, Any],
                   object_info: ObjectInfo) -> Future:
        """`plan` on the planner's thread pool: a Future of list[SkillCall] (or its failure)."""
        return self._submit(self.plan, instruction, observation, object_info)

    def next_skill_async(self, history: Sequence[SkillCall], observation: Mapping[str, Any]) -> Future:
        """`next_skill` on the planner's thread pool: a Future of SkillCall | Done."""
        return self._submit(self.next_skill, list(history), observation)

    def close(self) -> None:
        """Stop the thread pool shared with spawned planners."""
        with self._shared["lock"]:
            ex, self._shared["executor"] = self._shared["executor"], None
        if ex is not None:
            ex.shutdown(wait=True)


def done_future(fn: Callable, *args: Any) -> Future:
    """Run `fn` now; its result (or exception) in a completed Future."""
    fut: Future = Future()
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # the caller sees it from fut.result()
        fut.set_exception(exc)
    return fut


class ExchangeLog:
    """Appends one JSON object per planner exchange to a file (thread-safe; the directory is
    created on the first record). Records never hold credentials: callers pass the request
    body, not its headers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)


@dataclass
class Completion:
    """A model's raw answer with what to log about the exchange."""

    text: str
    request: dict = field(default_factory=dict)
    response: Any = None
    latency_s: float = 0.0
    error: str | None = None  # why the reply holds no answer (a refusal, a malformed body)


class ModelPlanner(Planner):
    """A planner that asks a model in text (openai, transformers): prompt -> answer -> parse ->
    validate, with one retry carrying the error, a per-episode call budget and a log."""

    logs = True

    def __init__(self, *, snap_threshold: float = DEFAULT_SNAP_THRESHOLD, invalid_retries: int = 1,
                 max_calls: int = 32, concurrency: int = 8, log_path: str | Path | None = None) -> None:
        super().__init__(concurrency=concurrency)
        if invalid_retries < 0 or max_calls < 1:
            raise RobopolicyError(f"planner: invalid_retries must be >= 0 and max_calls >= 1, "
                                  f"got {invalid_retries} and {max_calls}")
        self.snap_threshold = snap_threshold
        self.invalid_retries = invalid_retries
        self.max_calls = max_calls
        self.log = ExchangeLog(log_path) if log_path is not None else None
        self._instruction: str | None = None
        self._vocabulary: PartVocabulary | None = None
        self._plan: tuple[SkillCall, ...] = ()

    def reset(self, episode: str | None = None) -> None:
        super().reset(episode)
        self._instruction = None
        self._vocabulary = None
        self._plan = ()

    @abc.abstractmethod
    def complete(self, prompt: Prompt) -> Completion:
        """The model's answer to `prompt` (transport errors raise RobopolicyError)."""

    def plan(self, instruction: str, observation: Mapping[str, Any],
             object_info: ObjectInfo) -> list[SkillCall]:
        self._instruction = instruction
        self._vocabulary = PartVocabulary.for_object(object_info, self.snap_threshold)
        self._plan = ()
        self._plan = tuple(self._ask("plan", (), observation))
        return list(self._plan)

    def next_skill(self, history: Sequence[SkillCall],
                   observation: Mapping[str, Any]) -> SkillCall | Done:
        if self._vocabulary is None:
            raise RobopolicyError(f"planner '{self.name}': next_skill before plan(): call plan() "
                                  "at the episode's start")
        return self._ask("next", tuple(history), observation)

    def _check(self, mode: Mode, text: str) -> list[SkillCall] | SkillCall | Done:
        vocab = self._vocabulary
        if mode == "plan":
            return [validate(c, vocab) for c in parse_skill_calls(text)]
        answer = parse_next_skill(text)
        return answer if isinstance(answer, Done) else validate(answer, vocab)

    def _ask(self, mode: Mode, history: tuple, observation: Mapping[str, Any]):
        feedback = None
        for attempt in range(self.invalid_retries + 1):
            if self.calls >= self.max_calls:
                raise PlannerBudgetExhausted(f"planner '{self.name}': the episode's budget of "
                                             f"{self.max_calls} model calls is spent")
            self.calls += 1
            prompt = build_prompt(mode, self._instruction, self._vocabulary, history,
                                  observation, feedback, self._plan)
            done = self.complete(prompt)
            try:
                if done.error is not None:
                    raise PlannerAnswerError(done.error)
                result = self._check(mode, done.text)
                outcome = "ok"
            except PlannerAnswerError as exc:
                result, outcome = None, f"invalid: {exc}"
                feedback = (done.text, str(exc))
            self.record(mode=mode, attempt=attempt, request=done.request, response=done.response,
                        answer=done.text, latency_s=done.latency_s, outcome=outcome)
            if result is not None:
                return result
        raise PlannerInvalid(f"planner '{self.name}': {self.invalid_retries + 1} invalid answers, "
                             f"the last: {feedback[1]}")

    def record(self, **fields: Any) -> None:
        """Append one exchange to the log (when the planner has one)."""
        if self.log is not None:
            self.log.write({"time": time.time(), "planner": self.name, "episode": self.episode,
                            "step": self.step, **fields})
