"""Demo collection: the scripted expert runs in parallel worker processes; the parent writes
every finished episode to one EpisodeStore, in episode-seed order (same command, same store).

Resumable: each finished attempt (kept or not) is appended to `collect_attempts.jsonl` inside
the store after the episode is committed. Rerunning the same command on the same store skips
every seed already stored or logged, so a killed collection continues to N episodes without
duplicates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from robopolicy.data.jsonl import read_json_lines
from robopolicy.data.recovery import (
    RecoverySettings,
    recovery_jobs,
    recovery_meta,
    recovery_starts,
)
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.progress import progress
from sims.partmanip.demo import run_expert_episode

log = logging.getLogger(__name__)
ATTEMPTS_FILE = "collect_attempts.jsonl"
ATTEMPT_KEYS = ("seed", "success", "task_id", "task_class", "category", "instance_id", "completion",
                "length")

_worker: dict = {}


@dataclass
class CollectSummary:
    """What a collection run did."""

    path: Path
    episodes: int
    successes: int
    kept: int
    steps: int
    wall_s: float

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, self.episodes)


def _init_worker(env_config: dict, task_config: dict, expert_params: dict | None = None) -> None:
    from sims.partmanip.expert import ExpertParams, ScriptedExpert
    from sims.partmanip.factory import make_env

    _worker["env"] = make_env(env_config, task_config)
    _worker["expert"] = ScriptedExpert(params=ExpertParams.from_overrides(expert_params))


def _collect_one(seed: int):
    env = _worker["env"]
    task = env.tasks.task(seed)
    data, info = run_expert_episode(env, _worker["expert"], task)
    meta = {"task_id": task.task_id, "task_class": task.task_class, "category": task.category,
            "instance_id": task.instance_id, "split": task.split, "seed": seed,
            "init_seed": task.init_seed, "success": bool(info["success"]),
            "completion": float(info["completion"]), "length": int(len(data["action"])),
            "backend": env.backend.name, "source": "expert", "instruction": task.instruction,
            "skill_starts": json.dumps(info["skill_starts"]),
            "skill_instructions": json.dumps(list(task.skill_instructions)),
            "chain": json.dumps(task.to_dict()["chain"])}
    failure = None if meta["success"] else info.get("failure") or _unmet(info)
    return data, meta, failure


def _collect_from_state(item: tuple[int, dict]):
    """A recovery episode: the expert from a recorded state (`robopolicy.data.recovery`)."""
    from sims.partmanip.tasks import TaskSpec

    seed, start = item
    env = _worker["env"]
    task = TaskSpec.from_dict(start["state"]["task"])
    data, info = run_expert_episode(env, _worker["expert"], task, state=start["state"])
    meta = recovery_meta(task, info, start, seed, int(len(data["action"])), env.backend.name)
    failure = None if meta["success"] else info.get("failure") or _unmet(info)
    return data, meta, failure


def _unmet(info: dict) -> str:
    """Why an episode failed, from its final info: the skill it stopped at and its unmet goals."""
    unmet = [k for k, v in info.get("predicates", {}).items() if not v]
    return f"skill {info.get('skill_index')} not done ({', '.join(unmet) or 'horizon'})"


def _previous_attempts(store: EpisodeStore) -> dict[int, bool]:
    """{seed: success} of the attempts already done in `store` (its stored episodes, and
    logged attempts that were not kept)."""
    stored = {int(e["seed"]): bool(e["success"]) for e in store.episodes()}
    done = dict(stored)
    for a in read_json_lines(store.path / ATTEMPTS_FILE):
        # a kept attempt whose episode never got committed must run again
        if not a.get("kept") or int(a["seed"]) in stored:
            done.setdefault(int(a["seed"]), bool(a["success"]))
    return done


def config_differences(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between a store's suite config and this run's. A key
    the store lacks whose value here is None is a field added since, at its default: the
    same config."""
    out = []
    for key in sorted(set(stored) | set(current)):
        name = f"{prefix}{key}"
        if key not in stored and current[key] is None:
            continue
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{name}.")
        elif a != b:
            out.append(name)
    return out


def _open_or_create(out: Path, shape_meta: dict, env_config: dict, overwrite: bool,
                    obs_layout: dict) -> EpisodeStore:
    if Path(out).exists() and not overwrite and any(Path(out).iterdir()):
        store = EpisodeStore.open(out, mode="a")
        if store.obs_layout.get("version") != obs_layout["version"]:
            raise RobopolicyError(f"collect: {out} holds observation layout "
                                  f"{store.obs_layout.get('version')}, this version writes "
                                  f"{obs_layout['version']}; pass overwrite=true or another out= "
                                  "to collect it again")
        differ = config_differences(store.env_config, env_config)
        if differ:
            raise RobopolicyError(f"collect: {out} holds episodes of another suite config "
                                  f"({', '.join(differ)} differ); pass overwrite=true or another "
                                  "out= to start a new store")
        return store
    return EpisodeStore.create(out, shape_meta, overwrite=overwrite, env_config=env_config,
                               obs_layout=obs_layout)


@dataclass(frozen=True)
class CollectConfig:
    """What a collection run does (`robopolicy collect`; configs/collect.yaml builds it).

    Most often changed: ``episodes``, ``out`` and ``workers``.

    Attributes:
        env: the suite's env config (``suite.env``: observation keys, cameras, control rate).
        tasks: the suite's task source (``suite.tasks``, with ``split``): a catalog split or a
            small task pool.
        out: the store to write; an existing store of the same suite config is resumed.
        episodes: episodes to attempt (>= 1), seeds ``seed .. seed + episodes - 1``.
        seed: first episode seed (>= 0); for a catalog split, the index of its first episode.
        workers: simulator worker processes (or Ray actors), >= 1.
        keep_failures: store failed episodes too (they are always logged as attempts).
        overwrite: replace an existing store at ``out`` instead of resuming it.
        executor: ``"process"`` (local spawned processes) or ``"ray"`` (actors).
        address: the Ray cluster to join (``executor="ray"``; None: a local Ray).
        expert: the scripted expert's ExpertParams overrides (field -> value), e.g.
            ``{"speed": 0.3}``; every field is listed in sims/partmanip/expert/params.py.
        recovery: recovery demos instead of catalog episodes: the expert starts from states
            of an evaluation run (``RecoverySettings``); ``episodes`` and ``seed`` then count
            its starts.
    """

    env: dict[str, Any]
    tasks: dict[str, Any]
    out: Path
    episodes: int
    seed: int = 0
    workers: int = 2
    keep_failures: bool = False
    overwrite: bool = False
    executor: str = "process"
    address: str | None = None
    expert: dict[str, Any] = field(default_factory=dict)
    recovery: RecoverySettings | None = None

    def __post_init__(self) -> None:
        from robopolicy.executors import EXECUTORS
        from sims.partmanip.expert.params import ExpertParams

        object.__setattr__(self, "out", Path(self.out))
        for name in ("episodes", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RobopolicyError(f"collect: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise RobopolicyError(f"collect: seed must be a non-negative integer, got {self.seed!r}")
        try:
            ExpertParams.from_overrides(self.expert)
        except (ValueError, TypeError) as e:
            raise RobopolicyError(f"collect: expert: {e}") from None
        if self.executor not in EXECUTORS:
            raise RobopolicyError(f"collect: unknown executor {self.executor!r} "
                                  f"(known: {', '.join(EXECUTORS)})")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CollectConfig:
        """A config from plain values; a key that is not a field is a one-line error."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise RobopolicyError(f"collect: unknown config key(s) {unknown} "
                                  f"(known: {', '.join(f.name for f in fields(cls))})")
        return cls(**values)

    @classmethod
    def from_hydra(cls, cfg: Any, default_out: Path) -> CollectConfig:
        """The config of a `robopolicy collect` run (configs/collect.yaml, resolved); ``out``
        defaults to ``default_out``. An unknown top-level key is a one-line error."""
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(cfg, resolve=True)
        values.pop("hydra", None)
        unknown = sorted(set(values) - _HYDRA_KEYS)
        if unknown:
            raise RobopolicyError(f"collect: unknown config key(s) {unknown} "
                                  f"(known: {', '.join(sorted(_HYDRA_KEYS))})")
        # a pool records the split as its episodes' split; a catalog draws from it
        tasks = {**values["suite"]["tasks"], "split": values["split"]}
        executor = values["executor"]
        return cls.from_dict({
            "env": values["suite"]["env"], "tasks": tasks,
            "out": Path(values["out"]) if values["out"] else default_out,
            "episodes": values["episodes"], "seed": values["seed"], "workers": values["workers"],
            "keep_failures": values["keep_failures"], "overwrite": values["overwrite"],
            "executor": executor["kind"], "address": executor.get("address"),
            "expert": values.get("expert") or {},
            "recovery": RecoverySettings.from_dict(values.get("recovery"))})


#: Top-level keys of configs/collect.yaml (``name`` only names the run folder).
_HYDRA_KEYS = {"name", "suite", "executor", "split", "episodes", "seed", "workers",
               "keep_failures", "out", "overwrite", "expert", "recovery"}


def collect(config: CollectConfig) -> CollectSummary:
    """Run ``config.episodes`` expert episodes and write them to ``config.out`` (see
    :class:`CollectConfig`); return what was done."""
    from robopolicy.executors import WorkerDied, ordered_map
    from sims.partmanip.env import EnvConfig
    from sims.partmanip.factory import make_env
    from sims.partmanip.obs_layout import RECORDED_KEYS, obs_layout
    from sims.partmanip.task_source import CatalogTasks, task_source

    c = config
    out, episodes, seed, workers = c.out, c.episodes, c.seed, c.workers
    try:
        env_cfg, pool = EnvConfig.from_config(c.env), task_source(c.tasks)
        # every store holds the simulator's own state per step, whatever the policy observes
        env_cfg = replace(env_cfg, obs_keys=tuple(dict.fromkeys([*env_cfg.obs_keys, *RECORDED_KEYS])))
    except ValueError as e:
        raise RobopolicyError(f"collect: suite config: {e}") from None
    if c.recovery is not None:
        starts = recovery_starts(c.recovery)
        if seed >= len(starts):
            raise RobopolicyError(f"collect: recovery.run {c.recovery.run} has {len(starts)} starts; "
                                  f"seed={seed} leaves none")
        if seed + episodes > len(starts):
            log.warning("recovery.run %s has %d starts: collecting %d, not %d", c.recovery.run,
                        len(starts), len(starts) - seed, episodes)
        starts = starts[seed:seed + episodes]
        jobs, work = None, _collect_from_state
    else:
        if isinstance(pool, CatalogTasks):  # len() builds (or reads) the catalog before the workers start
            if seed + episodes > len(pool):
                raise RobopolicyError(f"collect: split {pool.split} has {len(pool)} episodes, "
                                      f"asked for {seed}..{seed + episodes - 1}")
        jobs, work = {s: s for s in range(seed, seed + episodes)}, _collect_one
    probe = make_env(env_cfg, pool)  # cheap: builds no simulator until reset
    layout = obs_layout(env_cfg.obs_keys, env_cfg.articulation_dim)
    store = _open_or_create(Path(out), probe.shape_meta(),
                            {"env": env_cfg.to_config(), "tasks": pool.to_config()}, c.overwrite,
                            layout)
    attempted = read_json_lines(store.path / ATTEMPTS_FILE)
    if jobs is None:
        jobs = recovery_jobs(store.episodes(), attempted, starts)
    episodes = len(jobs)
    done = _previous_attempts(store)
    wanted = list(jobs)
    seeds = [s for s in wanted if s not in done]
    successes = sum(done[s] for s in wanted if s in done)
    kept, steps = store.n_episodes, store.n_steps
    if len(seeds) < episodes:
        log.info("resuming %s: %d of %d episodes already done", out, episodes - len(seeds), episodes)
    t0 = time.perf_counter()
    log.info("collecting %d episodes with %d %s workers into %s", len(seeds), workers, c.executor,
             out)
    results = ordered_map(work, [jobs[s] for s in seeds], init=_init_worker, workers=workers, kind=c.executor,
                          address=c.address, init_args=(env_cfg.to_config(), pool.to_config(), dict(c.expert)))
    attempts = open(store.path / ATTEMPTS_FILE, "a")
    with attempts, progress(total=episodes, initial=episodes - len(seeds), desc="collect",
                            unit="ep") as bar:
        try:
            for data, meta, failure in results:  # in seed order
                successes += meta["success"]
                keep = (meta["success"] or c.keep_failures) and len(data["action"]) > 0
                if keep:
                    store.add_episode(data, meta)
                    kept += 1
                    steps += len(data["action"])
                record = {k: meta[k] for k in ATTEMPT_KEYS if k in meta}
                if meta["source"] == "recovery":  # which start it was, for a rerun to skip
                    record["start"] = json.loads(meta["provenance"])["start"]
                if failure:
                    record["failure"] = failure
                attempts.write(json.dumps({**record, "kept": bool(keep)}) + "\n")
                attempts.flush()
                bar.update(1)
                bar.set_postfix(success=f"{successes / bar.n:.0%}", refresh=False)
        except WorkerDied as e:
            raise RobopolicyError(f"collect: {e}; the {kept} episodes written so far are safe in "
                                  f"{out}; rerun the same command to resume") from e
    summary = CollectSummary(Path(out), episodes, successes, kept, steps, time.perf_counter() - t0)
    log.info("collected %d/%d successful episodes (%.1f%%), kept %d (%d steps) in %.1f s",
             successes, episodes, 100 * summary.success_rate, kept, steps, summary.wall_s)
    return summary
