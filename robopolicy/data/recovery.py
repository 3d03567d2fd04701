"""Recovery demos, DAgger's data labelled by the expert: the scripted expert takes over from
states a learned policy reached in an evaluation run and finishes the task from there. Each
success is a demonstration that starts where the policy drifted off the expert's own paths,
which plain demos never show it.

    robopolicy eval ... record_states=true out=runs/rollouts     # the policy on train tasks
    robopolicy collect recovery.run=runs/rollouts out=<store> episodes=800

A start is an episode's state every ``every`` steps (the first at step ``every``), of failed
episodes only with ``failed_only``, in the run's record order, named by its run, episode and
step. Recovery episodes take seeds from ``RECOVERY_SEEDS`` up, above every seed the store
holds, so they join the expert store the policy was trained on without clashing with its
catalog seeds; a start already attempted keeps its seed, so a rerun resumes and the starts of
a later run (DAgger's next round) are new episodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from robopolicy.data.run_records import EPISODES_FILE, read_finished
from robopolicy.errors import RobopolicyError

RECOVERY_SEEDS = 10_000_000
STATE_KEYS = ("state_sim", "state_skill_index", "state_skill_start", "state_steps", "state_target")


@dataclass(frozen=True)
class RecoverySettings:
    """Where recovery demos start (`recovery:` in configs/collect.yaml).

    Attributes:
        run: an evaluation run folder written with ``record_states=true``.
        every: steps between the starts taken from one episode (>= 1).
        failed_only: take starts from failed episodes only (where the policy went wrong).
    """

    run: Path
    every: int = 20
    failed_only: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", Path(self.run))
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise RobopolicyError(f"collect: recovery.every must be a positive integer, got "
                                  f"{self.every!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> RecoverySettings | None:
        """Settings from `recovery:` (None when it names no run); an unknown key is a one-line
        error."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise RobopolicyError(f"collect: unknown recovery key(s) {unknown} "
                                  f"(known: {', '.join(f.name for f in fields(cls))})")
        return None if values.get("run") is None else cls(**values)


def recovery_starts(settings: RecoverySettings) -> list[dict]:
    """The starts of `settings.run`: [{"state": EnvState dict, "provenance": {...}}] in record
    order (groups by name, episodes by index). A run without recorded states, or an unreadable
    rollout, is a one-line error naming the file."""
    from sims.partmanip.env_state import EnvState

    run = settings.run
    files = sorted(run.rglob(EPISODES_FILE)) if run.is_dir() else []
    if not files:
        raise RobopolicyError(f"collect: recovery.run {run}: no {EPISODES_FILE} found (an "
                              "evaluation run folder written with record_states=true?)")
    starts = []
    for jsonl in files:
        for index, rec in sorted(read_finished(jsonl, repair=False).items()):
            if settings.failed_only and rec["success"]:
                continue
            arrays = _states(jsonl.parent / rec["rollout"])
            n_skills = len(rec["task"]["chain"])
            for t in range(settings.every, len(arrays["state_sim"]), settings.every):
                skill = int(arrays["state_skill_index"][t])
                if skill >= n_skills:  # the task was done here: nothing left to show
                    continue
                state = EnvState(rec["task"], arrays["state_sim"][t], skill,
                                 arrays["state_skill_start"][t], int(arrays["state_steps"][t]),
                                 arrays["state_target"][t])
                group = str(jsonl.parent.relative_to(run))
                starts.append({"state": state.to_dict(), "provenance": {
                    "run": str(run), "group": group, "episode": index, "step": t,
                    "source": "recovery",
                    "start": f"{run.resolve()}:{group}/{index}@{t}"}})
    return starts


def recovery_jobs(stored: list[dict], attempted: list[dict], starts: list[dict]
                  ) -> dict[int, tuple[int, dict]]:
    """{seed: (seed, start)} for `starts`: a start already in the store's episodes (`stored`
    metadata) or its attempts log (`attempted` records) keeps its seed; a new one takes the next
    seed above all of them (from RECOVERY_SEEDS)."""
    known: dict[str, int] = {}
    for m in stored:
        if m.get("source") == "recovery" and m.get("provenance"):
            key = json.loads(m["provenance"]).get("start")
            if key is not None:
                known[key] = int(m["seed"])
    for a in attempted:
        if "start" in a:
            known.setdefault(a["start"], int(a["seed"]))
    used = [int(m["seed"]) for m in stored] + [int(a["seed"]) for a in attempted]
    nxt = max([RECOVERY_SEEDS - 1, *used]) + 1
    jobs = {}
    for start in starts:
        seed = known.get(start["provenance"]["start"])
        if seed is None:
            seed, nxt = nxt, nxt + 1
        jobs[seed] = (seed, start)
    return dict(sorted(jobs.items()))


def _states(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as f:
            if "state_sim" not in f:
                raise RobopolicyError(f"collect: {path}: no recorded env states; evaluate with "
                                      "record_states=true")
            return {k: f[k] for k in STATE_KEYS}
    except (OSError, ValueError, KeyError) as e:
        raise RobopolicyError(f"collect: {path}: unreadable rollout ({e})") from None


def recovery_meta(task, info: dict, start: dict, seed: int, length: int, backend: str) -> dict:
    """The store metadata of a recovery episode (`task` a TaskSpec)."""
    return {"task_id": task.task_id, "task_class": task.task_class, "category": task.category,
            "instance_id": task.instance_id, "split": task.split, "seed": seed,
            "init_seed": task.init_seed, "success": bool(info["success"]),
            "completion": float(info["completion"]), "length": length, "backend": backend,
            "source": "recovery", "instruction": task.instruction,
            "skill_starts": json.dumps(info["skill_starts"]),
            "skill_instructions": json.dumps(list(task.skill_instructions)),
            "chain": json.dumps(task.to_dict()["chain"]),
            # the start state makes the episode replayable on its own (the run may be gone)
            "provenance": json.dumps({**start["provenance"], "state": start["state"]})}
