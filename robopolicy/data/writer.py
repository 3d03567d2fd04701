"""EpisodeWriter: streams one episode into an EpisodeStore in chunk-aligned blocks and commits
it crash-safely (data, then metadata, then its ``episode_ends`` entry: the commit point)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robopolicy.data.schema import normalize_meta
from robopolicy.errors import RobopolicyError


class EpisodeWriter:
    """Streams one episode into an :class:`EpisodeStore`; get one from ``store.writer()``.

    Add steps with :meth:`append` (one step: a dict of arrays *without* a time axis) or
    :meth:`extend` (a block: a dict of arrays *with* a leading time axis), like list.append and
    list.extend. Every call gives every key of the store. Steps are buffered in RAM and written
    in chunk-aligned blocks, so a long episode never sits in memory whole. :meth:`commit`
    writes the rest, the metadata, then the episode's end (the commit point) and returns the
    episode index; :meth:`discard` drops it. As a context manager, leaving the block without
    committing discards::

        with store.writer() as w:
            for t in range(T):
                w.append({**obs, "action": action})
            w.commit({"task_id": "t001", "success": True, "source": "expert"})
    """

    def __init__(self, store: Any) -> None:  # the EpisodeStore (store.py imports this module)
        self._store = store
        self._start = store.n_steps
        self._length = 0
        self._flushed = dict.fromkeys(store.keys, 0)  # steps of this episode already on disk
        self._pending: dict[str, list[np.ndarray]] = {k: [] for k in store.keys}
        self._pending_len = dict.fromkeys(store.keys, 0)
        self._closed = False

    def __len__(self) -> int:
        """Steps added so far."""
        return self._length

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._closed:
            self.discard()

    def append(self, step: Mapping[str, np.ndarray]) -> None:
        """Add one time step: ``{key: array of the per-step shape}`` for every key."""
        self._add(step, single=True)

    def extend(self, steps: Mapping[str, np.ndarray]) -> None:
        """Add a block of steps: ``{key: array (T, *per-step shape)}``, the same T for all keys."""
        self._add(steps, single=False)

    def _add(self, block: Mapping[str, np.ndarray], single: bool) -> None:
        self._check_open()
        store = self._store
        where = f"dataset {store.path}"
        missing = [k for k in store.keys if k not in block]
        extra = [k for k in block if k not in store._specs]
        if missing or extra:
            raise RobopolicyError(
                f"{where}: step keys do not match the store (missing {missing}, unknown {extra})"
            )
        arrays = {}
        for key in store.keys:
            shape, dtype = store._specs[key]
            value = np.asarray(block[key])
            if single:
                value = value[None]
            if value.ndim != len(shape) + 1 or tuple(value.shape[1:]) != shape:
                got = value.shape[1:] if value.ndim else ()
                raise RobopolicyError(
                    f"{where}: key {key!r} has step shape {tuple(got)}, shape_meta says {shape}"
                )
            if not np.can_cast(value.dtype, dtype, casting="same_kind"):
                raise RobopolicyError(
                    f"{where}: key {key!r} has dtype {value.dtype}, the store holds {dtype}"
                )
            arrays[key] = value.astype(dtype, copy=False)
        lengths = {key: len(v) for key, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise RobopolicyError(f"{where}: keys have different numbers of steps {lengths}")
        for key, value in arrays.items():
            self._push(key, value)
        self._length += next(iter(lengths.values()))

    def _push(self, key: str, block: np.ndarray) -> None:
        """Buffer ``block``; write whatever completes chunks of the on-disk array."""
        if not len(block):
            return
        chunk = self._store._data[key].chunks[0]
        pos = self._start + self._flushed[key]
        need = chunk - pos % chunk  # steps until the next chunk boundary
        pending_len = self._pending_len[key]
        if pending_len + len(block) < need:
            self._pending[key].append(block.copy())  # own it: callers may reuse their buffers
            self._pending_len[key] += len(block)
            return
        head = need - pending_len
        first = np.concatenate([*self._pending[key], block[:head]]) if pending_len else block[:head]
        n_whole = (len(block) - head) // chunk * chunk
        self._write(key, [first, block[head : head + n_whole]])
        rest = block[head + n_whole :]
        self._pending[key] = [rest.copy()] if len(rest) else []
        self._pending_len[key] = len(rest)

    def _write(self, key: str, blocks: list[np.ndarray]) -> None:
        arr = self._store._data[key]
        pos = self._start + self._flushed[key]
        total = sum(len(b) for b in blocks)
        arr.resize((pos + total, *arr.shape[1:]))
        for b in blocks:
            if len(b):
                arr[pos : pos + len(b)] = b
                pos += len(b)
        self._flushed[key] += total

    def commit(self, meta: Mapping[str, Any] | None = None) -> int:
        """Write the rest of the episode, its metadata, then its end; return its index.

        ``meta`` gives any of :data:`META_FIELDS`; ``length`` is filled in. On a bad ``meta``
        nothing is written and the writer stays open.
        """
        self._check_open()
        store = self._store
        if self._length == 0:
            raise RobopolicyError(f"dataset {store.path}: cannot commit an empty episode")
        values = normalize_meta(meta, self._length, f"dataset {store.path}")
        for key in store.keys:
            if self._pending_len[key]:
                self._write(key, self._pending[key])
                self._pending[key], self._pending_len[key] = [], 0
        index = store.n_episodes
        for field, value in values.items():
            arr = store._meta[field]
            arr.resize((index + 1,))
            arr[index] = value
        end = self._start + self._length
        store._ends_array.resize((index + 1,))
        store._ends_array[index] = end  # the commit point
        ends = np.append(store._ends, np.int64(end))
        ends.flags.writeable = False
        store._ends = ends
        self._close()
        return index

    def discard(self) -> None:
        """Drop this episode: forget buffered steps and truncate those already written."""
        if self._closed:
            return
        for key, n in self._flushed.items():
            if n:
                arr = self._store._data[key]
                arr.resize((self._start, *arr.shape[1:]))
        self._close()

    def _close(self) -> None:
        self._pending = {k: [] for k in self._store.keys}
        self._closed = True
        self._store._writer = None

    def _check_open(self) -> None:
        if self._closed:
            raise RobopolicyError(
                f"dataset {self._store.path}: this episode writer is already committed or discarded"
            )
