"""The record format of an evaluation run folder, shared by the evaluation (which writes it)
and the viewer (which reads it).

A run folder holds `run.json` (what was evaluated) and, per group (a catalog split's
subfolder, or the folder itself), `episodes.jsonl` with one JSON record per finished episode
(appended and fsynced at once, so a killed run keeps every line it wrote) and
`rollouts/episode_<i>.npz` beside it (the executed actions and predicted chunks).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from robopolicy.errors import RobopolicyError

log = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
RUN_FILE = "run.json"


def read_finished(path: Path, repair: bool = True) -> dict[int, dict]:
    """Finished episode records of an episodes.jsonl, by episode index. A torn last line (a
    write cut short) is skipped and, with `repair`, cut off the file so new records start on a
    line of their own (readers that must not write, like the viewer, pass repair=False)."""
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


def claim_folder(out_dir: Path, run: dict) -> None:
    """Write run.json, or check that the folder's run.json describes this same run (the env
    config may differ: it does not change which episodes a run holds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / RUN_FILE
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        same = {k: v for k, v in previous.items() if k != "env"} == \
            {k: v for k, v in run.items() if k != "env"}
        if not same:
            raise RobopolicyError(f"{run_file}: this folder holds an evaluation of another policy or "
                                  "episode list; choose a new `out`")
    run_file.write_text(json.dumps(run, indent=2))


class RunRecorder:
    """Appends finished episodes to each group's episodes.jsonl (fsynced) with their rollout
    arrays beside it."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._files: dict[str, object] = {}

    def folder(self, group: str) -> Path:
        """The folder of a group's records ("" for the run folder itself)."""
        return self.out_dir / group if group else self.out_dir

    def finished(self, episodes: dict[str, set[int]]) -> dict[tuple[str, int], dict]:
        """Records already written, by (group, episode), for a run of `episodes` (group ->
        episode indices); a file holding an episode the run does not define is refused."""
        done = {}
        for group, indices in episodes.items():
            jsonl = self.folder(group) / EPISODES_FILE
            records = read_finished(jsonl)
            unknown = set(records) - indices
            if unknown:
                raise RobopolicyError(f"{jsonl}: holds episodes {sorted(unknown)[:5]} that this run "
                                      "does not define (different episode count or seed?)")
            done.update({(group, i): r for i, r in records.items()})
        return done

    def append(self, group: str, rec: dict, arrays: dict[str, np.ndarray]) -> dict:
        """Write the episode's rollout arrays (atomically), then append `rec` with its
        `rollout` path; returns the record as written."""
        folder = self.folder(group)
        name = f"episode_{int(rec['episode']):04d}"
        (folder / "rollouts").mkdir(parents=True, exist_ok=True)
        tmp = folder / "rollouts" / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, folder / "rollouts" / f"{name}.npz")
        rec = {**rec, "rollout": f"rollouts/{name}.npz"}
        f = self._files.get(group)
        if f is None:
            f = self._files[group] = open(folder / EPISODES_FILE, "a")
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
        return rec

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
