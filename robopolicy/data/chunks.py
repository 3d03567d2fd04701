"""Reading a store's arrays so that damage is reported, not raised from deep inside zarr: a chunk
that does not decode, or NaN/inf in a float array, becomes a one-line RobopolicyError naming the
store, the array, the chunk and the episodes it holds.

Used by :meth:`EpisodeStore.load` (training reads whole arrays into RAM) and by
:mod:`robopolicy.data.verify` (which decodes every chunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import zarr

from robopolicy.data.schema import one_line
from robopolicy.errors import RobopolicyError

#: Rows checked for NaN/inf at a time: bounds the temporary boolean array to a few MiB.
_FINITE_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk along axis 0 of an array: its index and the rows [start, stop) it holds."""

    index: int
    start: int
    stop: int


def chunk_spans(arr: zarr.Array, stop: int | None = None) -> Iterator[ChunkSpan]:
    """The chunks along axis 0 covering rows [0, stop) (default: the whole array)."""
    stop = arr.shape[0] if stop is None else min(stop, arr.shape[0])
    size = arr.chunks[0]
    for i, start in enumerate(range(0, stop, size)):
        yield ChunkSpan(i, start, min(start + size, stop))


def episode_range(ends: np.ndarray, start: int, stop: int) -> str:
    """The committed episodes that rows [start, stop) of a data array belong to, as text."""
    n_steps = int(ends[-1]) if len(ends) else 0
    if start >= n_steps:
        return "uncommitted tail"
    first = int(np.searchsorted(ends, start, side="right"))
    last = int(np.searchsorted(ends, min(stop, n_steps) - 1, side="right"))
    return f"episode {first}" if first == last else f"episodes {first}-{last}"


def chunk_label(name: str, span: ChunkSpan, ends: np.ndarray | None) -> str:
    """``data/rgb chunk 3 (steps 126-167, episodes 2-3)``; meta arrays count entries instead."""
    if ends is None:
        return f"{name} chunk {span.index} (entries {span.start}-{span.stop - 1})"
    return (f"{name} chunk {span.index} (steps {span.start}-{span.stop - 1}, "
            f"{episode_range(ends, span.start, span.stop)})")


def read_chunk(arr: zarr.Array, span: ChunkSpan, where: str, name: str,
               ends: np.ndarray | None) -> np.ndarray:
    """Rows ``span`` of ``arr``; a chunk that does not decode is a one-line RobopolicyError."""
    try:
        return arr[span.start:span.stop]
    except Exception as e:  # blosc/zstd/zarr raise RuntimeError, ValueError, ... on bad bytes
        raise RobopolicyError(f"{where}: {chunk_label(name, span, ends)} does not decode "
                              f"({one_line(e)})") from None


def read_rows(arr: zarr.Array, stop: int, where: str, name: str, ends: np.ndarray) -> np.ndarray:
    """Rows [0, stop) of ``arr`` in one read; on a decode error, find and name the bad chunk."""
    try:
        return arr[:stop]
    except Exception as e:
        for span in chunk_spans(arr, stop):
            read_chunk(arr, span, where, name, ends)  # raises, naming the chunk
        raise RobopolicyError(f"{where}: {name} does not decode ({one_line(e)})") from None


def first_nonfinite(values: np.ndarray) -> int | None:
    """Index along axis 0 of the first row holding NaN or inf (None: all finite, or not float)."""
    if not np.issubdtype(values.dtype, np.floating) or not len(values):
        return None
    row_bytes = max(1, values[:1].nbytes)
    block = max(1, _FINITE_BLOCK_BYTES // row_bytes)
    for start in range(0, len(values), block):
        part = values[start:start + block].reshape(min(block, len(values) - start), -1)
        bad = ~np.isfinite(part).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def check_finite(values: np.ndarray, where: str, key: str, ends: np.ndarray, offset: int = 0
                 ) -> None:
    """Raise a one-line RobopolicyError naming ``key`` and the first episode with NaN/inf.

    ``values`` are rows ``offset..`` of data array ``key``.
    """
    row = first_nonfinite(values)
    if row is None:
        return
    step = offset + row
    episode = int(np.searchsorted(ends, step, side="right"))
    start = int(ends[episode - 1]) if episode else 0
    raise RobopolicyError(f"{where}: key {key!r} holds NaN/inf, first in episode {episode} "
                          f"(its step {step - start}, store step {step})")
