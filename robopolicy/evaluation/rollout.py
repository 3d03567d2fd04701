"""Evaluation runs: a policy (or the expert) on an episode list or on catalog splits, over a
rollout pool of the executor's kind, with the run folder, report and timing.

`evaluate_policy` runs one episode list; `evaluate_splits` runs catalog splits by
PartInstruct's protocol; both take an `EvalConfig`. The loop itself is `robopolicy.evaluation.loop`, the runners
`robopolicy.evaluation.runners`, the episode lists `robopolicy.evaluation.episodes`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from robopolicy.data.run_records import RunRecorder, claim_folder
from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
from robopolicy.evaluation.episodes import EpisodeSpec, episode_list, split_episodes
from robopolicy.evaluation.loop import finished_records, run_episodes
from robopolicy.evaluation.runners import EXPERT, PolicyRunner, TimedRunner, make_runner

log = logging.getLogger(__name__)

# Callers elsewhere import these names from here.
__all__ = ["EXPERT", "EpisodeSpec", "EvalConfig", "ExecutorConfig", "PolicyRunner",
           "episode_list", "evaluate", "evaluate_policy", "evaluate_splits", "make_runner", "rollouts", "run_episodes", "split_episodes"]


def rollouts(runner, specs: list[EpisodeSpec], env_config: dict, task_config: dict,
             out_dir: Path, executor: ExecutorConfig | Mapping, videos: int = 0,
             align: bool = True, record_states: bool = False) -> tuple[list[dict], dict]:
    """Run `specs` with `runner` on a rollout pool of the executor's kind (process | ray);
    returns (records, timing): the wall time, throughput, where the time went, restarts."""
    from robopolicy.evaluation.pool import make_pool

    if not isinstance(executor, ExecutorConfig):
        executor = ExecutorConfig.from_dict(executor)
    workers = executor.workers
    n_slots = min(workers * executor.envs_per_worker, max(1, len(specs)))
    envs_per_worker = max(1, -(-n_slots // workers))
    log.info("evaluating on %d episodes with %d %s workers x %d envs", len(specs), workers,
             executor.kind, envs_per_worker)
    resumed = set(finished_records(RunRecorder(out_dir), specs)) if out_dir.exists() else set()
    t0 = time.perf_counter()
    timed = TimedRunner(runner)
    with make_pool(executor.kind, env_config, task_config, workers, envs_per_worker,
                   executor.address, getattr(runner, "expert_params", None)) as pool:
        try:
            records = run_episodes(timed, pool, specs, out_dir, videos, align=align,
                                   record_states=record_states)
        finally:
            if getattr(runner, "director", None) is not None:
                runner.director.close()
        stats = pool.stats
    ran = [r for r, e in zip(records, specs, strict=True) if (e.group, e.index) not in resumed]
    timing = _timing(stats, time.perf_counter() - t0, timed.seconds, ran)
    timing["episodes_resumed"] = len(resumed)
    timing["policy_calls"] = timed.calls
    return records, {**timing, "workers": workers, "envs_per_worker": envs_per_worker}


def _expert_record(run: EvalConfig) -> dict:
    """run.json's record of the expert's overrides and of a bi-level policy's parts (none:
    nothing, as before they existed)."""
    from dataclasses import asdict

    out = {"expert_params": run.expert_params} if run.expert_params else {}
    if run.perturb is not None:  # a perturbed run never resumes in a nominal run's folder
        out["perturb"] = run.perturb
    if run.bilevel is not None:
        out["bilevel"] = asdict(run.bilevel)
    if run.record_states:  # its rollouts hold more than a plain run's
        out["record_states"] = True
    return out


def _timing(stats, wall: float, policy_s: float, records: list[dict]) -> dict:
    """Throughput and time shares of this invocation (`records`: the episodes it ran)."""
    steps = sum(r["steps"] for r in records)
    share = lambda x: round(x / wall, 3) if wall else 0.0  # noqa: E731
    return {"wall_s": round(wall, 1), "env_steps": steps,
            "env_steps_per_s": round(steps / wall, 1) if wall else 0.0,
            "episodes_per_hour": round(len(records) / wall * 3600, 1) if wall else 0.0,
            "physics_s": round(stats.physics_s, 1), "render_s": round(stats.render_s, 1),
            "reset_s": round(stats.reset_s, 1), "policy_s": round(policy_s, 2),
            "share": {"simulation": share(stats.physics_critical_s),
                      "rendering": share(stats.render_critical_s),
                      "set-up": share(stats.reset_critical_s),
                      "policy": share(policy_s + stats.policy_critical_s),
                      "transfer": share(stats.transfer_s)},
            "worker_restarts": stats.restarts, "episodes_rerun": len(stats.lost_slots)}


def evaluate(run: EvalConfig) -> dict:
    """Evaluate `run`: on its catalog splits when it names any, else on its episode list."""
    return evaluate_splits(run) if run.splits is not None else evaluate_policy(run)


def evaluate_policy(run: EvalConfig) -> dict:
    """Evaluate `run.policy` (a policy directory, or "expert") on `run.episodes` episodes of the
    suite's task source from `run.seed`; writes episodes.jsonl, rollouts/, report.json,
    report.md and videos/ into `run.out_dir` (resuming if present)."""
    from robopolicy.evaluation.report import write_report

    specs = episode_list(run.tasks, run.episodes, run.seed)  # a bad task source: said first
    runner, env_config, name = make_runner(run.policy, run.env, run.tasks, run.seed, run.device,
                                           run.batch_invariant, run.expert_params, run.bilevel,
                                           run.action_steps)
    claim_folder(run.out_dir, {"policy": name, "episodes_requested": run.episodes,
                               "seed": run.seed, "tasks": run.tasks, "env": env_config,
                               **_expert_record(run)})
    # one-row policy calls gain nothing from shared chunk boundaries; batched calls do
    records, timing = rollouts(runner, specs, env_config, run.tasks, run.out_dir, run.executor,
                               run.videos, align=not run.batch_invariant,
                               record_states=run.record_states)
    meta = {"policy": name, "episodes_requested": run.episodes, "seed": run.seed,
            **({"perturb": run.perturb} if run.perturb else {}), "workers": timing.pop("workers"), "envs_per_worker": timing.pop("envs_per_worker"),
            "wall_s": timing["wall_s"], "timing": timing}
    return write_report(run.out_dir, records, meta)


def evaluate_splits(run: EvalConfig) -> dict:
    """Evaluate `run.policy` on the catalog splits `run.splits` (PartInstruct's protocol:
    `run.episodes_per_cell` episodes per split x category, spread over its task classes, each
    split at its own horizon), all in one pool; writes <split>/episodes.jsonl, rollouts/,
    videos/, success.png, and report.json/.md over every split into `run.out_dir` (resuming if
    present). A perturbation's groups are `<split>-<perturb>` (`split_group`)."""
    from robopolicy.evaluation.report import write_split_report
    from sims.partmanip.catalog import SPLITS

    if not run.splits:
        raise RobopolicyError("eval: splits is empty; e.g. splits=[test1,test2,test3,test4,test5]")
    unknown = [s for s in run.splits if s not in SPLITS]
    if unknown:  # said now, not after minutes of building the catalog for the known ones
        raise RobopolicyError(f"eval: splits: unknown split {unknown[0]!r} (known: {', '.join(SPLITS)})")
    runner, env_config, name = make_runner(run.policy, run.env, run.tasks, run.seed, run.device,
                                           run.batch_invariant, run.expert_params, run.bilevel,
                                           run.action_steps)
    specs = [s for split in run.splits
             for s in split_episodes(run.tasks, split, run.episodes_per_cell, run.perturb)]
    claim_folder(run.out_dir, {"policy": name, "splits": list(run.splits),
                               "episodes_per_cell": run.episodes_per_cell, "seed": run.seed,
                               "tasks": run.tasks, "env": env_config, **_expert_record(run)})
    # one-row policy calls gain nothing from shared chunk boundaries; batched calls do
    records, timing = rollouts(runner, specs, env_config, run.tasks, run.out_dir, run.executor,
                               run.videos, align=not run.batch_invariant,
                               record_states=run.record_states)
    meta = {"policy": name, "splits": list(run.splits), "episodes_per_cell": run.episodes_per_cell,
            "seed": run.seed, **({"perturb": run.perturb} if run.perturb else {}),
            "executor": run.executor.kind,
            "workers": timing.pop("workers"), "envs_per_worker": timing.pop("envs_per_worker"),
            "wall_s": timing["wall_s"], "timing": timing}
    return write_split_report(run.out_dir, records, meta)
