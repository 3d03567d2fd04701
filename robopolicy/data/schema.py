"""The EpisodeStore's schema (version 1): dtypes per observation type, per-episode metadata
fields, chunking, and validation of ``shape_meta`` and episode metadata.

The on-disk layout is described in :mod:`robopolicy.data.store`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from zarr.codecs import BloscCodec

from robopolicy.errors import RobopolicyError

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
#: ``source`` is "expert", "rollout", "recovery" (the expert from a policy's state,
#: `robopolicy.data.recovery`) or "augment:<kind>" ("" = unknown).
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
    # the task's skill chain, structured: JSON [{"skill": "grasp", "params": {"part": ...}}, ...]
    "chain": (str, ""),
    # augmented episodes: where they came from, JSON {"store": ..., "episode": ..., "augmenter":
    # ..., "params": {...}}; recovery episodes: the evaluation run, episode and step they start
    # from, with that start's EnvState dict under "state" ("" for collected ones)
    "provenance": (str, ""),
    # cameras that differ from the env's (a `camera`-augmented agentview), JSON {name: {"pos":
    # [3], "rot": [[3] x 3] (columns = camera x right, y up, z backwards), "fovy_deg", "width",
    # "height"}} (`robopolicy.augment.frames.camera_to_dict`); "" = the env's own
    "cameras": (str, ""),
}
#: Fields added after schema 1 was first written: a store without them reads their defaults,
#: and gets them (filled with defaults) when opened for appending.
LATER_META_FIELDS = ("init_seed", "completion", "skill_starts", "skill_instructions", "chain",
                     "provenance", "cameras")
# Strings are zarr 3's variable-length UTF-8 ``string`` data type (numpy StringDType in RAM):
# no length limit, no truncation, and unlike fixed-width "<U" it has a zarr v3 spec.
META_DTYPES = {str: str, int: "int64", bool: "bool", float: "float64"}

#: Chunk length along time: about TARGET_CHUNK_BYTES of raw data per chunk, clamped to
#: [1, MAX_CHUNK_STEPS]. The cap keeps low-dim chunks small enough that the read-modify-write
#: of the tail chunk at each commit stays cheap and the streaming writer flushes regularly.
TARGET_CHUNK_BYTES = 2 * 2**20
MAX_CHUNK_STEPS = 4096
META_CHUNK = 4096  # episodes per chunk of meta arrays
COMPRESSOR = BloscCodec(cname="zstd", clevel=3)


def chunk_steps(step_shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Time steps per chunk for one array: ~2 MiB of raw data, clamped to [1, 4096]."""
    step_bytes = max(1, math.prod(step_shape) * np.dtype(dtype).itemsize)
    return int(min(MAX_CHUNK_STEPS, max(1, TARGET_CHUNK_BYTES // step_bytes)))


def store_image_size(trained_dir: str | Path) -> list[int] | None:
    """[width, height] of the camera images of the store a policy or planner directory was
    trained on: its meta.json's ``dataset_env_config`` is that store's ``env_config`` (None where
    it records none)."""
    meta = json.loads((Path(trained_dir) / "meta.json").read_text())
    size = ((meta.get("dataset_env_config") or {}).get("env") or {}).get("image_size")
    return [int(v) for v in size] if size else None


def one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def parse_shape_meta(shape_meta: Any, where: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
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


def normalize_shape_meta(shape_meta: Mapping) -> dict:
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


def normalize_meta(meta: Mapping[str, Any] | None, length: int | None, where: str) -> dict[str, Any]:
    """Validate ``meta`` against META_FIELDS and fill defaults and ``length`` (``where``: the store,
    for messages)."""
    meta = dict(meta or {})
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
    if src not in ("", "expert", "rollout", "recovery") and not (
        src.startswith("augment:") and len(src) > len("augment:")
    ):
        raise RobopolicyError(
            f"{where}: episode meta 'source'={src!r} (expected expert, rollout, recovery or augment:<kind>)"
        )
    return out
