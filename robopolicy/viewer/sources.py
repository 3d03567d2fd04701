"""Where an episode to view comes from: a dataset store (EpisodeStore) or an evaluation run
folder (episodes.jsonl + rollouts/*.npz + run.json). Either gives an `Episode`: the task, the
env config and the executed actions, enough to replay it exactly in the simulator (the env is
deterministic for a task + seed), plus the policy's predicted action chunks for a rollout.

Evaluation run layout: `<run>/<split>/episodes.jsonl` (or `<run>/episodes.jsonl`) holds one
record per episode (`episode`, `task`: the TaskSpec dict, `rollout`: the npz path relative to
the folder, ...); the npz holds `action` (T, 10) and optionally `pred_chunk` (T, H, 10),
`pred_step` (T,) and `pred_offset` (the chunk entry that is the action at `pred_step`, 0 if
absent); `<run>/run.json` holds `env`, the EnvConfig dict. A bi-level run's records also hold
the planner's `skills` and their `skill_starts`, and `<split>/planner_log.jsonl` its exchanges
(each labelled with its `episode`, "<split>/<index>" or "<index>", and the `step` it was asked at).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robopolicy.errors import RobopolicyError

EPISODES_FILE = "episodes.jsonl"
RUN_FILE = "run.json"
PLANNER_LOG = "planner_log.jsonl"


@dataclass
class Episode:
    """One episode, ready to replay.

    `task` is a TaskSpec dict (`sims.partmanip.tasks.TaskSpec.to_dict`), `env_config` an
    EnvConfig dict, `actions` (T, 10) the executed absolute TCP targets (pos 3 + rot6d 6 +
    gripper 1, robot base frame). For a policy rollout, `pred_chunk` (T, H, 10) is the chunk the
    policy predicted at its latest call before step t, made at step `pred_step[t]`; its entry
    `pred_offset` is the action for step `pred_step[t]` (earlier entries lie in the past).
    `recorded` holds camera images stored with the episode (`rgb.<camera>`, (T, H, W, 3)).
    `planner_log` holds a bi-level episode's planner exchanges, in the order they were logged.
    `start` holds the reset options beyond the task that an augmented or recovery episode needs
    (`placement`, `state`; see `reset_options`).
    """

    source: Literal["dataset", "eval"]
    where: str  # "dataset <path>" / "eval run <folder>": the prefix of error messages
    index: int
    task: dict[str, Any]
    env_config: dict[str, Any]
    actions: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    pred_chunk: np.ndarray | None = None
    pred_step: np.ndarray | None = None
    pred_offset: int = 0
    recorded: dict[str, np.ndarray] = field(default_factory=dict)
    planner_log: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def reset_options(self) -> dict[str, Any]:
        """`env.reset` options that start the episode where it started: its task, and `start`'s
        extra options (a pose-augmented placement, a recovery episode's start state)."""
        return {"task": self.task, **self.start}

    def describe(self) -> str:
        """One line: index, task, seed, outcome, length and instruction."""
        m = self.meta
        return (f"episode {self.index}: {self.task['task_id']} seed {m.get('seed')} "
                f"success={m.get('success')} ({self.steps} steps): {self.task['instruction']}")


def load_episode(path: str | Path, episode: int, split: str | None = None) -> Episode:
    """Episode `episode` of the dataset store or evaluation run at `path` (`split` picks the
    split folder of a multi-split run)."""
    path = Path(path)
    if not path.exists():
        raise RobopolicyError(f"dataset or eval run {path}: no such file or folder")
    if (path / "zarr.json").exists() or path.suffix == ".zarr":
        from robopolicy.data.store import EpisodeStore

        return from_store(EpisodeStore.open(path), episode)
    return _from_eval_run(_eval_folder(path, split), episode)


def from_store(store, episode: int) -> Episode:
    """Episode `episode` of an open EpisodeStore."""
    where = f"dataset {store.path}"
    meta, task, start = _store_start(store, episode)
    rgb = [k for k in store.keys if k.startswith("rgb.")]
    data = store.get_episode(episode, ["action", *rgb])
    return Episode("dataset", where, episode, task, dict(store.env_config["env"]),
                   np.asarray(data.pop("action"), np.float32), meta, recorded=data, start=start)


def store_reset_options(store, episode: int) -> dict[str, Any]:
    """`env.reset` options that start episode `episode` of an open EpisodeStore where it started
    (as `from_store(store, episode).reset_options`, without reading its arrays)."""
    _, task, start = _store_start(store, episode)
    return {"task": task, **start}


def _store_start(store, episode: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(metadata, task dict, extra reset options) of a stored episode."""
    where = f"dataset {store.path}"
    if not 0 <= episode < store.n_episodes:
        raise RobopolicyError(f"{where}: no episode {episode} (it has {store.n_episodes})")
    meta = store.episode_meta(episode)
    cfg = store.env_config
    if "env" not in cfg or "tasks" not in cfg:
        raise RobopolicyError(f"{where}: no env config recorded, cannot replay")
    _check_env_config(cfg["env"], where)
    where = f"{where}: episode {episode}"
    provenance = _provenance(meta, where)
    if meta.get("source") == "recovery":
        return (meta, *_recovery_start(provenance, meta, where))
    return (meta, *_seeded_start(cfg["tasks"], meta, provenance, where))


def _provenance(meta: dict[str, Any], where: str) -> dict[str, Any]:
    if not meta.get("provenance"):
        return {}
    try:
        provenance = json.loads(meta["provenance"])
    except ValueError as e:
        raise RobopolicyError(f"{where}: provenance is not JSON ({e})") from None
    if not isinstance(provenance, dict):
        raise RobopolicyError(f"{where}: provenance is not a JSON object")
    return provenance


def _seeded_start(tasks: dict[str, Any], meta: dict[str, Any], provenance: dict[str, Any],
                  where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task dict, extra reset options) of an episode whose seed picks its task in the store's
    task pool: a collected one, or an augmented one (another instance after `swap`, a new
    placement after `pose`; the last placing stage wins)."""
    from sims.partmanip.task_source import task_source

    source = task_source(tasks)
    try:
        task = source.task(int(meta["seed"]))
    except (IndexError, KeyError, ValueError) as e:
        raise RobopolicyError(f"{where}: seed {meta['seed']} is not in the recorded task pool "
                              f"({e})") from None
    if task.task_id != meta["task_id"]:
        raise RobopolicyError(f"{where} ({meta['task_id']}) does not match the recorded task "
                              f"pool (seed {meta['seed']} gives {task.task_id})")
    if meta.get("instance_id") is not None:  # a `swap`-augmented episode is on another instance
        task = replace(task, instance_id=int(meta["instance_id"]))
    placed = [st["params"] for st in provenance.get("stages", []) if "x" in st.get("params", {})]
    start = {"placement": tuple(placed[-1][k] for k in ("x", "y", "yaw"))} if placed else {}
    return task.to_dict(), start


def _recovery_start(provenance: dict[str, Any], meta: dict[str, Any],
                    where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task dict, extra reset options) of a recovery episode: it starts at the evaluation
    run's state its provenance holds."""
    state = provenance.get("state")
    if not isinstance(state, dict) or not isinstance(state.get("task"), dict):
        raise RobopolicyError(f"{where} is a recovery episode without its start state in its "
                              "provenance (collected before states were stored); cannot replay")
    task = _task_dict(state["task"], where)
    if task["task_id"] != meta["task_id"]:
        raise RobopolicyError(f"{where} ({meta['task_id']}): its start state is of task "
                              f"{task['task_id']}")
    return task, {"state": state}


def _eval_folder(path: Path, split: str | None) -> Path:
    """The folder holding episodes.jsonl: `path` itself, `path/<split>`, or the only split."""
    if split is not None:
        folder = path / split
        if not (folder / EPISODES_FILE).is_file():
            raise RobopolicyError(f"eval run {path}: no split {split!r} "
                                  f"({folder / EPISODES_FILE} does not exist)")
        return folder
    if (path / EPISODES_FILE).is_file():
        return path
    splits = sorted(p.name for p in path.iterdir() if (p / EPISODES_FILE).is_file()) \
        if path.is_dir() else []
    if len(splits) == 1:
        return path / splits[0]
    if splits:
        raise RobopolicyError(f"eval run {path}: has splits {', '.join(splits)}; pick one with "
                              "split=<name>")
    raise RobopolicyError(f"{path}: neither a dataset store (zarr.json) nor an eval run "
                          f"({EPISODES_FILE})")


def _from_eval_run(folder: Path, episode: int) -> Episode:
    where = f"eval run {folder}"
    from robopolicy.data.run_records import read_finished

    records = read_finished(folder / EPISODES_FILE, repair=False)  # the run may still be writing
    if episode not in records:
        have = f"episodes {min(records)}..{max(records)}" if records else "no episodes"
        raise RobopolicyError(f"{where}: no episode {episode} ({len(records)} finished: {have})")
    rec = records[episode]
    for key in ("task", "rollout"):
        if not rec.get(key):
            raise RobopolicyError(f"{where}: episode {episode}'s record in {EPISODES_FILE} has no "
                                  f"{key!r}")
    run_file = next((d / RUN_FILE for d in (folder, folder.parent) if (d / RUN_FILE).is_file()),
                    None)
    if run_file is None:
        raise RobopolicyError(f"{where}: no {RUN_FILE} in {folder} or {folder.parent}")
    env = json.loads(run_file.read_text()).get("env")
    if not isinstance(env, dict):
        raise RobopolicyError(f"{where}: {run_file} has no 'env' config")
    _check_env_config(env, f"{where}: {run_file}")
    rollout = folder / rec["rollout"]
    if not rollout.is_file():
        raise RobopolicyError(f"{where}: episode {episode}'s rollout {rollout} does not exist")
    with np.load(rollout) as npz:
        if "action" not in npz:
            raise RobopolicyError(f"{where}: {rollout} has no 'action' array")
        arrays = {k: npz[k] for k in npz.files}
    meta = {k: v for k, v in rec.items() if k not in ("task", "rollout")}
    pred_chunk, pred_step = arrays.get("pred_chunk"), arrays.get("pred_step")
    steps = len(arrays["action"])
    for name, arr, ndim in (("pred_chunk", pred_chunk, 3), ("pred_step", pred_step, 1)):
        if arr is not None and (arr.ndim != ndim or len(arr) != steps):
            raise RobopolicyError(f"{where}: {rollout}: {name} has shape {arr.shape}, expected "
                                  f"{ndim} axes with {steps} steps first (as 'action')")
    task = _task_dict(rec["task"], f"{where}: episode {episode}")
    return Episode("eval", where, episode, task, env,
                   np.asarray(arrays["action"], np.float32), meta,
                   pred_chunk=None if pred_chunk is None else np.asarray(pred_chunk, np.float32),
                   pred_step=None if pred_step is None else np.asarray(pred_step, np.int64),
                   pred_offset=int(arrays.get("pred_offset", 0)),
                   planner_log=_planner_exchanges(folder / PLANNER_LOG, episode))


def _planner_exchanges(path: Path, episode: int) -> list[dict[str, Any]]:
    """The exchanges of episode `episode` in a split's planner log (none without one). The file
    holds one split's episodes, so the index after the label's split names the episode; a line
    still being written (the run goes on) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and str(record.get("episode", "")).rsplit("/", 1)[-1] == str(episode):
            out.append(record)
    return out


def _task_dict(task: Any, where: str) -> dict[str, Any]:
    """A record's `task`, checked to be a TaskSpec dict (normalized by a round trip)."""
    from sims.partmanip.tasks import TaskSpec

    try:
        return TaskSpec.from_dict(task).to_dict()
    except (KeyError, TypeError, ValueError) as e:
        raise RobopolicyError(f"{where}: 'task' is not a TaskSpec dict "
                              f"({type(e).__name__}: {e})") from None


def _check_env_config(env: dict[str, Any], where: str) -> None:
    """Raise a one-line error unless `env` is an EnvConfig dict."""
    from sims.partmanip.env import EnvConfig

    try:
        EnvConfig.from_config(env)
    except (TypeError, ValueError) as e:
        raise RobopolicyError(f"{where}: env config: {e}") from None
