"""The EpisodeStore's directory on disk: create its groups and arrays, check an existing one,
and undo an unfinished tail (see :mod:`robopolicy.data.store` for the layout)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import zarr

from robopolicy.data.schema import (
    COMPRESSOR,
    LATER_META_FIELDS,
    META_CHUNK,
    META_DTYPES,
    META_FIELDS,
    SCHEMA_VERSION,
    chunk_steps,
    parse_shape_meta,
)
from robopolicy.errors import RobopolicyError

logger = logging.getLogger(__name__)


def create_layout(path: Path, specs: dict[str, tuple[tuple[int, ...], np.dtype]],
                  attrs: dict) -> zarr.Group:
    """Write an empty store's groups and arrays at ``path`` (replacing what is there)."""
    group = zarr.open_group(str(path), mode="w", attributes=attrs)
    data = group.create_group("data")
    for key, (shape, dtype) in specs.items():
        data.create_array(
            key,
            shape=(0, *shape),
            chunks=(chunk_steps(shape, dtype), *shape),
            dtype=dtype,
            compressors=COMPRESSOR,
            fill_value=0,
        )
    meta = group.create_group("meta")
    episodes = meta.create_group("episodes")
    for field, (ftype, default) in META_FIELDS.items():
        episodes.create_array(
            field,
            shape=(0,),
            chunks=(META_CHUNK,),
            dtype=META_DTYPES[ftype],
            compressors=COMPRESSOR,
            fill_value=default,
        )
    # Created last: a store without episode_ends is recognised as incomplete/corrupt.
    meta.create_array(
        "episode_ends",
        shape=(0,),
        chunks=(META_CHUNK,),
        dtype="int64",
        compressors=COMPRESSOR,
        fill_value=0,
    )
    return group


def add_later_fields(group: zarr.Group, n: int) -> None:
    """Give a store written before LATER_META_FIELDS existed those arrays (defaults)."""
    episodes = group["meta/episodes"]
    for field in LATER_META_FIELDS:
        if field not in episodes:
            ftype, default = META_FIELDS[field]
            arr = episodes.create_array(field, shape=(n,), chunks=(META_CHUNK,),
                                        dtype=META_DTYPES[ftype], compressors=COMPRESSOR,
                                        fill_value=default)
            if n:
                arr[:] = default

def check_layout(group: zarr.Group, where: str) -> tuple[np.ndarray, int]:
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
    specs = parse_shape_meta(attrs["shape_meta"], where)

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

def truncate_tail(group: zarr.Group, ends: np.ndarray, n: int, where: str) -> None:
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
