"""Typed configs of an evaluation run, built from the hydra config in one place
(`EvalConfig.from_hydra`); every count is checked before anything is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.bilevel import BILEVEL, BilevelConfig
from robopolicy.evaluation.runners import EXPERT

EXECUTOR_KINDS = ("process", "ray")


def _positive(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RobopolicyError(f"{where}={value!r}: must be a positive whole number")


def _reject_unknown(where: str, given: Mapping, known) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise RobopolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where the rollout workers run.

    kind: "process" (spawned local processes) or "ray" (Ray actors).
    workers: worker processes or actors (> 0).
    envs_per_worker: envs each worker steps (> 0).
    address: the Ray cluster to join ("auto", "ray://host:10001"); None starts a local Ray.
    """

    kind: str = "process"
    workers: int = 2
    envs_per_worker: int = 4
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise RobopolicyError(f"executor: unknown kind {self.kind!r} (known: process, ray)")
        _positive("executor.workers", self.workers)
        _positive("executor.envs_per_worker", self.envs_per_worker)

    @classmethod
    def from_dict(cls, d: Mapping) -> ExecutorConfig:
        """From an `executor` config group (unknown keys are refused)."""
        _reject_unknown("executor", d, [f.name for f in fields(cls)])
        return cls(**d)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    policy: a policy directory written by `robopolicy train`, or "expert" (the scripted expert).
    env, tasks: the suite's env and task-source configs (`suite.env`, `suite.tasks`).
    out_dir: the run folder (resumed when it holds this same run).
    episodes: without splits, episodes of the task source, seeds seed..seed+episodes-1 (> 0).
    seed: the first episode seed; with splits it seeds only the policy's sampling noise.
    splits: catalog splits to evaluate by PartInstruct's protocol (None: the episode list).
    episodes_per_cell: with splits, episodes per split x category (> 0; None: all of them).
    videos: record the first `videos` episodes (of each split) as mp4 (>= 0).
    device: the policy's device ("auto", "cpu", "cuda", ...).
    executor: the rollout workers.
    batch_invariant: run the policy one episode at a time, so every episode's actions are
        identical whatever the batching and worker count (False: one batched call for all
        envs, faster, equal only up to floating-point rounding).
    expert_params: the scripted expert's ExpertParams overrides (`policy.params`, policy=expert
        or a bi-level policy whose low level is the expert), e.g. {"speed": 0.3}.
    bilevel: policy=bilevel: the planner and the low-level policy (`BilevelConfig`).
    action_steps: actions a learned policy (a bi-level policy's low level) runs per call
        instead of its trained Ta (None: as trained).
    record_states: each rollout also holds the env state before every action, so any step
        can be restored (`robopolicy collect recovery.run=<this run>` starts expert recovery
        demos from them).

    A perturbation test split (lighting, camera, appearance, pose_wide) is `env["perturb"]`
    (its kind and ranges: the `perturb` config group, `configs/perturb/<kind>.yaml`);
    `perturb` names its kind.
    """

    policy: str | Path
    env: dict
    tasks: dict
    out_dir: Path
    episodes: int = 50
    seed: int = 100_000
    splits: tuple[str, ...] | None = None
    episodes_per_cell: int | None = None
    videos: int = 0
    device: str = "auto"
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    batch_invariant: bool = True
    expert_params: dict = field(default_factory=dict)
    bilevel: BilevelConfig | None = None
    action_steps: int | None = None
    record_states: bool = False

    @property
    def perturb(self) -> str | None:
        """The perturbation test split's kind (None: the nominal episodes)."""
        p = self.env.get("perturb")
        return p if p is None or isinstance(p, str) else p.get("kind")

    def __post_init__(self) -> None:
        _positive("eval: episodes", self.episodes)
        _check_env(self.env)
        if (str(self.policy) == BILEVEL) != (self.bilevel is not None):
            raise RobopolicyError("eval: a planner is for policy=bilevel only" if self.bilevel
                                  else "eval: policy=bilevel needs a planner, e.g. planner=oracle")
        if self.expert_params:
            expert_runs = str(self.policy) == "expert" or (
                self.bilevel is not None and self.bilevel.low_level == "expert")
            if not expert_runs:
                raise RobopolicyError("eval: policy.params sets the scripted expert's parameters; "
                                      f"policy {self.policy} takes none")
            from sims.partmanip.expert.params import ExpertParams

            try:
                ExpertParams.from_overrides(self.expert_params)
            except (ValueError, TypeError) as e:
                raise RobopolicyError(f"eval: policy.params: {e}") from None
        if self.action_steps is not None:
            _positive("eval: policy.action_steps", self.action_steps)
            acting = self.bilevel.low_level if self.bilevel else str(self.policy)
            if acting == EXPERT:
                raise RobopolicyError("eval: policy.action_steps is for a learned policy; the "
                                      "scripted expert acts every step")
        if self.episodes_per_cell is not None:
            _positive("eval: episodes_per_cell", self.episodes_per_cell)
        if isinstance(self.videos, bool) or not isinstance(self.videos, int) or self.videos < 0:
            raise RobopolicyError(f"eval: videos={self.videos!r}: must be a whole number >= 0")
        if self.splits is not None:
            object.__setattr__(self, "splits", tuple(self.splits))
            if not self.splits:
                raise RobopolicyError("eval: splits is empty; e.g. splits=[test1,test2,test3,test4,test5]")

    # the top-level keys of configs/eval.yaml, and of its `policy` group
    HYDRA_KEYS = ("name", "policy", "suite", "executor", "splits", "episodes_per_cell",
                  "episodes", "seed", "videos", "device", "out", "batch_invariant", "planner",
                  "perturb", "record_states")
    POLICY_KEYS = ("name", "path", "params", "action_steps")
    BILEVEL_KEYS = ("low_level", "advance", "skill_timeout", "done_threshold", "replan_every",
                    "lookahead", "hold_grasp")

    @classmethod
    def from_hydra(cls, cfg: Mapping, out_dir: Path) -> EvalConfig:
        """From `robopolicy eval`'s resolved config (a plain dict); unknown keys are refused."""
        _reject_unknown("eval", cfg, cls.HYDRA_KEYS)
        policy = cfg["policy"]
        bilevel = str(policy.get("path")) == BILEVEL
        _reject_unknown("eval: policy", policy,
                        cls.POLICY_KEYS + (cls.BILEVEL_KEYS if bilevel else ()))
        if policy.get("path") in (None, "???"):
            raise RobopolicyError("eval: policy.path is required: a policy directory written by "
                                  "`robopolicy train`, or policy=expert")
        splits = cfg.get("splits")
        env = dict(cfg["suite"]["env"])
        if cfg.get("perturb") is not None:
            if env.get("perturb") is not None:
                raise RobopolicyError("eval: perturb and suite.env.perturb are both set; give one")
            env["perturb"] = dict(cfg["perturb"])
        return cls(policy=policy["path"], env=env,
                   tasks=dict(cfg["suite"]["tasks"]), out_dir=Path(out_dir),
                   episodes=cfg["episodes"], seed=cfg["seed"],
                   splits=None if splits is None else tuple(splits),
                   episodes_per_cell=cfg.get("episodes_per_cell"), videos=cfg["videos"],
                   device=cfg["device"], executor=ExecutorConfig.from_dict(cfg["executor"]),
                   batch_invariant=bool(cfg.get("batch_invariant", True)),
                   expert_params=dict(policy.get("params") or {}),
                   action_steps=policy.get("action_steps"),
                   record_states=bool(cfg.get("record_states", False)),
                   bilevel=_bilevel(policy, cfg.get("planner")) if bilevel else None)


def _bilevel(policy: Mapping, planner: Mapping | None) -> BilevelConfig:
    return BilevelConfig(**{k: policy[k] for k in EvalConfig.BILEVEL_KEYS if k in policy},
                         planner=dict(planner or {}))


def _check_env(env: Mapping) -> None:
    """A one-line error for a suite.env the env would refuse (e.g. an unknown backend), here in
    the parent rather than in every worker."""
    from sims.partmanip.env import EnvConfig

    try:
        EnvConfig.from_config(env)
    except (TypeError, ValueError) as e:
        raise RobopolicyError(f"eval: suite.env: {str(e).splitlines()[0]}") from None
