"""Episode store: demonstrations, augmented episodes and rollouts in one zarr v3 directory.

Layout (schema version 1)::

    <path>/
      zarr.json                 root attrs: schema_version, env_config, shape_meta
      data/<key>                one array per observation key plus ``action``; all episodes
                                concatenated on axis 0, chunked along time only, Blosc zstd
      meta/episode_ends         int64, cumulative end index of each committed episode
      meta/episodes/<field>     one 1-D array per per-episode metadata field (see META_FIELDS)

Keys may contain dots (``rgb.agentview``); they are plain zarr array names.

Crash safety: an episode is written data first, then its metadata, then its entry in
``meta/episode_ends`` (that append is the commit point; zarr's local store writes every file
through a temporary file and a rename). Anything past the last committed end is an unfinished
tail: ``open(mode="r")`` ignores it, ``open(mode="a")`` truncates it.

Concurrency: one writer at a time, across processes too (nothing locks; the caller makes sure).
Readers opened with ``mode="r"`` see the episodes committed when they opened the store.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from robopolicy.errors import RobopolicyError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: numpy dtype stored for each ``shape_meta["obs"][key]["type"]``; ``action`` is float32.
OBS_TYPE_DTYPES: dict[str, np.dtype] = {
    "rgb": np.dtype(np.uint8),
    "depth": np.dtype(np.float32),
    "low_dim": np.dtype(np.float32),
    "mask": np.dtype(np.bool_),
    "pcd": np.dtype(np.float32),
}
ACTION_DTYPE = np.dtype(np.float32)

#: Per-episode metadata: field -> (python type, default). ``length`` is filled from the data.
#: ``source`` is "expert", "rollout" or "augment:<kind>" ("" = unknown).
META_FIELDS: dict[str, tuple[type, Any]] = {
    "task_id": (str, ""),
    "task_class": (int, -1),
    "category": (str, ""),
    "instance_id": (int, -1),
    "split": (str, ""),
    "seed": (int, -1),
    "success": (bool, False),
    "length": (int, 0),
    "backend": (str, ""),
    "source": (str, ""),
    "instruction": (str, ""),
    "init_seed": (int, -1),  # the initial-state seed (catalog episodes: not the episode index)
    "completion": (float, 0.0),  # fraction of the task's skills done
    # the task's skill chain over time, as JSON lists: the step at which each skill began
    # ([0, 31, ...]; skills never begun are absent) and each skill's instruction
    "skill_starts": (str, ""),
    "skill_instructions": (str, ""),
}
#: Fields added after schema 1 was first written: a store without them reads their defaults,
#: and gets them (filled with defaults) when opened for appending.
LATER_META_FIELDS = ("init_seed", "completion", "skill_starts", "skill_instructions")
# Strings are zarr 3's variable-length UTF-8 ``string`` data type (numpy StringDType in RAM):
# no length limit, no truncation, and unlike fixed-width "<U" it has a zarr v3 spec.
_META_DTYPES = {str: str, int: "int64", bool: "bool", float: "float64"}

#: Chunk length along time: about TARGET_CHUNK_BYTES of raw data per chunk, clamped to
#: [1, MAX_CHUNK_STEPS]. The cap keeps low-dim chunks small enough that the read-modify-write
#: of the tail chunk at each commit stays cheap and the streaming writer flushes regularly.
TARGET_CHUNK_BYTES = 2 * 2**20
MAX_CHUNK_STEPS = 4096
_META_CHUNK = 4096  # episodes per chunk of meta arrays
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3)


def chunk_steps(step_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Time steps per chunk for one array: ~2 MiB of raw data, clamped to [1, 4096]."""
    step_bytes = max(1, math.prod(step_shape) * np.dtype(dtype).itemsize)
    return int(min(MAX_CHUNK_STEPS, max(1, TARGET_CHUNK_BYTES // step_bytes)))


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _parse_shape_meta(shape_meta: Any, where: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Validate ``shape_meta`` and return ``{key: (step_shape, dtype)}`` (obs keys, then action)."""
    if not isinstance(shape_meta, Mapping) or not isinstance(shape_meta.get("obs"), Mapping):
        raise RobopolicyError(f"{where}: shape_meta must be a dict with an 'obs' dict")
    if not isinstance(shape_meta.get("action"), Mapping) or "shape" not in shape_meta["action"]:
        raise RobopolicyError(f"{where}: shape_meta['action'] must be a dict with a 'shape'")

    def shape_of(entry: Mapping, name: str) -> tuple[int, ...]:
        shape = entry.get("shape")
        if not isinstance(shape, list | tuple) or not all(
            isinstance(d, int | np.integer) and d > 0 for d in shape
        ):
            raise RobopolicyError(
                f"{where}: shape_meta {name}: shape must be a list of positive ints, got {shape!r}"
            )
        return tuple(int(d) for d in shape)

    specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for key, entry in shape_meta["obs"].items():
        if (
            not isinstance(key, str)
            or not key
            or "/" in key
            or key.startswith("__")
            or key in (".", "..")
        ):
            raise RobopolicyError(f"{where}: shape_meta obs key {key!r} is not a valid array name")
        if key == "action":
            raise RobopolicyError(
                f"{where}: shape_meta obs key 'action' clashes with the action array"
            )
        if not isinstance(entry, Mapping):
            raise RobopolicyError(f"{where}: shape_meta obs {key!r} must be a dict")
        obs_type = entry.get("type", "low_dim")
        if obs_type not in OBS_TYPE_DTYPES:
            raise RobopolicyError(
                f"{where}: shape_meta obs {key!r}: unknown type {obs_type!r} (expected one of {sorted(OBS_TYPE_DTYPES)})"
            )
        specs[key] = (shape_of(entry, f"obs {key!r}"), OBS_TYPE_DTYPES[obs_type])
    specs["action"] = (shape_of(shape_meta["action"], "action"), ACTION_DTYPE)
    return specs


def _normalize_shape_meta(shape_meta: Mapping) -> dict:
    """A JSON-friendly copy of ``shape_meta`` (shapes as lists, obs type made explicit)."""
    obs = {}
    for key, entry in shape_meta["obs"].items():
        obs[key] = {
            **entry,
            "shape": [int(d) for d in entry["shape"]],
            "type": entry.get("type", "low_dim"),
        }
    return {
        **shape_meta,
        "obs": obs,
        "action": {
            **shape_meta["action"],
            "shape": [int(d) for d in shape_meta["action"]["shape"]],
        },
    }


class EpisodeStore:
    """Episodes of observations and actions in a zarr v3 directory (see the module docstring).

    Build one with :meth:`create` or :meth:`open`, never with the constructor.

    Attributes:
        path: the store's directory.
        shape_meta: ``{"obs": {key: {"shape": [...], "type": "rgb"|"depth"|"low_dim"|"mask"|"pcd"}},
            "action": {"shape": [Da]}}`` (per-step shapes, without the time axis).
        env_config: the environment configuration the episodes were recorded with.
        keys: data keys, the obs keys in ``shape_meta`` order then ``"action"``.
    """

    def __init__(
        self, path: Path, group: zarr.Group, mode: Literal["r", "a"], ends: np.ndarray
    ) -> None:
        self.path = path
        self.mode = mode
        self._group = group
        attrs = group.attrs.asdict()
        self.shape_meta: dict = attrs["shape_meta"]
        self.env_config: dict = attrs.get("env_config") or {}
        self._specs = _parse_shape_meta(self.shape_meta, f"dataset {path}")
        self.keys: list[str] = list(self._specs)
        self._data = {key: group["data"][key] for key in self.keys}
        self._meta = {field: group["meta/episodes"][field] for field in META_FIELDS
                      if field in group["meta/episodes"]}
        self._ends_array = group["meta/episode_ends"]
        self._ends = ends.astype(np.int64)
        self._ends.flags.writeable = False
        self._writer: EpisodeWriter | None = None

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        shape_meta: dict,
        env_config: dict | None = None,
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` and return it opened in mode ``"a"``.

        Data keys are ``shape_meta["obs"]`` keys plus ``"action"``; dtypes follow the obs type:
        rgb -> uint8, depth/low_dim/pcd -> float32, mask -> bool; action -> float32.
        An existing non-empty ``path`` is an error unless ``overwrite`` (which only replaces
        an existing zarr store, never an arbitrary directory).
        """
        path = Path(path)
        where = f"dataset {path}"
        specs = _parse_shape_meta(shape_meta, where)
        env_config = dict(env_config or {})
        try:
            json.dumps(env_config)
            json.dumps(shape_meta)
        except (TypeError, ValueError) as e:
            raise RobopolicyError(
                f"{where}: env_config/shape_meta must be JSON-serializable ({_one_line(e)})"
            ) from e
        if path.exists():
            if not path.is_dir():
                raise RobopolicyError(f"{where}: exists and is not a directory")
            if any(path.iterdir()):
                if not overwrite:
                    raise RobopolicyError(
                        f"{where}: exists and is not empty (pass overwrite=True to replace it)"
                    )
                if not (path / "zarr.json").is_file():
                    raise RobopolicyError(
                        f"{where}: exists and is not a zarr store; refusing to overwrite it"
                    )
        attrs = {
            "schema_version": SCHEMA_VERSION,
            "env_config": env_config,
            "shape_meta": _normalize_shape_meta(shape_meta),
        }
        group = zarr.open_group(str(path), mode="w", attributes=attrs)
        data = group.create_group("data")
        for key, (shape, dtype) in specs.items():
            data.create_array(
                key,
                shape=(0, *shape),
                chunks=(chunk_steps(shape, dtype), *shape),
                dtype=dtype,
                compressors=_COMPRESSOR,
                fill_value=0,
            )
        meta = group.create_group("meta")
        episodes = meta.create_group("episodes")
        for field, (ftype, default) in META_FIELDS.items():
            episodes.create_array(
                field,
                shape=(0,),
                chunks=(_META_CHUNK,),
                dtype=_META_DTYPES[ftype],
                compressors=_COMPRESSOR,
                fill_value=default,
            )
        # Created last: a store without episode_ends is recognised as incomplete/corrupt.
        meta.create_array(
            "episode_ends",
            shape=(0,),
            chunks=(_META_CHUNK,),
            dtype="int64",
            compressors=_COMPRESSOR,
            fill_value=0,
        )
        return cls(path, group, "a", np.zeros(0, dtype=np.int64))

    @classmethod
    def open(cls, path: str | os.PathLike, mode: Literal["r", "a"] = "r") -> EpisodeStore:
        """Open an existing store.

        ``mode="r"`` never writes and ignores an unfinished tail (data or metadata past the
        last committed episode). ``mode="a"`` truncates that tail (logging how many steps
        were dropped) so new episodes can be appended.
        Raises RobopolicyError if ``path`` is missing, not an EpisodeStore, or corrupt.
        """
        path = Path(path)
        where = f"dataset {path}"
        if mode not in ("r", "a"):
            raise RobopolicyError(f"{where}: mode must be 'r' or 'a', got {mode!r}")
        if not path.exists():
            raise RobopolicyError(f"{where}: does not exist")
        try:
            group = zarr.open_group(str(path), mode="r" if mode == "r" else "r+")
        except Exception as e:  # zarr raises many kinds for unreadable/invalid metadata
            raise RobopolicyError(f"{where}: not a zarr store ({_one_line(e)})") from e
        try:
            ends, n_committed = cls._check_layout(group, where)
        except RobopolicyError:
            raise
        except Exception as e:
            raise RobopolicyError(f"{where}: corrupt store ({_one_line(e)})") from e
        if mode == "a":
            cls._truncate_tail(group, ends, n_committed, where)
            cls._add_later_fields(group, n_committed)
        return cls(path, group, mode, ends[:n_committed])

    @staticmethod
    def _add_later_fields(group: zarr.Group, n: int) -> None:
        """Give a store written before LATER_META_FIELDS existed those arrays (defaults)."""
        episodes = group["meta/episodes"]
        for field in LATER_META_FIELDS:
            if field not in episodes:
                ftype, default = META_FIELDS[field]
                arr = episodes.create_array(field, shape=(n,), chunks=(_META_CHUNK,),
                                            dtype=_META_DTYPES[ftype], compressors=_COMPRESSOR,
                                            fill_value=default)
                if n:
                    arr[:] = default

    @staticmethod
    def _check_layout(group: zarr.Group, where: str) -> tuple[np.ndarray, int]:
        """Check the layout; return all of ``episode_ends`` and how many entries are committed."""
        attrs = group.attrs.asdict()
        if "schema_version" not in attrs or "shape_meta" not in attrs:
            raise RobopolicyError(
                f"{where}: missing schema_version/shape_meta attrs (not an EpisodeStore?)"
            )
        if attrs["schema_version"] != SCHEMA_VERSION:
            raise RobopolicyError(
                f"{where}: unsupported schema_version {attrs['schema_version']!r} (this code reads {SCHEMA_VERSION})"
            )
        specs = _parse_shape_meta(attrs["shape_meta"], where)

        def array(name: str) -> zarr.Array:
            try:
                node = group[name]
            except KeyError:
                raise RobopolicyError(
                    f"{where}: missing {name} (not an EpisodeStore, or corrupt)"
                ) from None
            if not isinstance(node, zarr.Array):
                raise RobopolicyError(f"{where}: {name} is not an array")
            return node

        data_len = []
        for key, (shape, _) in specs.items():
            arr = array(f"data/{key}")
            if tuple(arr.shape[1:]) != shape:
                raise RobopolicyError(
                    f"{where}: data/{key} has step shape {tuple(arr.shape[1:])}, shape_meta says {shape}"
                )
            data_len.append(arr.shape[0])
        meta_len = [array(f"meta/episodes/{field}").shape[0] for field in META_FIELDS
                    if field not in LATER_META_FIELDS or field in group["meta/episodes"]]
        ends_array = array("meta/episode_ends")
        if ends_array.ndim != 1:
            raise RobopolicyError(f"{where}: meta/episode_ends must be 1-D")
        ends = np.asarray(ends_array[:], dtype=np.int64)
        # Committed = the longest prefix of strictly increasing ends whose data and meta exist.
        ok = (np.diff(ends, prepend=0) > 0) & (ends <= min(data_len))
        n = int(np.argmin(ok)) if not ok.all() else len(ends)
        return ends, min(n, min(meta_len))

    @staticmethod
    def _truncate_tail(group: zarr.Group, ends: np.ndarray, n: int, where: str) -> None:
        """Drop everything past the ``n`` committed episodes (undo order: commit point first)."""
        n_steps = int(ends[n - 1]) if n else 0
        ends_array = group["meta/episode_ends"]
        dropped_entries = ends_array.shape[0] - n
        if dropped_entries:
            ends_array[n:] = 0  # so a later resize never re-exposes a stale end
            ends_array.resize((n,))
        for field in META_FIELDS:
            if field not in group["meta/episodes"]:
                continue
            arr = group[f"meta/episodes/{field}"]
            if arr.shape[0] > n:
                arr.resize((n,))
        dropped_steps = 0
        for key in group["data"].array_keys():
            arr = group["data"][key]
            if arr.shape[0] > n_steps:
                dropped_steps = max(dropped_steps, arr.shape[0] - n_steps)
                arr.resize((n_steps, *arr.shape[1:]))
        if dropped_steps or dropped_entries:
            logger.warning(
                "%s: dropped an unfinished tail of %d steps (%d uncommitted episode_ends entries)",
                where,
                dropped_steps,
                dropped_entries,
            )

    # ------------------------------------------------------------------ properties
    @property
    def n_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self._ends)

    @property
    def n_steps(self) -> int:
        """Number of time steps over all committed episodes."""
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        """Cumulative end index of each committed episode (int64, read-only)."""
        return self._ends

    @property
    def episode_lengths(self) -> np.ndarray:
        """Length of each committed episode in steps (int64)."""
        return np.diff(self._ends, prepend=0)

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, mode={self.mode!r}, n_episodes={self.n_episodes}, n_steps={self.n_steps})"

    # ------------------------------------------------------------------ writing
    def writer(self) -> EpisodeWriter:
        """Start streaming one episode; see :class:`EpisodeWriter`. One writer at a time."""
        self._check_writable()
        if self._writer is not None:
            raise RobopolicyError(f"dataset {self.path}: another episode writer is still open")
        self._writer = EpisodeWriter(self)
        return self._writer

    def add_episode(
        self, data: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None
    ) -> int:
        """Append one whole episode and return its index.

        ``data`` maps every key in :attr:`keys` to an array with a leading time axis (all the
        same length >= 1, per-step shapes as in ``shape_meta``); ``meta`` gives any of
        :data:`META_FIELDS` (the rest take their defaults).
        """
        self._check_writable()
        lengths = {len(np.asarray(v)) if np.ndim(v) else 0 for v in data.values()}
        self._normalize_meta(meta, length=lengths.pop() if len(lengths) == 1 else None)
        with self.writer() as w:
            w.extend(data)
            return w.commit(meta)

    def _check_writable(self) -> None:
        if self.mode != "a":
            raise RobopolicyError(
                f"dataset {self.path}: opened read-only (use EpisodeStore.open(path, mode='a'))"
            )

    def _normalize_meta(self, meta: Mapping[str, Any] | None, length: int | None) -> dict[str, Any]:
        """Validate ``meta`` against META_FIELDS and fill defaults and ``length``."""
        meta = dict(meta or {})
        where = f"dataset {self.path}"
        unknown = sorted(set(meta) - set(META_FIELDS))
        if unknown:
            raise RobopolicyError(
                f"{where}: unknown episode meta field(s) {unknown} (known: {list(META_FIELDS)})"
            )
        out: dict[str, Any] = {}
        for field, (ftype, default) in META_FIELDS.items():
            value = meta.get(field, default)
            if ftype is bool:
                ok = isinstance(value, bool | np.bool_)
            elif ftype is int:
                ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
            elif ftype is float:
                ok = isinstance(value, float | int | np.floating | np.integer) and not isinstance(
                    value, bool | np.bool_)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise RobopolicyError(
                    f"{where}: episode meta {field!r} must be {ftype.__name__}, got {value!r}"
                )
            out[field] = ftype(value)
        if length is not None:
            if "length" in meta and out["length"] != length:
                raise RobopolicyError(
                    f"{where}: episode meta 'length'={out['length']} but the data has {length} steps"
                )
            out["length"] = length
        src = out["source"]
        if src not in ("", "expert", "rollout") and not (
            src.startswith("augment:") and len(src) > len("augment:")
        ):
            raise RobopolicyError(
                f"{where}: episode meta 'source'={src!r} (expected expert, rollout or augment:<kind>)"
            )
        return out

    # ------------------------------------------------------------------ reading
    def _index(self, i: int) -> int:
        n = self.n_episodes
        if not isinstance(i, int | np.integer) or not -n <= i < n:
            raise IndexError(
                f"dataset {self.path}: episode index {i!r} out of range for {n} episodes"
            )
        return int(i) % n

    def _check_keys(self, keys: list[str] | None) -> list[str]:
        if keys is None:
            return list(self.keys)
        if isinstance(keys, str):
            keys = [keys]
        unknown = [k for k in keys if k not in self._specs]
        if unknown:
            raise RobopolicyError(
                f"dataset {self.path}: unknown key(s) {unknown} (keys: {self.keys})"
            )
        return list(keys)

    def get_episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """Episode ``i``'s arrays (all keys by default), each with a leading time axis."""
        i = self._index(i)
        keys = self._check_keys(keys)
        start = int(self._ends[i - 1]) if i else 0
        end = int(self._ends[i])
        return {k: self._data[k][start:end] for k in keys}

    def episode_meta(self, i: int) -> dict[str, Any]:
        """Episode ``i``'s metadata as python values (str, int, bool)."""
        i = self._index(i)
        return {field: self._meta[field][i].item() if field in self._meta else META_FIELDS[field][1]
                for field in META_FIELDS}

    def episode_skills(self, i: int) -> tuple[np.ndarray, list[str]]:
        """Episode ``i``'s skill index at every step (T,) int64, and its skills' instructions
        (empty for an episode recorded without them)."""
        meta = self.episode_meta(i)
        starts = json.loads(meta["skill_starts"] or "[0]")
        index = np.searchsorted(np.asarray(starts[1:], np.int64), np.arange(meta["length"]),
                                side="right")
        return index.astype(np.int64), json.loads(meta["skill_instructions"] or "[]")

    def episodes(self) -> list[dict[str, Any]]:
        """Metadata of all committed episodes, in order."""
        n = self.n_episodes
        columns = {field: self._meta[field][:n].tolist() if field in self._meta
                   else [META_FIELDS[field][1]] * n for field in META_FIELDS}
        return [{field: columns[field][i] for field in META_FIELDS} for i in range(n)]

    def load(self, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All committed steps of ``keys`` (default: all) in RAM, each ``(n_steps, *shape)``."""
        keys = self._check_keys(keys)
        n = self.n_steps
        return {k: self._data[k][:n] for k in keys}


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

    def __init__(self, store: EpisodeStore) -> None:
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
        values = store._normalize_meta(meta, length=self._length)
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
