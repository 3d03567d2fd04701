"""Summaries of an EpisodeStore: what `robopolicy dataset info` prints."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from robopolicy.data.store import EpisodeStore


def disk_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def dataset_info(path: str | os.PathLike, verify: bool = False) -> dict:
    """Episodes, steps, per-class/category/split counts, success rate, keys and disk size.

    Reads only the metadata unless ``verify``: then every chunk is decoded first
    (:func:`robopolicy.data.verify.verify_store`; damage raises a one-line RobopolicyError).
    ``chunks_verified`` says which.
    """
    if verify:
        from robopolicy.data.verify import verify_store

        verify_store(path)
    store = EpisodeStore.open(path)
    episodes = store.episodes()
    n = len(episodes)
    successes = sum(e["success"] for e in episodes)

    def counts(field: str) -> dict:
        return dict(sorted(Counter(e[field] for e in episodes).items()))

    lengths = store.episode_lengths
    return {
        "path": str(store.path),
        "episodes": n,
        "steps": store.n_steps,
        "successes": successes,
        "success_rate": successes / n if n else 0.0,
        "mean_length": float(lengths.mean()) if n else 0.0,
        "classes": {str(k): v for k, v in counts("task_class").items()},
        "categories": counts("category"),
        "splits": counts("split"),
        "sources": counts("source"),
        "keys": {k: {"shape": list(v["shape"]), "type": v.get("type", "low_dim")}
                 for k, v in store.shape_meta["obs"].items()}
                | {"action": {"shape": list(store.shape_meta["action"]["shape"]), "type": "action"}},
        "disk_bytes": disk_bytes(store.path),
        "attempts": attempt_summary(store.path),
        "chunks_verified": bool(verify),
    }


def read_attempts(path: Path) -> list[dict]:
    """The collection attempts logged in a store (kept or not); torn lines are skipped."""
    from robopolicy.data.collect import ATTEMPTS_FILE
    from robopolicy.data.jsonl import read_json_lines

    return read_json_lines(Path(path) / ATTEMPTS_FILE)


def attempt_summary(path: Path) -> dict | None:
    """Success of every collection attempt (failures too) per task class x category, with the
    most common failure reasons; None if the store has no attempt log with that detail."""
    attempts = [a for a in read_attempts(path) if "task_class" in a]
    if not attempts:
        return None
    cells: dict[str, dict[str, list[int]]] = {}
    for a in attempts:
        cell = cells.setdefault(str(a["task_class"]), {}).setdefault(a["category"], [0, 0])
        cell[0] += bool(a["success"])
        cell[1] += 1
    reasons = Counter(a["failure"] for a in attempts if not a["success"] and a.get("failure"))
    cells = dict(sorted(cells.items(), key=lambda kv: int(kv[0])))

    def rate(pairs) -> list[int]:
        return [sum(p[0] for p in pairs), sum(p[1] for p in pairs)]

    categories = sorted({c for row in cells.values() for c in row})
    return {
        "attempts": len(attempts), "successes": sum(bool(a["success"]) for a in attempts),
        "by_class": {k: rate(v.values()) for k, v in cells.items()},
        "by_category": {c: rate([row[c] for row in cells.values() if c in row]) for c in categories},
        "cells": cells,
        "failures": dict(reasons.most_common(10)),
    }


def format_attempts(summary: dict) -> str:
    """The attempt summary as a class x category table of `successes/attempts`."""
    cats = list(summary["by_category"])
    width = max(6, *(min(len(c), 11) for c in cats)) + 1
    n, ok = summary["attempts"], summary["successes"]
    lines = [f"expert attempts: {ok}/{n} succeeded ({ok / max(n, 1):.1%}); class x category:",
             "class " + "".join(f"{c[:11]:>{width}}" for c in cats) + f"{'all':>{width}}"]
    for k, row in summary["cells"].items():
        cells = "".join(f"{f'{row[c][0]}/{row[c][1]}' if c in row else '-':>{width}}" for c in cats)
        s, t = summary["by_class"][k]
        lines.append(f"{k:>5} " + cells + f"{f'{s}/{t}':>{width}}")
    lines.append("  all " + "".join(f"{'/'.join(map(str, summary['by_category'][c])):>{width}}" for c in cats))
    if summary["failures"]:
        lines.append("most common failures:")
        lines += [f"  {v:>4} x {k}" for k, v in summary["failures"].items()]
    return "\n".join(lines)


def format_info(info: dict) -> str:
    """A human-readable table of `dataset_info`."""
    mb = info["disk_bytes"] / 2**20
    lines = [
        f"dataset:    {info['path']}",
        f"episodes:   {info['episodes']} ({info['steps']} steps, mean length "
        f"{info['mean_length']:.1f})",
        f"success:    {info['successes']}/{info['episodes']} ({info['success_rate']:.1%})",
        f"disk:       {mb:.1f} MiB",
        "keys:       " + ", ".join(f"{k} {tuple(v['shape'])}" for k, v in info["keys"].items()),
        "chunks:     " + ("all decoded, no NaN/inf" if info.get("chunks_verified") else
                          "not verified (metadata only; `robopolicy dataset verify PATH` or "
                          "`info PATH --verify` decodes every chunk)"),
    ]
    for title, field in (("classes", "classes"), ("categories", "categories"), ("splits", "splits"),
                         ("sources", "sources")):
        if info[field]:
            lines.append(f"{title + ':':<11} " + ", ".join(f"{k}: {v}" for k, v in info[field].items()))
    if info.get("attempts"):
        lines += ["", format_attempts(info["attempts"])]
    return "\n".join(lines)
