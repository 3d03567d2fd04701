"""The evaluation loop: episodes over a rollout pool, one batched policy call per control step.

Each env keeps its own observation window (To frames, the first repeated at reset) and action
queue (Ta actions per policy call); at every control step the parent calls the policy once on
all envs whose queue ran dry, and episodes start on shared chunk boundaries so those calls
batch all envs. The initial noise of each call is drawn from a generator seeded by the
episode, so an episode's outcome does not depend on which envs share its batch, on the worker
count, or on a rerun after a worker died. Finished episodes are appended to episodes.jsonl at
once (with their rollout beside it), so a stopped run resumes. `evaluate_policy` runs one
episode list; `evaluate_splits` runs catalog splits by PartInstruct's protocol.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robopolicy.errors import RobopolicyError
from robopolicy.progress import progress
from sims.core.control import ACTION_DIM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: its index in its episode list, its task (TaskSpec as a dict),
    the group (a split's subfolder, "" for the run folder) and the position in that group
    (the first `videos` positions of each group are recorded)."""

    index: int
    task: dict
    group: str = ""
    position: int | None = None

    @property
    def key(self) -> int:
        """A number unique over all groups of a run (seeds the episode's sampling noise)."""
        return self.index + 1_000_000 * _group_number(self.group)


def _group_number(group: str) -> int:
    from sims.partmanip.catalog import SPLITS

    return SPLITS.index(group) + 1 if group in SPLITS else 0


def episode_list(task_config: dict, n: int, seed: int) -> list[EpisodeSpec]:
    """The fixed episode list of a run: the pool's tasks for seeds seed..seed+n-1."""
    from sims.partmanip.task_source import task_source

    try:
        pool = task_source(task_config)
    except ValueError as e:  # an unknown split, class or parameter of the suite's tasks
        raise RobopolicyError(f"eval: suite.tasks: {e}") from None
    if hasattr(pool, "episodes") and seed + n > len(pool):  # a catalog split: a fixed list
        raise RobopolicyError(f"split {pool.split} has {len(pool)} episodes; episodes={n} from "
                              f"seed={seed} runs past its end (use seed=0 episodes<={len(pool)})")
    return [EpisodeSpec(i, pool.task(seed + i).to_dict(), position=i) for i in range(n)]


def split_episodes(task_config: dict, split: str, per_cell: int | None = None) -> list[EpisodeSpec]:
    """A catalog split's episodes: the first `per_cell` of each category (the catalog spreads
    each category's block round-robin over its task classes, so a prefix stays spread); all
    of them when `per_cell` is None."""
    from sims.partmanip.task_source import CatalogTasks, task_source

    if task_config.get("source", "pool") != "catalog":
        raise RobopolicyError("eval: splits=[...] are splits of the task catalog; evaluate with "
                              "suite=partmanip (suite.tasks.source=catalog)")
    try:
        pool = task_source({**task_config, "split": split})
    except ValueError as e:
        raise RobopolicyError(f"eval: splits: {e}") from None
    assert isinstance(pool, CatalogTasks)
    if per_cell is not None and per_cell > pool.episodes_per_cell:
        raise RobopolicyError(f"eval: episodes_per_cell={per_cell} exceeds the catalog's "
                              f"{pool.episodes_per_cell}; set suite.tasks.episodes_per_cell="
                              f"{per_cell} too (the catalog is rebuilt once)")
    taken: dict[str, int] = {}
    specs = []
    for i in range(len(pool)):
        task = pool.task(i)
        if per_cell is not None and taken.get(task.category, 0) >= per_cell:
            continue
        taken[task.category] = taken.get(task.category, 0) + 1
        specs.append(EpisodeSpec(i, task.to_dict(), split, position=len(specs)))
    return specs


class PolicyRunner:
    """Runs a Policy on numpy observation windows, batched, on its device."""

    def __init__(self, policy, device: str = "cpu", seed: int = 0):
        import torch

        self.torch = torch
        self.policy = policy.to(device).eval()
        self.device = device
        self.seed = seed
        self.obs_keys = list(policy.shape_meta["obs"])
        self.n_obs_steps, self.n_action_steps = policy.n_obs_steps, policy.n_action_steps

    def noise_generator(self, episode: int):
        """The generator of an episode's sampling noise."""
        return self.torch.Generator().manual_seed(self.seed * 1_000_003 + episode)

    def forget(self, episode: int) -> None:
        """Drop what a stateful policy remembers of `episode` (before it is run again)."""
        memory = getattr(self.policy, "_memory", None)
        if isinstance(memory, dict):
            memory.pop(episode, None)

    def __call__(self, windows: list[dict[str, np.ndarray]], texts: list[str], generators: list,
                 episodes: list[int] | None = None):
        """Actions (B, Ta, Da) for each row's window; a `stateful` policy (BC-RNN) is also told
        each row's episode, so it carries each episode's memory whatever the batch."""
        torch = self.torch
        obs = {k: torch.as_tensor(np.stack([w[k] for w in windows])).to(self.device)
               for k in self.obs_keys}
        shape = (self.policy.horizon, self.policy.action_dim)
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)
        self.policy.last_chunk = None
        with torch.inference_mode():
            if getattr(self.policy, "stateful", False):
                actions = self.policy.predict_action(obs, texts, noise=noise, episodes=episodes)
            else:
                actions = self.policy.predict_action(obs, texts, noise=noise)
        whole = getattr(self.policy, "last_chunk", None)
        self.last_chunks = None if whole is None else whole.float().cpu().numpy()
        return actions.float().cpu().numpy()


class ExpertRunner:
    """The scripted expert as the evaluated policy: the workers compute its actions (it reads
    the simulator's ground truth), so the parent sends None and runs nothing itself."""

    n_obs_steps = 1
    n_action_steps = 1
    seed = 0
    acts_in_workers = True

    def noise_generator(self, episode: int):
        return None

    def forget(self, episode: int) -> None:
        pass


EXPERT = "expert"  # policy.path (or policy=expert) naming the built-in oracle


class _Slot:
    def __init__(self, n_obs_steps: int):
        self.episode: EpisodeSpec | None = None
        self.history: deque = deque(maxlen=n_obs_steps)
        self.queue: deque = deque()
        self.generator = None
        self.instruction = ""
        self.steps = 0
        self.t0 = 0.0
        self.actions: list[np.ndarray] = []
        self.chunks: list[np.ndarray] = []  # each policy call's whole predicted chunk
        self.chunk_of_step: list[int] = []  # index into `chunks` of the chunk each step used
        self.chunk_steps: list[int] = []  # the step at which each chunk was predicted
        self.chunk_offset = 0  # the entry of a chunk that is the action at its step

    def start(self, episode: EpisodeSpec, generator) -> None:
        self.episode, self.steps, self.t0 = episode, 0, time.perf_counter()
        self.generator = generator
        self.queue.clear()
        self.history.clear()
        self.actions, self.chunks, self.chunk_of_step, self.chunk_steps = [], [], [], []

    def push(self, obs: dict, fill: bool = False) -> None:
        for _ in range(self.history.maxlen if fill else 1):
            self.history.append(obs)

    def window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in self.history]) for k in self.history[0]}

    def rollout_arrays(self) -> dict[str, np.ndarray]:
        """What the viewer needs to replay the episode: executed actions and, per step, the
        chunk the policy predicted at its latest call and the step it predicted it at."""
        # an episode the expert gave up on at its first step executed no action at all
        out = {"action": np.stack(self.actions).astype(np.float32) if self.actions
               else np.zeros((0, ACTION_DIM), np.float32)}
        if self.chunks and self.chunk_of_step:
            out["pred_chunk"] = np.stack([self.chunks[c] for c in self.chunk_of_step]).astype(np.float32)
            out["pred_step"] = np.asarray([self.chunk_steps[c] for c in self.chunk_of_step], np.int32)
            out["pred_offset"] = np.int32(self.chunk_offset)
        return out


def read_finished(path: Path, repair: bool = True) -> dict[int, dict]:
    """Finished episode records of an episodes.jsonl. A torn last line (a write cut short) is
    skipped and, with `repair`, cut off the file so new records start on a line of their own
    (readers that must not write, like the viewer, pass repair=False)."""
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    text = path.read_text()
    if repair and text and not text.endswith("\n"):
        keep = text.rfind("\n") + 1
        log.warning("%s: dropping a torn last line (interrupted write)", path)
        with open(path, "r+") as f:
            f.truncate(keep)
        text = text[:keep]
    for i, line in enumerate(text.splitlines()):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: ignoring an unreadable line (interrupted write?)", path, i + 1)
            continue
        done[int(rec["episode"])] = rec
    return done


MAX_RERUNS = 2  # a worker dying this often under one episode means the episode kills it


class _Recorder:
    """Appends finished episodes to each group's episodes.jsonl (fsynced: a killed run keeps
    every line it wrote) with their rollout arrays and videos beside it."""

    def __init__(self, out_dir: Path, fps: int):
        self.out_dir, self.fps = out_dir, fps
        self._files: dict[str, object] = {}

    def folder(self, group: str) -> Path:
        return self.out_dir / group if group else self.out_dir

    def finished(self, episodes: list[EpisodeSpec]) -> dict[tuple[str, int], dict]:
        done = {}
        for group in dict.fromkeys(e.group for e in episodes):
            jsonl = self.folder(group) / "episodes.jsonl"
            records = read_finished(jsonl)
            unknown = set(records) - {e.index for e in episodes if e.group == group}
            if unknown:
                raise RobopolicyError(f"{jsonl}: holds episodes {sorted(unknown)[:5]} that this run "
                                      "does not define (different episode count or seed?)")
            done.update({(group, i): r for i, r in records.items()})
        return done

    def write(self, slot: _Slot, info: dict, extra: dict) -> dict:
        from robopolicy.viewer.captions import caption_frames
        from robopolicy.viewer.video import write_mp4

        ep = slot.episode
        task = ep.task
        folder = self.folder(ep.group)
        name = f"episode_{ep.index:04d}"
        rec = {"episode": ep.index, "task_id": task["task_id"], "task_class": task["task_class"],
               "category": task["category"], "instance_id": task["instance_id"],
               "seed": task["init_seed"], "split": task["split"], "success": bool(info["success"]),
               "completion": float(info["completion"]), "steps": slot.steps,
               "instruction": task["instruction"], "wall_s": round(time.perf_counter() - slot.t0, 3)}
        if info.get("failure"):
            rec["failure"] = info["failure"]
        (folder / "rollouts").mkdir(parents=True, exist_ok=True)
        tmp = folder / "rollouts" / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **slot.rollout_arrays())
        os.replace(tmp, folder / "rollouts" / f"{name}.npz")
        rec["rollout"] = f"rollouts/{name}.npz"
        if extra.get("frames"):
            frames = caption_frames(extra["frames"], task["instruction"], extra["skills"])
            rec["video"] = str(write_mp4(frames, folder / "videos" / f"{name}.mp4",
                                         self.fps).relative_to(folder))
        rec["task"] = task
        f = self._files.get(ep.group)
        if f is None:
            f = self._files[ep.group] = open(folder / "episodes.jsonl", "a")
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
        return rec

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def run_episodes(runner, pool, episodes: list[EpisodeSpec], out_dir: Path, videos: int = 0,
                 fps: int = 20, align: bool = True) -> list[dict]:
    """Run `episodes` (skipping those already in their group's episodes.jsonl) on `pool` with
    `runner` (a PolicyRunner, or ExpertRunner for the oracle); returns all records in order.
    Episodes on a worker that died are run again from their start (`pool.stats` counts them).
    `align`: start episodes on chunk boundaries only (batched policy calls; same results)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorder = _Recorder(out_dir, fps)
    finished = recorder.finished(episodes)
    pending = deque(e for e in episodes if (e.group, e.index) not in finished)
    if finished:
        log.info("resuming: %d of %d episodes already finished", len(finished), len(episodes))
    slots = [_Slot(runner.n_obs_steps) for _ in range(pool.n_slots)]
    reruns: dict[tuple[str, int], int] = {}
    bar = progress(total=len(episodes), initial=len(finished), desc="eval", unit="ep")
    n_success = sum(bool(r["success"]) for r in finished.values())
    expert = getattr(runner, "acts_in_workers", False)

    def requeue(lost: list[int]) -> None:
        for s in lost:
            ep = slots[s].episode
            if ep is None:
                continue
            key = (ep.group, ep.index)
            reruns[key] = reruns.get(key, 0) + 1
            if reruns[key] > MAX_RERUNS:
                raise RobopolicyError(f"episode {ep.index} ({ep.task['task_id']}) killed its "
                                      f"worker {reruns[key]} times; giving up")
            log.warning("a worker died: rerunning episode %d (%s) from its start", ep.index,
                        ep.group or ep.task["task_id"])
            runner.forget(ep.key)
            pending.appendleft(ep)
            slots[s].episode = None

    def start(free: list[int]) -> None:
        while True:
            items = []
            for s in free:
                if not pending:
                    slots[s].episode = None
                    continue
                ep = pending.popleft()
                slots[s].start(ep, runner.noise_generator(ep.key))
                pos = ep.index if ep.position is None else ep.position
                items.append((s, ep.task, pos < videos))
            if not items:
                return
            results, lost = pool.reset(items)
            for s, obs, info in results:
                slots[s].push(obs, fill=True)
                slots[s].instruction = info["instruction"]
            requeue(lost)
            free = lost
            if not lost:
                return

    # Slots start episodes only on chunk boundaries of a shared clock (every Ta steps), so all
    # envs run dry together and share one policy call; a freed slot idles < Ta steps for it.
    every = max(1, int(runner.n_action_steps)) if align else 1
    tick, waiting = 0, list(range(pool.n_slots))
    try:
        while True:
            active = [i for i, s in enumerate(slots) if s.episode is not None]
            if waiting and (tick % every == 0 or not active):
                start(waiting)
                waiting = []
                active = [i for i, s in enumerate(slots) if s.episode is not None]
            if not active:
                break
            need = [i for i in active if not slots[i].queue]
            if expert:
                for i in need:
                    slots[i].queue.append(None)
            elif need:
                chunks = runner([slots[i].window() for i in need],
                                [slots[i].instruction for i in need],
                                [slots[i].generator for i in need],
                                [slots[i].episode.key for i in need])
                whole = getattr(runner, "last_chunks", None)
                for row, (i, chunk) in enumerate(zip(need, chunks, strict=True)):
                    slot = slots[i]
                    slot.chunks.append(chunk if whole is None else whole[row])
                    slot.chunk_steps.append(slot.steps)
                    slot.chunk_offset = 0 if whole is None else runner.n_obs_steps - 1
                    slot.queue.extend(chunk)
            results, lost = pool.step([(i, slots[i].queue.popleft()) for i in active])
            tick += 1
            ended = []
            for s, obs, _, term, trunc, info, extra in results:
                slot = slots[s]
                if extra["action"] is not None:
                    slot.actions.append(extra["action"])
                    if slot.chunks:
                        slot.chunk_of_step.append(len(slot.chunks) - 1)
                if not (term or trunc):
                    slot.push(obs)
                    slot.steps += 1
                    continue
                slot.steps += extra["action"] is not None
                rec = recorder.write(slot, info, extra)
                finished[(slot.episode.group, slot.episode.index)] = rec
                n_success += rec["success"]
                bar.update(1)
                bar.set_postfix(success=f"{n_success / len(finished):.0%}", refresh=False)
                ended.append(s)
                slot.episode = None
            requeue(lost)
            waiting += ended + lost
    finally:
        recorder.close()
        bar.close()
    return [finished[(e.group, e.index)] for e in episodes]


def _warn_if_other_suite(policy_path, env_config: dict, task_config: dict) -> None:
    """Log the suite settings that differ from those of the policy's training demos."""
    meta = json.loads((Path(policy_path) / "meta.json").read_text())
    trained = meta.get("dataset_env_config") or {}
    diffs = [f"{group}.{k}: trained {trained[group].get(k)!r}, evaluating {v!r}"
             for group, now in (("env", env_config), ("tasks", task_config)) if group in trained
             for k, v in now.items() if k not in ("obs_keys", "split")
             and trained[group].get(k, v) != v]
    if diffs:
        log.warning("evaluating under other suite settings than the training demos: %s",
                    "; ".join(diffs))


def make_runner(policy_path, env_config: dict, task_config: dict, seed: int = 0,
                device: str = "auto"):
    """(runner, env_config with the observations the policy needs, policy description)."""
    if str(policy_path) == EXPERT:
        return ExpertRunner(), {**env_config, "obs_keys": ["proprio"]}, EXPERT
    from robopolicy.device import resolve_device
    from robopolicy.policies.io import load_policy

    device = resolve_device(device)
    policy = load_policy(policy_path, device=device)
    _warn_if_other_suite(policy_path, env_config, task_config)
    # The env renders exactly what the policy observes.
    env_config = {**env_config, "obs_keys": list(policy.shape_meta["obs"])}
    return PolicyRunner(policy, device, seed), env_config, str(Path(policy_path).resolve())


def _claim_folder(out_dir: Path, run: dict) -> None:
    """Write run.json, or check that the folder's run.json describes this same run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        same = {k: v for k, v in previous.items() if k != "env"} == \
            {k: v for k, v in run.items() if k != "env"}
        if not same:
            raise RobopolicyError(f"{run_file}: this folder holds an evaluation of another policy or "
                                  "episode list; choose a new `out`")
    run_file.write_text(json.dumps(run, indent=2))


def rollouts(runner, specs: list[EpisodeSpec], env_config: dict, task_config: dict,
             out_dir: Path, executor: dict, videos: int = 0,
             align: bool = True) -> tuple[list[dict], dict]:
    """Run `specs` with `runner` on a rollout pool of the executor's kind (process | ray);
    returns (records, timing): the wall time, throughput, where the time went, restarts."""
    from robopolicy.evaluation.pool import make_pool

    workers = int(executor.get("workers", 2))
    n_slots = min(workers * int(executor.get("envs_per_worker", 4)), max(1, len(specs)))
    envs_per_worker = max(1, -(-n_slots // workers))
    log.info("evaluating on %d episodes with %d %s workers x %d envs", len(specs), workers,
             executor.get("kind", "process"), envs_per_worker)
    resumed = set(_Recorder(out_dir, 0).finished(specs)) if out_dir.exists() else set()
    t0 = time.perf_counter()
    timed = _TimedRunner(runner)
    with make_pool(executor.get("kind", "process"), env_config, task_config, workers,
                   envs_per_worker, executor.get("address")) as pool:
        records = run_episodes(timed, pool, specs, out_dir, videos, align=align)
        stats = pool.stats
    ran = [r for r, e in zip(records, specs, strict=True) if (e.group, e.index) not in resumed]
    timing = _timing(stats, time.perf_counter() - t0, timed.seconds, ran)
    timing["episodes_resumed"] = len(resumed)
    timing["policy_calls"] = timed.calls
    return records, {**timing, "workers": workers, "envs_per_worker": envs_per_worker}


class _TimedRunner:
    """A runner that adds up the seconds spent in the policy."""

    def __init__(self, runner):
        self.inner, self.seconds, self.calls = runner, 0.0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args):
        self.calls += 1
        t0 = time.perf_counter()
        out = self.inner(*args)
        self.seconds += time.perf_counter() - t0
        return out


def _timing(stats, wall: float, policy_s: float, records: list[dict]) -> dict:
    """Throughput and time shares of this invocation (`records`: the episodes it ran)."""
    steps = sum(r["steps"] for r in records)
    share = lambda x: round(x / wall, 3) if wall else 0.0  # noqa: E731
    return {"wall_s": round(wall, 1), "env_steps": steps,
            "env_steps_per_s": round(steps / wall, 1) if wall else 0.0,
            "episodes_per_hour": round(len(records) / wall * 3600, 1) if wall else 0.0,
            "physics_s": round(stats.physics_s, 1), "render_s": round(stats.render_s, 1),
            "reset_s": round(stats.reset_s, 1),
            "share": {"simulation": share(stats.physics_critical_s),
                      "rendering": share(stats.render_critical_s),
                      "set-up": share(stats.reset_critical_s),
                      "policy": share(policy_s + stats.policy_critical_s),
                      "transfer": share(stats.transfer_s)},
            "worker_restarts": stats.restarts, "episodes_rerun": len(stats.lost_slots)}


def evaluate_policy(policy_path: str | Path, env_config: dict, task_config: dict, episodes: int,
                    seed: int, out_dir: Path, workers: int = 2, envs_per_worker: int = 4,
                    videos: int = 0, device: str = "auto", executor: dict | None = None) -> dict:
    """Evaluate the policy directory `policy_path` (or "expert") on `episodes` episodes of the
    suite's task source from `seed`; writes episodes.jsonl, rollouts/, report.json, report.md and
    videos/ into `out_dir` (resuming if present)."""
    from robopolicy.evaluation.report import write_report

    executor = {"kind": "process", **(executor or {}), "workers": workers,
                "envs_per_worker": envs_per_worker}
    runner, env_config, name = make_runner(policy_path, env_config, task_config, seed, device)
    specs = episode_list(task_config, episodes, seed)
    _claim_folder(out_dir, {"policy": name, "episodes_requested": episodes, "seed": seed,
                            "tasks": task_config, "env": env_config})
    records, timing = rollouts(runner, specs, env_config, task_config, out_dir, executor, videos)
    meta = {"policy": name, "episodes_requested": episodes, "seed": seed,
            "workers": timing.pop("workers"), "envs_per_worker": timing.pop("envs_per_worker"),
            "wall_s": timing["wall_s"], "timing": timing}
    return write_report(out_dir, records, meta)


def evaluate_splits(policy_path: str | Path, env_config: dict, task_config: dict,
                    splits: list[str], episodes_per_cell: int | None, seed: int, out_dir: Path,
                    executor: dict, videos: int = 0, device: str = "auto") -> dict:
    """Evaluate on catalog splits (PartInstruct's protocol: `episodes_per_cell` episodes per
    split x category, spread over its task classes, each split at its own horizon), all in one
    pool; writes <split>/episodes.jsonl, rollouts/, videos/, success.png, and report.json/.md
    over every split into `out_dir` (resuming if present)."""
    from robopolicy.evaluation.report import write_split_report
    from sims.partmanip.catalog import SPLITS

    if not splits:
        raise RobopolicyError("eval: splits is empty; e.g. splits=[test1,test2,test3,test4,test5]")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:  # said now, not after minutes of building the catalog for the known ones
        raise RobopolicyError(f"eval: splits: unknown split {unknown[0]!r} (known: {', '.join(SPLITS)})")
    runner, env_config, name = make_runner(policy_path, env_config, task_config, seed, device)
    specs = [s for split in splits for s in split_episodes(task_config, split, episodes_per_cell)]
    _claim_folder(out_dir, {"policy": name, "splits": list(splits),
                            "episodes_per_cell": episodes_per_cell, "seed": seed,
                            "tasks": task_config, "env": env_config})
    records, timing = rollouts(runner, specs, env_config, task_config, out_dir, executor, videos)
    meta = {"policy": name, "splits": list(splits), "episodes_per_cell": episodes_per_cell,
            "seed": seed, "executor": executor.get("kind", "process"),
            "workers": timing.pop("workers"), "envs_per_worker": timing.pop("envs_per_worker"),
            "wall_s": timing["wall_s"], "timing": timing}
    return write_split_report(out_dir, records, meta)
