"""The evaluation loop: episodes over a rollout pool, one batched policy call per control step.

Each env keeps its own observation window (To frames, the first repeated at reset) and action
queue (Ta actions per policy call); at every control step the parent calls the policy once on
all envs whose queue ran dry. The initial noise of each call is drawn from a generator seeded
by the episode, so an episode's outcome does not depend on which envs share its batch.
Finished episodes are appended to episodes.jsonl at once, so a stopped run resumes.
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: its index in the run and its task (TaskSpec as a dict)."""

    index: int
    task: dict


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
    return [EpisodeSpec(i, pool.task(seed + i).to_dict()) for i in range(n)]


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

    def __call__(self, windows: list[dict[str, np.ndarray]], texts: list[str], generators: list,
                 episodes: list[int] | None = None):
        """Actions (B, Ta, Da) for each row's window; a `stateful` policy (BC-RNN) is also told
        each row's episode, so it carries each episode's memory whatever the batch."""
        torch = self.torch
        obs = {k: torch.as_tensor(np.stack([w[k] for w in windows])).to(self.device)
               for k in self.obs_keys}
        shape = (self.policy.horizon, self.policy.action_dim)
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators]).to(self.device)
        with torch.inference_mode():
            if getattr(self.policy, "stateful", False):
                actions = self.policy.predict_action(obs, texts, noise=noise, episodes=episodes)
            else:
                actions = self.policy.predict_action(obs, texts, noise=noise)
        return actions.float().cpu().numpy()


class _Slot:
    def __init__(self, n_obs_steps: int):
        self.episode: EpisodeSpec | None = None
        self.history: deque = deque(maxlen=n_obs_steps)
        self.queue: deque = deque()
        self.generator = None
        self.instruction = ""
        self.steps = 0
        self.t0 = 0.0

    def push(self, obs: dict, fill: bool = False) -> None:
        for _ in range(self.history.maxlen if fill else 1):
            self.history.append(obs)

    def window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in self.history]) for k in self.history[0]}


def read_finished(path: Path) -> dict[int, dict]:
    """Finished episode records of an episodes.jsonl. A torn last line (a write cut short) is
    cut off the file so new records start on a line of their own; complete lines are kept."""
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    text = path.read_text()
    if text and not text.endswith("\n"):
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


def run_episodes(runner: PolicyRunner, pool, episodes: list[EpisodeSpec], out_dir: Path,
                 videos: int = 0, fps: int = 20) -> list[dict]:
    """Run `episodes` (skipping those already in out_dir/episodes.jsonl); returns all records."""
    from robopolicy.viewer.video import write_mp4

    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / "episodes.jsonl"
    finished = read_finished(jsonl)
    unknown = set(finished) - {e.index for e in episodes}
    if unknown:
        raise RobopolicyError(f"{jsonl}: holds episodes {sorted(unknown)[:5]} that this run does not "
                              "define (different episode count or seed?)")
    pending = deque(e for e in episodes if e.index not in finished)
    if finished:
        log.info("resuming: %d of %d episodes already finished", len(finished), len(episodes))
    slots = [_Slot(runner.n_obs_steps) for _ in range(pool.n_slots)]
    bar = progress(total=len(episodes), initial=len(finished), desc="eval", unit="ep")
    n_success = sum(bool(r["success"]) for r in finished.values())

    def start(free: list[int]) -> None:
        items = []
        for s in free:
            if not pending:
                slots[s].episode = None
                continue
            ep = pending.popleft()
            slots[s].episode, slots[s].steps, slots[s].t0 = ep, 0, time.perf_counter()
            slots[s].queue.clear()
            slots[s].generator = runner.noise_generator(ep.index)
            items.append((s, ep.task, ep.index < videos))
        for s, obs, info in pool.reset(items) if items else []:
            slots[s].push(obs, fill=True)
            slots[s].instruction = info["instruction"]

    with open(jsonl, "a") as log_file:
        start(list(range(pool.n_slots)))
        while any(s.episode is not None for s in slots):
            active = [i for i, s in enumerate(slots) if s.episode is not None]
            need = [i for i in active if not slots[i].queue]
            if need:
                chunks = runner([slots[i].window() for i in need],
                                [slots[i].instruction for i in need],
                                [slots[i].generator for i in need],
                                [slots[i].episode.index for i in need])
                for i, chunk in zip(need, chunks, strict=True):
                    slots[i].queue.extend(chunk)
            results = pool.step([(i, slots[i].queue.popleft()) for i in active])
            ended = []
            for s, obs, _, term, trunc, info, frames in results:
                slot = slots[s]
                slot.push(obs)
                slot.steps += 1
                if not (term or trunc):
                    continue
                ep = slot.episode
                task = ep.task
                rec = {"episode": ep.index, "task_id": task["task_id"],
                       "task_class": task["task_class"], "category": task["category"],
                       "instance_id": task["instance_id"], "seed": task["init_seed"],
                       "split": task["split"], "success": bool(info["success"]),
                       "completion": float(info["completion"]), "steps": slot.steps,
                       "instruction": task["instruction"],
                       "wall_s": round(time.perf_counter() - slot.t0, 3)}
                if frames is not None:
                    rec["video"] = str(write_mp4(frames, out_dir / "videos" /
                                                 f"episode_{ep.index:04d}.mp4", fps).relative_to(out_dir))
                log_file.write(json.dumps(rec) + "\n")
                log_file.flush()
                os.fsync(log_file.fileno())
                finished[ep.index] = rec
                n_success += rec["success"]
                bar.update(1)
                bar.set_postfix(success=f"{n_success / len(finished):.0%}", refresh=False)
                ended.append(s)
            if ended:
                start(ended)
    bar.close()
    return [finished[e.index] for e in episodes]


def _warn_if_other_suite(policy_path, env_config: dict, task_config: dict) -> None:
    """Log the suite settings that differ from those of the policy's training demos."""
    meta = json.loads((Path(policy_path) / "meta.json").read_text())
    trained = meta.get("dataset_env_config") or {}
    diffs = [f"{group}.{k}: trained {trained[group].get(k)!r}, evaluating {v!r}"
             for group, now in (("env", env_config), ("tasks", task_config)) if group in trained
             for k, v in now.items() if k != "obs_keys" and trained[group].get(k, v) != v]
    if diffs:
        log.warning("evaluating under other suite settings than the training demos: %s",
                    "; ".join(diffs))


def evaluate_policy(policy_path: str | Path, env_config: dict, task_config: dict, episodes: int,
                    seed: int, out_dir: Path, workers: int = 2, envs_per_worker: int = 4,
                    videos: int = 0, device: str = "auto") -> dict:
    """Evaluate the policy directory `policy_path` on `episodes` held-out episodes; writes
    episodes.jsonl, report.json, report.md and videos/ into `out_dir` (resuming if present)."""
    from robopolicy.evaluation.pool import ProcessRolloutPool
    from robopolicy.evaluation.report import write_report
    from robopolicy.policies.io import load_policy
    from robopolicy.training.trainer import resolve_device

    device = resolve_device(device)
    policy = load_policy(policy_path, device=device)
    _warn_if_other_suite(policy_path, env_config, task_config)
    # The env renders exactly what the policy observes.
    env_config = {**env_config, "obs_keys": list(policy.shape_meta["obs"])}
    specs = episode_list(task_config, episodes, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = {"policy": str(Path(policy_path).resolve()), "episodes_requested": episodes, "seed": seed,
           "tasks": task_config}
    run_file = out_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous != run:
            raise RobopolicyError(f"{run_file}: this folder holds an evaluation of another policy or "
                                  "episode list; choose a new `out`")
    else:
        run_file.write_text(json.dumps(run, indent=2))
    t0 = time.perf_counter()
    runner = PolicyRunner(policy, device, seed)
    n_slots = min(workers * envs_per_worker, max(1, episodes))
    envs_per_worker = max(1, -(-n_slots // workers))
    log.info("evaluating %s on %d episodes with %d workers x %d envs (%s)", policy_path, episodes,
             workers, envs_per_worker, device)
    with ProcessRolloutPool(env_config, task_config, workers, envs_per_worker) as pool:
        records = run_episodes(runner, pool, specs, out_dir, videos)
    meta = {"policy": run["policy"], "episodes_requested": episodes, "seed": seed,
            "workers": workers, "envs_per_worker": envs_per_worker,
            "wall_s": round(time.perf_counter() - t0, 1)}
    return write_report(out_dir, records, meta)
