"""The evaluation loop: episodes over a rollout pool, one policy call per control step.

Each env keeps its own observation window (To frames, the first repeated at reset) and action
queue (Ta actions per policy call); at every control step the parent calls the runner once on
all envs whose queue ran dry (with `align`, episodes start on shared chunk boundaries so a
batched runner batches all envs). The sampling noise of each call is drawn from a generator
seeded by the episode, so with a batch-invariant runner an episode's outcome does not depend
on which envs share its call, on the worker count, or on a rerun after a worker died. Finished episodes are appended to episodes.jsonl at
once (with their rollout beside it), so a stopped run resumes.

A runner with a `director` (the bi-level policy, `robopolicy.evaluation.bilevel`) is told of
every reset and step (with each env's observation window, on demand) and answers with
directives: (slot, "skill", (call, before, after)) sets
a planner's skill in that env (its action queue is dropped and the new skill's observation
replaces the window's latest frame), (slot, "end", reason) ends the episode as a failure. The
envs do not step while the director decides, so its wall time never changes an outcome.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np

from robopolicy.data.run_records import RunRecorder
from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.episodes import EpisodeSpec
from robopolicy.progress import progress

log = logging.getLogger(__name__)

MAX_RERUNS = 2  # a worker dying this often under one episode means the episode kills it


class EpisodeSlot:
    """One env of the pool as the loop sees it: its episode, observation window, action queue
    and what the episode executed and predicted so far."""

    def __init__(self, n_obs_steps: int):
        self.episode: EpisodeSpec | None = None
        self.history: deque = deque(maxlen=n_obs_steps)
        self.queue: deque = deque()
        self.generator = None
        self.instruction = ""
        self.steps = 0
        self.last_info: dict = {}
        self.t0 = 0.0
        self.actions: list[np.ndarray] = []
        self.chunks: list[np.ndarray] = []  # each policy call's whole predicted chunk
        self.chunk_of_step: list[int] = []  # index into `chunks` of the chunk each step used
        self.chunk_steps: list[int] = []  # the step at which each chunk was predicted
        self.chunk_offset = 0  # the entry of a chunk that is the action at its step
        self.states: list[dict] = []  # the env state before each action (record_states)

    def start(self, episode: EpisodeSpec, generator) -> None:
        self.episode, self.steps, self.t0 = episode, 0, time.perf_counter()
        self.generator = generator
        self.queue.clear()
        self.history.clear()
        self.actions, self.chunks, self.chunk_of_step, self.chunk_steps = [], [], [], []
        self.states = []

    def push(self, obs: dict, fill: bool = False) -> None:
        for _ in range(self.history.maxlen if fill else 1):
            self.history.append(obs)

    def window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in self.history]) for k in self.history[0]}

    def rollout_arrays(self) -> dict[str, np.ndarray]:
        """What the viewer needs to replay the episode: executed actions and, per step, the
        chunk the policy predicted at its latest call and the step it predicted it at."""
        from sims.partmanip.env import ACTION_DIM

        # an episode the expert gave up on at its first step executed no action at all
        out = {"action": np.stack(self.actions).astype(np.float32) if self.actions
               else np.zeros((0, ACTION_DIM), np.float32)}
        if self.chunks and self.chunk_of_step:
            out["pred_chunk"] = np.stack([self.chunks[c] for c in self.chunk_of_step]).astype(np.float32)
            out["pred_step"] = np.asarray([self.chunk_steps[c] for c in self.chunk_of_step], np.int32)
            out["pred_offset"] = np.int32(self.chunk_offset)
        if self.states:  # state_<field>[t]: the env state in which action t was taken
            for key in self.states[0]:
                out[f"state_{key}"] = np.stack([s[key] for s in self.states])
        return out


def write_episode(recorder: RunRecorder, slot: EpisodeSlot, info: dict, extra: dict,
                  fps: int = 20, fields: dict | None = None) -> dict:
    """Record a finished episode: its line in episodes.jsonl (with `fields` added), its rollout
    and its video (when recorded); returns the record."""
    from robopolicy.viewer.captions import caption_frames
    from robopolicy.viewer.video import write_mp4

    ep = slot.episode
    task = ep.task
    rec = {"episode": ep.index, "task_id": task["task_id"], "task_class": task["task_class"],
           "category": task["category"], "instance_id": task["instance_id"],
           "seed": task["init_seed"], "split": task["split"], "success": bool(info["success"]),
           "completion": float(info["completion"]), "steps": slot.steps,
           "instruction": task["instruction"], "wall_s": round(time.perf_counter() - slot.t0, 3)}
    if info.get("failure"):
        rec["failure"] = info["failure"]
    rec.update(fields or {})
    if extra.get("frames"):
        folder = recorder.folder(ep.group)
        frames = caption_frames(extra["frames"], task["instruction"], extra["skills"])
        video = write_mp4(frames, folder / "videos" / f"episode_{ep.index:04d}.mp4", fps)
        rec["video"] = str(video.relative_to(folder))
    rec["task"] = task
    return recorder.append(ep.group, rec, slot.rollout_arrays())


def finished_records(recorder: RunRecorder, episodes: list[EpisodeSpec]) -> dict[tuple[str, int], dict]:
    """The records of `episodes` already written, by (group, index)."""
    groups: dict[str, set[int]] = {}
    for e in episodes:
        groups.setdefault(e.group, set()).add(e.index)
    return recorder.finished(groups)


def run_episodes(runner, pool, episodes: list[EpisodeSpec], out_dir: Path, videos: int = 0,
                 fps: int = 20, align: bool = True, record_states: bool = False) -> list[dict]:
    """Run `episodes` (skipping those already in their group's episodes.jsonl) on `pool` with
    `runner` (a PolicyRunner, or ExpertRunner for the oracle); returns all records in order.
    Episodes on a worker that died are run again from their start (`pool.stats` counts them).
    `align`: start episodes on chunk boundaries only (batched policy calls; same results).
    `record_states`: each rollout also holds the env state before every action (`state_sim`,
    `state_skill_index`, `state_skill_start`, `state_steps`, `state_target`), so any step of
    an episode can be restored (`robopolicy.data.recovery`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(out_dir)
    finished = finished_records(recorder, episodes)
    pending = deque(e for e in episodes if (e.group, e.index) not in finished)
    if finished:
        log.info("resuming: %d of %d episodes already finished", len(finished), len(episodes))
    slots = [EpisodeSlot(runner.n_obs_steps) for _ in range(pool.n_slots)]
    reruns: dict[tuple[str, int], int] = {}
    bar = progress(total=len(episodes), initial=len(finished), desc="eval", unit="ep")
    n_success = sum(bool(r["success"]) for r in finished.values())
    expert = getattr(runner, "acts_in_workers", False)
    director = getattr(runner, "director", None)
    if director is not None:
        director.open(out_dir)

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
                items.append((s, ep.task, pos < videos, record_states))
            if not items:
                return
            results, lost = pool.reset(items)
            for s, obs, info in results:
                slots[s].push(obs, fill=True)
                slots[s].instruction = info["instruction"]
                slots[s].last_info = info
            requeue(lost)
            if director is not None:  # a planner that fails at once frees its slot at once
                lost += direct(director.begin([(s, obs, info, slots[s].episode)
                                               for s, obs, info in results if s not in lost]))
            free = lost
            if not lost:
                return

    def finish(s: int, info: dict, extra: dict) -> None:
        """Record the episode of slot `s` as ended with `info`; the slot is free after it."""
        nonlocal n_success
        slot = slots[s]
        fields = director.finish(s) if director is not None else None
        rec = write_episode(recorder, slot, info, extra, fps, fields)
        finished[(slot.episode.group, slot.episode.index)] = rec
        n_success += rec["success"]
        bar.update(1)
        bar.set_postfix(success=f"{n_success / len(finished):.0%}", refresh=False)
        slot.episode = None

    def direct(directives: list[tuple]) -> list[int]:
        """Carry out a director's directives; returns the slots freed meanwhile: episodes it
        ended, and slots lost (their episodes requeued)."""
        skills = [(s, *args) for s, kind, args in directives if kind == "skill"]
        ends = {s: reason for s, kind, reason in directives if kind == "end"}
        freed = list(ends)
        if ends:
            # the recorded frames up to here make its video; a lost worker's are gone
            results, _ = pool.end(list(ends))
            extras = dict(results)
            for s, reason in ends.items():
                finish(s, {**slots[s].last_info, "success": False, "failure": reason},
                       extras.get(s, {}))
        if not skills:
            return freed
        results, lost = pool.set_skill(skills)
        for s, obs, info in results:
            slot = slots[s]
            slot.history[-1] = obs
            slot.queue.clear()
            slot.instruction, slot.last_info = director.text(s, info), info
        requeue(lost)
        return freed + lost

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
            ended, running = [], []
            for s, obs, _, term, trunc, info, extra in results:
                slot = slots[s]
                if extra["action"] is not None:
                    slot.actions.append(extra["action"])
                    if "env_state" in extra:
                        slot.states.append(extra["env_state"])
                    if slot.chunks:
                        slot.chunk_of_step.append(len(slot.chunks) - 1)
                if not (term or trunc):
                    slot.push(obs)
                    slot.steps += 1
                    slot.last_info = info
                    running.append((s, obs, info, extra, slot.window))
                    continue
                slot.steps += extra["action"] is not None
                finish(s, info, extra)
                ended.append(s)
            requeue(lost)
            if director is not None and running:
                lost += direct(director.after_step([r for r in running if r[0] not in lost]))
            waiting += ended + lost
    finally:
        recorder.close()
        bar.close()
    return [finished[(e.group, e.index)] for e in episodes]
