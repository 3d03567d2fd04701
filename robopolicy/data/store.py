"""Episode store: demonstrations, augmented episodes and rollouts in one zarr v3 directory.

Layout (schema version 1)::

    <path>/
      zarr.json                 root attrs: schema_version, env_config, shape_meta, obs_layout
                                (the observation layout, `sims.partmanip.obs_layout`: its
                                version and what each key holds; absent = version 1), and any
                                extra attrs the writer gave (`attrs`, e.g. image_source)
      data/<key>                one array per observation key plus ``action``; all episodes
                                concatenated on axis 0, chunked along time only, Blosc zstd
      meta/episode_ends         int64, cumulative end index of each committed episode
      meta/episodes/<field>     one 1-D array per per-episode metadata field (see META_FIELDS)

Keys may contain dots (``rgb.agentview``); they are plain zarr array names. Demo stores also
hold ``robot_joints``, ``object_pose`` and ``articulation`` per step, whatever the policy's
observation keys, and each episode's structured skill ``chain``. With the episode's
``category`` and ``instance_id`` these three are the scene's whole kinematic state: they are
what posing a Gaussian scene per step needs (:mod:`robopolicy.augment.posing`: robot links by
MuJoCo's forward kinematics of ``robot_joints``, object parts from ``object_pose`` and
``articulation``), and what the ``pose`` augmenter reads its key frames from.

Augmented stores (``source="augment:<kind>"``) say in the ``provenance`` metadata field where
each episode came from (JSON: the source store, episode and copy, and each stage's augmenter
and draw, in order) and in
the root attr ``image_source`` how their images were made (``"simulator"``: re-rendered by the
simulator replaying the episode; ``"gaussians"``: rendered from the posed Gaussian scene;
``"image2d"``: the source's frames cropped and colour-jittered). Recovery episodes
(``source="recovery"``, :mod:`robopolicy.data.recovery`) hold there the evaluation run, episode
and step they start from, and that start's EnvState (``"state"``), so they replay without the
run. An
episode whose images come from another camera than the env's (``augment:camera``) records that
camera in its ``cameras`` metadata field: JSON ``{name: {"pos", "rot", "fovy_deg", "width",
"height"}}`` in :mod:`sims.core.camera`'s convention (world frame; ``rot``'s columns are the
camera's x right, y up, z backwards; focal length ``height / 2 / tan(fovy / 2)`` px, principal
point at the image centre); ``""`` means the env's own cameras.

Crash safety: an episode is written data first, then its metadata, then its entry in
``meta/episode_ends`` (that append is the commit point; zarr's local store writes every file
through a temporary file and a rename). Anything past the last committed end is an unfinished
tail: ``open(mode="r")`` ignores it, ``open(mode="a")`` truncates it.

Modules: :mod:`~robopolicy.data.schema` (dtypes, metadata fields, validation),
:mod:`~robopolicy.data.layout` (the directory on disk), :mod:`~robopolicy.data.writer`
(streaming, crash-safe appends), :mod:`~robopolicy.data.verify` (decoding every chunk).

Concurrency: one writer at a time, across processes too (nothing locks; the caller makes sure).
Readers opened with ``mode="r"`` see the episodes committed when they opened the store.
"""


from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from robopolicy.data.chunks import check_finite, read_rows
from robopolicy.data.layout import add_later_fields, check_layout, create_layout, truncate_tail
from robopolicy.data.schema import (
    ACTION_DTYPE,  # noqa: F401  (re-exported)
    LATER_META_FIELDS,  # noqa: F401  (re-exported)
    META_FIELDS,
    OBS_TYPE_DTYPES,  # noqa: F401  (re-exported)
    SCHEMA_VERSION,
    chunk_steps,  # noqa: F401  (re-exported)
    normalize_meta,
    normalize_shape_meta,
    one_line,
    parse_shape_meta,
)
from robopolicy.data.writer import EpisodeWriter
from robopolicy.errors import RobopolicyError

__all__ = ["EpisodeStore", "EpisodeWriter", "META_FIELDS", "LATER_META_FIELDS", "SCHEMA_VERSION",
           "OBS_TYPE_DTYPES", "ACTION_DTYPE", "chunk_steps"]


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
        # stores written before the layout was recorded hold version 1
        self.obs_layout: dict = attrs.get("obs_layout") or {"version": 1}
        self.attrs: dict = attrs  # every root attr (the above and any extra ones)
        self._specs = parse_shape_meta(self.shape_meta, f"dataset {path}")
        self.keys: list[str] = list(self._specs)
        self._data = {key: group["data"][key] for key in self.keys}
        # observation keys computed from recorded ones (`sims.partmanip.obs_layout.derive`)
        self.derived: dict[str, tuple[str, ...]] = _derivable(self.keys)
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
        obs_layout: dict | None = None,
        attrs: dict | None = None,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` and return it opened in mode ``"a"``.

        Data keys are ``shape_meta["obs"]`` keys plus ``"action"``; dtypes follow the obs type:
        rgb -> uint8, depth/low_dim/pcd -> float32, mask -> bool; action -> float32.
        An existing non-empty ``path`` is an error unless ``overwrite`` (which only replaces
        an existing zarr store, never an arbitrary directory). ``obs_layout``: what the
        observation keys hold (`sims.partmanip.obs_layout.obs_layout`); default: this
        version's layout of the shape_meta's keys. ``attrs``: extra JSON-able root attrs (they
        cannot replace the store's own).
        """
        from sims.partmanip.obs_layout import layout_of_keys

        path = Path(path)
        where = f"dataset {path}"
        specs = parse_shape_meta(shape_meta, where)
        env_config = dict(env_config or {})
        try:
            json.dumps(env_config)
            json.dumps(shape_meta)
            json.dumps(attrs or {})
        except (TypeError, ValueError) as e:
            raise RobopolicyError(
                f"{where}: env_config/shape_meta/attrs must be JSON-serializable ({one_line(e)})"
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
        base = {
            "schema_version": SCHEMA_VERSION,
            "env_config": env_config,
            "shape_meta": normalize_shape_meta(shape_meta),
            "obs_layout": obs_layout or layout_of_keys(shape_meta["obs"]),
        }
        clash = sorted(set(attrs or {}) & set(base))
        if clash:
            raise RobopolicyError(f"{where}: attrs {clash} are the store's own")
        base.update(attrs or {})
        group = create_layout(path, specs, base)
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
            raise RobopolicyError(f"{where}: not a zarr store ({one_line(e)})") from e
        try:
            ends, n_committed = check_layout(group, where)
        except RobopolicyError:
            raise
        except Exception as e:
            raise RobopolicyError(f"{where}: corrupt store ({one_line(e)})") from e
        if mode == "a":
            truncate_tail(group, ends, n_committed, where)
            add_later_fields(group, n_committed)
        return cls(path, group, mode, ends[:n_committed])

    def check_obs_layout(self, keys: list[str]) -> None:
        """Refuse, in one line, observation keys whose meaning changed since the store's layout
        was written (a store of an older layout must be collected again)."""
        from sims.partmanip.obs_layout import stale_keys

        stale = stale_keys(self.obs_layout, _with_inputs(keys, self.derived))
        if stale:
            raise RobopolicyError(
                f"dataset {self.path}: holds observation layout {self.obs_layout.get('version')} "
                f"where {stale} meant something else; collect it again with `robopolicy collect` "
                "(this version's layout splits task-level state/pcd from skill_state/skill_pcd)")

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
        normalize_meta(meta, lengths.pop() if len(lengths) == 1 else None, f"dataset {self.path}")
        with self.writer() as w:
            w.extend(data)
            return w.commit(meta)

    def _check_writable(self) -> None:
        if self.mode != "a":
            raise RobopolicyError(
                f"dataset {self.path}: opened read-only (use EpisodeStore.open(path, mode='a'))"
            )

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
        unknown = [k for k in keys if k not in self._specs and k not in self.derived]
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
        where = f"dataset {self.path}"
        out = {}
        for k in _with_inputs(keys, self.derived):
            try:
                out[k] = self._data[k][start:end]
            except Exception as e:  # a damaged chunk: name it rather than raise from zarr
                raise RobopolicyError(f"{where}: data/{k} of episode {i} (steps {start}-{end - 1}) "
                                      f"does not decode ({one_line(e)}); `robopolicy dataset "
                                      f"verify {self.path}` checks every chunk") from None
        return _derive(out, keys, self.derived)

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
        """All committed steps of ``keys`` (default: all) in RAM, each ``(n_steps, *shape)``.

        A chunk that does not decode, or NaN/inf in a float array, is a one-line
        RobopolicyError naming the store, the array and the episodes at fault.
        """
        keys = self._check_keys(keys)
        n = self.n_steps
        where = f"dataset {self.path}"
        out = {}
        for k in _with_inputs(keys, self.derived):
            out[k] = read_rows(self._data[k], n, where, f"data/{k}", self._ends)
            check_finite(out[k], where, k, self._ends)
        return _derive(out, keys, self.derived)

    @property
    def obs_shape_meta(self) -> dict:
        """The observation entries of `shape_meta`, plus the derived keys this store serves."""
        from sims.partmanip.obs_layout import DERIVED_KEYS

        return {**self.shape_meta["obs"],
                **{k: {"shape": [DERIVED_KEYS[k][1]], "type": "low_dim"} for k in self.derived}}


def _derivable(keys: list[str]) -> dict[str, tuple[str, ...]]:
    """Derived observation keys whose inputs are all among `keys` (and that are not recorded)."""
    from sims.partmanip.obs_layout import DERIVED_KEYS

    return {k: inputs for k, (inputs, _) in DERIVED_KEYS.items()
            if k not in keys and all(i in keys for i in inputs)}


def _with_inputs(keys: list[str], derived: dict[str, tuple[str, ...]]) -> list[str]:
    """`keys` with each derived key replaced by the recorded keys it is computed from."""
    out: list[str] = []
    for k in keys:
        for r in derived.get(k, (k,)):
            if r not in out:
                out.append(r)
    return out


def _derive(arrays: dict, keys: list[str], derived: dict[str, tuple[str, ...]]) -> dict:
    """{key: array} for `keys`, computing the derived ones from the recorded `arrays`."""
    if not any(k in derived for k in keys):
        return arrays
    from sims.partmanip.obs_layout import derive

    return {k: derive(k, arrays) if k in derived else arrays[k] for k in keys}
