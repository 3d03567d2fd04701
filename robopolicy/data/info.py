"""Summaries of an EpisodeStore: what `robopolicy dataset info` prints."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from robopolicy.data.store import EpisodeStore


def disk_bytes(path: Path) -> int:
    """Total size of the files under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def dataset_info(path: str | os.PathLike) -> dict:
    """Episodes, steps, per-class/category/split counts, success rate, keys and disk size."""
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
    }


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
    ]
    for title, field in (("classes", "classes"), ("categories", "categories"), ("splits", "splits"),
                         ("sources", "sources")):
        if info[field]:
            lines.append(f"{title + ':':<11} " + ", ".join(f"{k}: {v}" for k, v in info[field].items()))
    return "\n".join(lines)
