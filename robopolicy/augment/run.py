"""`robopolicy augment`: new episodes from a source store's by augmenters composed in order
(`compose`), written to a new store with their provenance, and the yield (kept / generated) per
task class.

One job is one copy of one source episode. Jobs run in worker processes (each with its own env
and fitted scenes, as `robopolicy collect` does) or, with one worker, in this process. Every
finished job is logged in the out store (`DONE_FILE`, kept or dropped and why), so rerunning the
same command resumes: jobs whose episode is committed or whose copy was dropped are not redone.
The store's ``augment`` attr records what made it; another command on the same out is refused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robopolicy.augment.compose import AUGMENT_STREAM  # noqa: F401  (re-exported)
from robopolicy.data.jsonl import read_json_lines
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.progress import progress

log = logging.getLogger(__name__)
REPORT_FILE = "augment_report.json"
DONE_FILE = "augment_done.jsonl"
SOURCE_COPY = -1  # the copy index of a source episode written as it is (keep_source)


@dataclass(frozen=True)
class AugmentConfig:
    """What an augmentation run does (configs/augment.yaml builds it).

    Attributes:
        augmenters: registered augmenter names (`configs/augment/<name>.yaml`), applied in
            order to each copy.
        path: the demo store to augment (it must record robot_joints, object_pose,
            articulation).
        out: the new store; an existing one of the same command is resumed, another refused
            (unless ``overwrite``).
        copies: copies generated per source episode (each kept only if every stage keeps it).
        episodes: source episodes to use (None: all).
        seed: seeds the copies (stage k of copy v of episode i draws from
            ``[AUGMENT_STREAM, seed, i, v, k]``).
        workers: worker processes (1: this process).
        overwrite: replace an existing store at ``out`` (of another command).
        keep_source: also write each source episode, before its copies (provenance copy
            `SOURCE_COPY`), so the out store alone holds "the demos + their augmentations".
        params: each augmenter's parameters, by name.
    """

    augmenters: tuple[str, ...]
    path: Path
    out: Path
    copies: int = 1
    episodes: int | None = None
    seed: int = 0
    workers: int = 1
    overwrite: bool = False
    keep_source: bool = False
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.augmenters, str):
            object.__setattr__(self, "augmenters", (self.augmenters,))
        object.__setattr__(self, "augmenters", tuple(self.augmenters))
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "out", Path(self.out))
        for name in ("copies", "episodes", "workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise RobopolicyError(f"augment: {name} must be a positive integer, got {value!r}")

    @property
    def label(self) -> str:
        return "+".join(self.augmenters)

    def identity(self) -> dict:
        """What the out store's ``augment`` attr records: a rerun with the same identity resumes
        (``copies`` and ``episodes`` may grow: the copies already made stay the same)."""
        identity = {"augmenters": list(self.augmenters), "source": str(self.path),
                    "seed": self.seed, "params": {n: self.params.get(n) or {} for n in self.augmenters}}
        if self.keep_source:  # absent when off, so stores written before the option still resume
            identity["keep_source"] = True
        return json.loads(json.dumps(identity))


@dataclass
class AugmentSummary:
    path: Path
    generated: int
    kept: int
    by_class: dict[int, list[int]]  # class -> [kept, generated]
    wall_s: float
    resumed: int = 0  # jobs already done by an earlier run

    def table(self) -> str:
        lines = ["class  kept/generated  yield"]
        for c, (k, g) in sorted(self.by_class.items()):
            lines.append(f"{c:>5}  {k:>6}/{g:<9}  {k / max(g, 1):.0%}")
        lines.append(f"  all  {self.kept:>6}/{self.generated:<9}  "
                     f"{self.kept / max(self.generated, 1):.0%}")
        return "\n".join(lines)


def _open_source(path: Path) -> EpisodeStore:
    if not path.exists():
        raise RobopolicyError(f"augment: source store {path} does not exist")
    return EpisodeStore.open(path)


# ------------------------------------------------------------------ the jobs (in the workers)
_worker: dict[str, Any] = {}


def _init_worker(config: dict, threads: int | None = None) -> None:
    """Build one worker's stages, source store and (if a stage simulates) env."""
    from robopolicy.augment.compose import build_stages, needs_env
    from sims.partmanip.factory import make_env

    if threads:
        import torch

        torch.set_num_threads(threads)
    c = AugmentConfig(**config)
    stages = build_stages(list(c.augmenters), c.params)
    source = _open_source(c.path)
    env = make_env({**source.env_config["env"], "obs_keys": list(source.shape_meta["obs"])},
                   source.env_config["tasks"]) if needs_env(stages) else None
    _worker.update(config=c, stages=stages, source=source, env=env, episode=(None, None))


def _close_worker() -> None:
    if _worker.get("env") is not None:
        _worker["env"].close()
    _worker.clear()


def _run_job(job: tuple[int, int]) -> dict:
    """One copy of one source episode: the record of what happened, and its data if kept."""
    from robopolicy.augment.compose import run_copy
    from robopolicy.viewer.sources import from_store
    from sims.partmanip.tasks import TaskSpec

    c, source = _worker["config"], _worker["source"]
    i, v = job
    if _worker["episode"][0] != i:  # a worker's jobs come a source episode at a time
        _worker["episode"] = (i, (source.get_episode(i), source.episode_meta(i),
                                  TaskSpec.from_dict(from_store(source, i).task)))
    data, meta, task = _worker["episode"][1]
    if v == SOURCE_COPY:
        provenance = json.dumps({"store": str(c.path), "episode": i, "copy": v})
        return {"record": {"episode": i, "copy": v, "task_class": int(meta["task_class"]),
                           "kept": True, "reason": ""},
                "data": data, "meta": {**meta, "provenance": provenance}}
    out = run_copy(_worker["stages"], _worker["env"], task, data, meta, c.seed, i, v)
    record = {"episode": i, "copy": v, "task_class": int(meta["task_class"]), "kept": out.kept,
              "reason": out.reason}
    return {"record": record, "data": out.data if out.kept else None,
            "meta": _meta(out, c, i, v) if out.kept else None}


def _meta(out, c: AugmentConfig, episode: int, copy: int) -> dict:
    keep = ("task_id", "task_class", "category", "instance_id", "split", "seed", "init_seed",
            "backend", "instruction", "skill_instructions", "chain")
    return {**{k: out.meta[k] for k in keep}, "success": True,
            "completion": out.meta["completion"], "skill_starts": out.meta["skill_starts"],
            "cameras": out.meta.get("cameras", ""), "source": f"augment:{c.label}",
            "provenance": json.dumps({"store": str(c.path), "episode": episode, "copy": copy,
                                      "seed": c.seed, "augmenters": list(c.augmenters),
                                      "stages": out.stages})}


def _map_jobs(c: AugmentConfig, jobs: list[tuple[int, int]]) -> Iterator[dict]:
    config = {k: getattr(c, k) for k in AugmentConfig.__dataclass_fields__}
    if c.workers == 1 or len(jobs) <= 1:
        _init_worker(config)
        try:
            yield from map(_run_job, jobs)
        finally:
            _close_worker()
        return
    from robopolicy.executors import ordered_map

    # the Gaussian renderer's threads would fight each other's
    threads = max(1, (os.cpu_count() or 1) // c.workers)
    yield from ordered_map(_run_job, jobs, init=_init_worker, init_args=(config, threads),
                           workers=c.workers)


# ------------------------------------------------------------------ the run
def _open_out(c: AugmentConfig, source: EpisodeStore, image_source: str) -> EpisodeStore:
    if c.out.exists() and not c.overwrite and any(c.out.iterdir()):
        try:
            store = EpisodeStore.open(c.out, mode="a")
        except RobopolicyError:
            raise RobopolicyError(f"augment: out={c.out} exists and is not an augmented store; "
                                  "pass another out= or overwrite=true") from None
        if store.attrs.get("augment") != c.identity():
            raise RobopolicyError(
                f"augment: out={c.out} holds another augmentation run (augmenters, params, "
                "path or seed differ); rerun its own command to resume it, or pass another "
                "out= or overwrite=true")
        return store
    return EpisodeStore.create(c.out, source.shape_meta, env_config=source.env_config,
                               overwrite=c.overwrite, obs_layout=source.obs_layout,
                               attrs={"image_source": image_source, "augment": c.identity()})


def done_records(store: EpisodeStore) -> dict[tuple[int, int], dict]:
    """{(source episode, copy): record} of the jobs an out store has done: its committed
    episodes (whether or not a kill cut off their log line) and the dropped copies it logged;
    a copy logged as kept whose episode is not in the store is done again."""
    done: dict[tuple[int, int], dict] = {}
    for r in read_json_lines(store.path / DONE_FILE):
        if not r["kept"]:
            done[(int(r["episode"]), int(r["copy"]))] = r
    for meta in store.episodes():
        p = json.loads(meta["provenance"] or "{}")
        done[(int(p["episode"]), int(p["copy"]))] = {
            "episode": int(p["episode"]), "copy": int(p["copy"]),
            "task_class": int(meta["task_class"]), "kept": True, "reason": ""}
    return done


def augment(config: AugmentConfig) -> AugmentSummary:
    """Run `config` (see :class:`AugmentConfig`); return the yield."""
    from robopolicy.augment.compose import build_stages, image_source
    from robopolicy.executors import WorkerDied
    from sims.partmanip.obs_layout import RECORDED_KEYS

    c = config
    source = _open_source(c.path)
    missing = [k for k in RECORDED_KEYS if k not in source.keys]
    if missing:
        raise RobopolicyError(f"augment: source store {c.path} has no {missing} per step; "
                              "collect it again with `robopolicy collect`")
    # built here too (cheap: fits and envs are made lazily) so that bad names, params and
    # orders fail in one line before any worker starts
    stages = build_stages(list(c.augmenters), c.params)
    n_src = source.n_episodes if c.episodes is None else min(c.episodes, source.n_episodes)
    out = _open_out(c, source, image_source(stages))
    done = done_records(out)
    first = SOURCE_COPY if c.keep_source else 0
    jobs = [(i, v) for i in range(n_src) for v in range(first, c.copies) if (i, v) not in done]
    total = n_src * (c.copies - first)
    resumed = total - len(jobs)
    if resumed:
        log.info("resuming %s: %d of %d jobs already done", c.out, resumed, total)
    t0 = time.perf_counter()
    log.info("augment %s: %d copies with %d worker(s) into %s", c.label, len(jobs), c.workers,
             c.out)
    with open(out.path / DONE_FILE, "a") as log_file, progress(
            total=total, initial=resumed, desc=f"augment {c.label}",
            unit="copy") as bar:
        try:
            for result in _map_jobs(c, jobs):
                if result["data"] is not None:
                    out.add_episode(result["data"], result["meta"])
                log_file.write(json.dumps(result["record"]) + "\n")
                log_file.flush()
                bar.update(1)
        except WorkerDied as e:
            raise RobopolicyError(f"augment: {e}; the copies written so far are safe in {c.out}; "
                                  "rerun the same command to resume") from e
    return _report(c, out, n_src, resumed, time.perf_counter() - t0)


def _report(c: AugmentConfig, out: EpisodeStore, n_src: int, resumed: int,
            wall_s: float) -> AugmentSummary:
    records = [r for (i, v), r in sorted(done_records(out).items())
               if i < n_src and 0 <= v < c.copies]
    by_class: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        by_class[r["task_class"]][0] += bool(r["kept"])
        by_class[r["task_class"]][1] += 1
    kept = sum(k for k, _ in by_class.values())
    summary = AugmentSummary(c.out, len(records), kept, dict(by_class), wall_s, resumed)
    (c.out / REPORT_FILE).write_text(json.dumps(
        {"augmenters": list(c.augmenters), "copies": c.copies,
         "by_class": {str(k): v for k, v in summary.by_class.items()},
         "generated": summary.generated, "kept": kept, "variants": records}, indent=1))
    log.info("augment %s: kept %d of %d in %.1f s", c.label, kept, summary.generated, wall_s)
    return summary
