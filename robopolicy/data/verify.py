"""`robopolicy dataset verify`: decode every chunk of every array of an EpisodeStore and check
that its parts agree, so a damaged store is found before a training run reads it.

Checks, in order (the first failure is raised as a one-line RobopolicyError naming the array,
the chunk and the episodes it holds):

1. every chunk of ``meta/episode_ends``, ``meta/episodes/*`` and ``data/*`` decodes;
2. every ``episode_ends`` entry is committed: strictly increasing, within every data array,
   with an entry in every metadata array;
3. each episode's ``length`` metadata equals its span in ``episode_ends``;
4. no float array holds NaN or inf in a committed step.

A chunk file that is absent is not an error: zarr writes no chunk that equals the fill value
(an all-False mask, a column of default metadata), and reads it back as that value.
Data past the last committed episode (an interrupted write) is decoded and reported as a tail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from robopolicy.data.chunks import check_finite, chunk_spans, read_chunk
from robopolicy.data.schema import META_FIELDS
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_store` checked."""

    path: Path
    episodes: int
    steps: int
    arrays: int
    chunks: int
    tail_steps: int  # data past the last committed episode (an interrupted write)

    def summary(self) -> str:
        tail = f"; {self.tail_steps} uncommitted tail steps" if self.tail_steps else ""
        return (f"OK {self.path}: {self.episodes} episodes, {self.steps} steps, {self.chunks} "
                f"chunks of {self.arrays} arrays decoded, episode_ends and metadata agree, "
                f"no NaN/inf{tail}")


def verify_store(path: str | os.PathLike) -> VerifyReport:
    """Check the store at ``path`` (see the module docstring); raise RobopolicyError on damage."""
    path = Path(path)
    where = f"dataset {path}"
    try:
        group = zarr.open_group(str(path), mode="r")
        group["meta/episode_ends"]
    except Exception:
        EpisodeStore.open(path)  # names what is wrong: missing, not a store, no episode_ends
        raise
    arrays = chunks = 0

    def decode_meta(name: str) -> np.ndarray:
        nonlocal arrays, chunks
        arr = group[name]
        parts = [read_chunk(arr, span, where, name, None) for span in chunk_spans(arr)]
        arrays, chunks = arrays + 1, chunks + len(parts)
        return np.concatenate(parts) if parts else arr[:0]

    # Decoded before the layout check, which reads episode_ends whole and could not name a chunk.
    ends = decode_meta("meta/episode_ends").astype(np.int64)
    meta = {field: decode_meta(f"meta/episodes/{field}") for field in META_FIELDS
            if f"meta/episodes/{field}" in group}
    EpisodeStore.open(path)  # the layout: attrs, arrays present, step shapes
    n_eps = len(ends)

    increasing = np.diff(ends, prepend=0) > 0
    if not increasing.all():
        i = int(np.argmin(increasing))
        raise RobopolicyError(f"{where}: meta/episode_ends[{i}]={int(ends[i])} does not follow "
                              f"{int(ends[i - 1]) if i else 0} (ends must increase)")
    for field, values in meta.items():
        if len(values) < n_eps:
            raise RobopolicyError(f"{where}: meta/episodes/{field} has {len(values)} entries for "
                                  f"{n_eps} episodes in meta/episode_ends")
    if "length" in meta:
        spans = np.diff(ends, prepend=0)
        wrong = np.flatnonzero(meta["length"][:n_eps] != spans)
        if len(wrong):
            i = int(wrong[0])
            raise RobopolicyError(f"{where}: episode {i}: meta/episodes/length={int(meta['length'][i])} "
                                  f"but meta/episode_ends gives {int(spans[i])} steps")

    n_steps = int(ends[-1]) if n_eps else 0
    tail = 0
    for key in group["data"].array_keys():
        name = f"data/{key}"
        arr = group["data"][key]
        if arr.shape[0] < n_steps:
            i = int(np.searchsorted(ends, arr.shape[0], side="right"))
            raise RobopolicyError(f"{where}: {name} has {arr.shape[0]} steps, but "
                                  f"meta/episode_ends[{i}]={int(ends[i])} needs {int(ends[i])}")
        tail = max(tail, arr.shape[0] - n_steps)
        for span in chunk_spans(arr):
            block = read_chunk(arr, span, where, name, ends)
            committed = block[: max(0, n_steps - span.start)]
            check_finite(committed, where, key, ends, offset=span.start)
            chunks += 1
        arrays += 1
    return VerifyReport(path, n_eps, n_steps, arrays, chunks, tail)
