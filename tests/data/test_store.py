"""EpisodeStore: round trips, appends, streaming writer, validation, corrupt stores, crash safety."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import robopolicy.data.schema as schema_mod
from robopolicy.data import EpisodeStore
from robopolicy.data.store import META_FIELDS, chunk_steps
from robopolicy.errors import RobopolicyError

SHAPE_META = {
    "obs": {
        "proprio": {"shape": [7], "type": "low_dim"},
        "rgb.agentview": {"shape": [16, 16, 3], "type": "rgb"},
        "depth.wrist": {"shape": [8, 8], "type": "depth"},
        "part_mask.wrist": {"shape": [8, 8], "type": "mask"},
    },
    "action": {"shape": [10]},
}
KEYS = ["proprio", "rgb.agentview", "depth.wrist", "part_mask.wrist", "action"]
DTYPES = {
    "proprio": np.float32,
    "rgb.agentview": np.uint8,
    "depth.wrist": np.float32,
    "part_mask.wrist": np.bool_,
    "action": np.float32,
}


def make_episode(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "proprio": rng.standard_normal((length, 7)).astype(np.float32),
        "rgb.agentview": rng.integers(0, 256, (length, 16, 16, 3), dtype=np.uint8),
        "depth.wrist": rng.random((length, 8, 8), dtype=np.float32),
        "part_mask.wrist": rng.random((length, 8, 8)) > 0.5,
        "action": rng.standard_normal((length, 10)).astype(np.float32),
    }


def assert_episode_equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == DTYPES[key], key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def raw_lengths(path: Path) -> dict[str, int]:
    group = zarr.open_group(str(path), mode="r")
    return {key: group["data"][key].shape[0] for key in KEYS}


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def small_chunks(monkeypatch):
    """~4 KB chunks so a few hundred steps already span many chunks (rgb: 5 steps/chunk)."""
    monkeypatch.setattr(schema_mod, "TARGET_CHUNK_BYTES", 4096)


def test_chunk_rule():
    assert chunk_steps((128, 128, 3), np.dtype(np.uint8)) == 42  # ~2 MiB
    assert chunk_steps((17,), np.dtype(np.float32)) == 4096  # clamped high
    assert chunk_steps((2048, 2048, 3), np.dtype(np.uint8)) == 1  # clamped low


def test_round_trip(tmp_path):
    path = tmp_path / "demo.zarr"
    env_config = {"backend": "mujoco", "control_hz": 20}
    store = EpisodeStore.create(path, SHAPE_META, env_config)
    episodes = [make_episode(n, seed) for seed, n in enumerate([5, 17, 1])]
    metas = [
        {
            "task_id": "t001",
            "task_class": 3,
            "category": "mug",
            "success": True,
            "source": "expert",
            "instruction": "grasp the mug by its handle ☕",
        },
        {"seed": 42, "split": "val", "source": "augment:texture", "backend": "pybullet"},
        {},
    ]
    for i, (ep, meta) in enumerate(zip(episodes, metas, strict=True)):
        assert store.add_episode(ep, meta) == i

    store = EpisodeStore.open(path)
    assert store.n_episodes == 3 and store.n_steps == 23
    np.testing.assert_array_equal(store.episode_ends, [5, 22, 23])
    np.testing.assert_array_equal(store.episode_lengths, [5, 17, 1])
    assert store.keys == KEYS
    assert store.env_config == env_config
    assert store.shape_meta == SHAPE_META
    for i, ep in enumerate(episodes):
        assert_episode_equal(store.get_episode(i), ep)
        want_meta = (
            {f: d for f, (_, d) in META_FIELDS.items()} | metas[i] | {"length": len(ep["action"])}
        )
        assert store.episode_meta(i) == want_meta
        assert store.episodes()[i] == want_meta
        assert type(store.episode_meta(i)["success"]) is bool
    only = store.get_episode(-1, keys=["rgb.agentview"])
    assert list(only) == ["rgb.agentview"]
    loaded = store.load(["depth.wrist", "action"])
    for key in loaded:
        np.testing.assert_array_equal(loaded[key], np.concatenate([ep[key] for ep in episodes]))

    # On disk: dotted keys are plain array names, chunked along time only, Blosc zstd.
    group = zarr.open_group(str(path), mode="r")
    assert group.attrs["schema_version"] == 1
    assert group["meta/episode_ends"].dtype == np.int64
    rgb = group["data/rgb.agentview"]
    assert (path / "data" / "rgb.agentview" / "zarr.json").is_file()
    assert rgb.chunks == (chunk_steps((16, 16, 3), np.dtype(np.uint8)), 16, 16, 3)
    codecs = rgb.metadata.to_dict()["codecs"]
    assert any(c["name"] == "blosc" and c["configuration"]["cname"] == "zstd" for c in codecs)

    with pytest.raises(IndexError):
        store.get_episode(3)
    with pytest.raises(RobopolicyError, match="nope"):
        store.load(["nope"])


def test_append_after_reopen(tmp_path):
    path = tmp_path / "demo.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    episodes = [make_episode(n, seed) for seed, n in enumerate([4, 9, 6])]
    store.add_episode(episodes[0])
    store.add_episode(episodes[1])

    reader = EpisodeStore.open(path, mode="r")
    with pytest.raises(RobopolicyError, match="read-only"):
        reader.add_episode(episodes[2])

    appender = EpisodeStore.open(path, mode="a")
    assert appender.add_episode(episodes[2], {"seed": 7}) == 2
    store = EpisodeStore.open(path)
    assert store.n_episodes == 3
    np.testing.assert_array_equal(store.episode_ends, [4, 13, 19])
    for i, ep in enumerate(episodes):
        assert_episode_equal(store.get_episode(i), ep)
    assert store.episode_meta(2)["seed"] == 7


def test_store_written_before_later_meta_fields_still_opens(tmp_path):
    """A store without the meta fields added later (init_seed, completion) reads their
    defaults, and gets them when reopened for appending, its episodes intact."""
    from robopolicy.data.store import LATER_META_FIELDS

    path = tmp_path / "old.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    store.add_episode(make_episode(5, 0), {"seed": 3, "completion": 1.0})
    for field in LATER_META_FIELDS:  # as an older version wrote it
        shutil.rmtree(path / "meta" / "episodes" / field)
    old = EpisodeStore.open(path)
    assert old.episode_meta(0)["seed"] == 3 and old.episode_meta(0)["init_seed"] == -1
    assert old.episodes()[0]["completion"] == 0.0
    appender = EpisodeStore.open(path, mode="a")
    appender.add_episode(make_episode(4, 1), {"seed": 4, "init_seed": 9, "completion": 0.5})
    metas = EpisodeStore.open(path).episodes()
    assert [(m["seed"], m["init_seed"], m["completion"]) for m in metas] == [(3, -1, 0.0), (4, 9, 0.5)]
    assert_episode_equal(EpisodeStore.open(path).get_episode(0), make_episode(5, 0))


def test_store_of_an_older_observation_layout(tmp_path):
    """A store written before the layout was recorded (version 1) loads the keys whose meaning
    held, and refuses in one line those that changed (state, pcd)."""
    from robopolicy.training.trainer import policy_shape_meta

    path = tmp_path / "v1.zarr"
    meta = {"obs": {"proprio": {"shape": [17], "type": "low_dim"},
                    "state": {"shape": [20], "type": "low_dim"}}, "action": {"shape": [10]}}
    EpisodeStore.create(path, meta).add_episode(
        {"proprio": np.zeros((3, 17)), "state": np.zeros((3, 20)), "action": np.zeros((3, 10))})
    assert EpisodeStore.open(path).obs_layout["version"] == 2  # a new store: this layout
    group = zarr.open_group(str(path), mode="r+")
    attrs = group.attrs.asdict()
    del attrs["obs_layout"]
    group.attrs.put(attrs)  # as an older version wrote it

    old = EpisodeStore.open(path)
    assert old.obs_layout == {"version": 1}
    assert policy_shape_meta(old, ["proprio"])["obs"] == {"proprio": meta["obs"]["proprio"]}
    with pytest.raises(RobopolicyError) as e:
        policy_shape_meta(old, ["proprio", "state"])
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "['state']" in msg
    assert "robopolicy collect" in msg


def test_empty_store_opens_in_both_modes(tmp_path):
    path = tmp_path / "empty.zarr"
    EpisodeStore.create(path, SHAPE_META)
    reader = EpisodeStore.open(path)
    assert reader.n_episodes == 0 and reader.n_steps == 0 and reader.episodes() == []
    assert reader.load(["action"])["action"].shape == (0, 10)
    store = EpisodeStore.open(path, mode="a")
    assert store.add_episode(make_episode(3, 0)) == 0


def test_streaming_writer_equals_add_episode(tmp_path, small_chunks):
    episodes = [make_episode(n, seed) for seed, n in enumerate([7, 161])]
    meta = {"task_id": "t9", "success": True, "source": "rollout"}
    ref = EpisodeStore.create(tmp_path / "ref.zarr", SHAPE_META)
    for ep in episodes:
        ref.add_episode(ep, meta)

    path = tmp_path / "stream.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    with store.writer() as w:  # one step at a time
        for t in range(7):
            w.append({k: v[t] for k, v in episodes[0].items()})
        assert w.commit(meta) == 0
    with store.writer() as w:  # blocks of uneven sizes, then single steps
        ep = episodes[1]
        for a, b in [(0, 1), (1, 38), (38, 120), (120, 130)]:
            w.extend({k: v[a:b] for k, v in ep.items()})
        for t in range(130, 161):
            w.append({k: v[t] for k, v in ep.items()})
        assert len(w) == 161
        # Long episodes do not stay in RAM: all but the last (partial) chunk is on disk already.
        for key, n in raw_lengths(path).items():
            chunk = store._data[key].chunks[0]
            assert n >= 7 + 161 - chunk, key
        assert raw_lengths(path)["rgb.agentview"] > 7
        assert w.commit(meta) == 1

    store = EpisodeStore.open(path)
    ref = EpisodeStore.open(tmp_path / "ref.zarr")
    np.testing.assert_array_equal(store.episode_ends, ref.episode_ends)
    for i in range(2):
        assert_episode_equal(store.get_episode(i), ref.get_episode(i))
        assert store.episode_meta(i) == ref.episode_meta(i)
    assert_episode_equal(store.get_episode(1), episodes[1])


def test_writer_discard(tmp_path, small_chunks):
    path = tmp_path / "demo.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    store.add_episode(make_episode(3, 0))
    with store.writer() as w:
        w.extend(make_episode(100, 1))
        assert raw_lengths(path)["rgb.agentview"] > 3  # something was flushed
    # leaving the block without commit discards
    assert set(raw_lengths(path).values()) == {3}
    with pytest.raises(ValueError, match="boom"), store.writer() as w:
        w.extend(make_episode(50, 2))
        raise ValueError("boom")
    assert set(raw_lengths(path).values()) == {3}
    w = store.writer()
    with pytest.raises(RobopolicyError, match="another episode writer"):
        store.writer()
    w.discard()
    with pytest.raises(RobopolicyError, match="already committed or discarded"):
        w.append({k: v[0] for k, v in make_episode(1, 3).items()})
    assert EpisodeStore.open(path).n_episodes == 1
    with store.writer() as w, pytest.raises(RobopolicyError, match="empty episode"):
        w.commit()


def test_invalid_episodes_are_rejected(tmp_path):
    path = tmp_path / "demo.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    ep = make_episode(4, 0)
    with pytest.raises(RobopolicyError, match="unknown episode meta field.*'colour'"):
        store.add_episode(ep, {"colour": "red"})
    with pytest.raises(RobopolicyError, match="'success' must be bool"):
        store.add_episode(ep, {"success": "yes"})
    with pytest.raises(RobopolicyError, match="'seed' must be int"):
        store.add_episode(ep, {"seed": 1.5})
    with pytest.raises(RobopolicyError, match="'length'=5"):
        store.add_episode(ep, {"length": 5})
    with pytest.raises(RobopolicyError, match="'source'='human'"):
        store.add_episode(ep, {"source": "human"})
    with pytest.raises(RobopolicyError, match=r"'rgb.agentview' has step shape \(16, 16, 4\)"):
        store.add_episode(ep | {"rgb.agentview": np.zeros((4, 16, 16, 4), np.uint8)})
    with pytest.raises(RobopolicyError, match="'rgb.agentview' has dtype float64"):
        store.add_episode(ep | {"rgb.agentview": np.zeros((4, 16, 16, 3))})
    with pytest.raises(RobopolicyError, match=r"missing \['depth.wrist'\]"):
        store.add_episode({k: v for k, v in ep.items() if k != "depth.wrist"})
    with pytest.raises(RobopolicyError, match="different numbers of steps"):
        store.add_episode(ep | {"action": ep["action"][:3]})
    with store.writer() as w:
        w.extend(ep)
        with pytest.raises(RobopolicyError, match="unknown episode meta field"):
            w.commit({"colour": "red"})
        assert w.commit({"seed": 1}) == 0  # a bad meta leaves the writer open
    with pytest.raises(RobopolicyError, match="unknown type 'pointcloud'"):
        EpisodeStore.create(
            tmp_path / "x.zarr",
            {"obs": {"p": {"shape": [3], "type": "pointcloud"}}, "action": {"shape": [2]}},
        )
    store = EpisodeStore.open(path)
    assert store.n_episodes == 1
    assert set(raw_lengths(path).values()) == {4}  # nothing left behind by the failures


def test_create_refuses_existing_path(tmp_path):
    path = tmp_path / "demo.zarr"
    EpisodeStore.create(path, SHAPE_META).add_episode(make_episode(2, 0))
    with pytest.raises(RobopolicyError, match=f"{path}.*not empty"):
        EpisodeStore.create(path, SHAPE_META)
    assert EpisodeStore.create(path, SHAPE_META, overwrite=True).n_episodes == 0
    assert EpisodeStore.open(path).n_episodes == 0
    plain = tmp_path / "home"
    plain.mkdir()
    (plain / "notes.txt").write_text("keep me")
    with pytest.raises(RobopolicyError, match="refusing to overwrite"):
        EpisodeStore.create(plain, SHAPE_META, overwrite=True)
    assert (plain / "notes.txt").read_text() == "keep me"


def test_open_missing_or_corrupt(tmp_path):
    missing = tmp_path / "missing.zarr"
    with pytest.raises(RobopolicyError, match=f"dataset {missing}: does not exist"):
        EpisodeStore.open(missing)

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("x")
    with pytest.raises(RobopolicyError, match=f"dataset {plain}: not a zarr store"):
        EpisodeStore.open(plain)

    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w")
    with pytest.raises(RobopolicyError, match=f"dataset {other}: missing schema_version"):
        EpisodeStore.open(other)

    path = tmp_path / "demo.zarr"
    EpisodeStore.create(path, SHAPE_META).add_episode(make_episode(2, 0))
    broken = tmp_path / "no_ends.zarr"
    shutil.copytree(path, broken)
    shutil.rmtree(broken / "meta" / "episode_ends")
    for mode in ("r", "a"):
        with pytest.raises(
            RobopolicyError, match=f"dataset {broken}: missing meta/episode_ends"
        ) as info:
            EpisodeStore.open(broken, mode=mode)
        assert "\n" not in str(info.value)

    garbled = tmp_path / "garbled.zarr"
    shutil.copytree(path, garbled)
    (garbled / "zarr.json").write_text("{not json")
    with pytest.raises(RobopolicyError, match=f"dataset {garbled}: ") as info:
        EpisodeStore.open(garbled)
    assert "\n" not in str(info.value)


def test_uncommitted_end_entry_is_a_tail(tmp_path, caplog):
    """A crash between growing episode_ends and writing its value leaves a fill-value entry."""
    path = tmp_path / "demo.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    first = make_episode(3, 0)
    store.add_episode(first)
    group = zarr.open_group(str(path), mode="r+")
    for field in META_FIELDS:
        group[f"meta/episodes/{field}"].resize((2,))
    group["meta/episode_ends"].resize((2,))  # reads back as the fill value 0

    assert EpisodeStore.open(path).n_episodes == 1
    with caplog.at_level(logging.WARNING, logger="robopolicy.data.layout"):
        store = EpisodeStore.open(path, mode="a")
    assert "1 uncommitted episode_ends" in caplog.text
    assert group["meta/episode_ends"].shape == (1,)
    second = make_episode(4, 1)
    assert store.add_episode(second) == 1
    store = EpisodeStore.open(path)
    np.testing.assert_array_equal(store.episode_ends, [3, 7])
    assert_episode_equal(store.get_episode(1), second)


_CRASH_WRITER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[2])
    import robopolicy.data.schema as schema_mod
    schema_mod.TARGET_CHUNK_BYTES = 4096
    from test_store import SHAPE_META, make_episode
    from robopolicy.data import EpisodeStore

    store = EpisodeStore.create(sys.argv[1], SHAPE_META)
    store.add_episode(make_episode(20, 0), {"seed": 0})
    store.add_episode(make_episode(30, 1), {"seed": 1})
    writer = store.writer()
    writer.extend(make_episode(250, 2))  # flushes whole chunks of every key, buffers the rest
    print("flushed", flush=True)
    time.sleep(120)
    """
)


def test_crash_mid_episode_leaves_a_tail_that_open_handles(tmp_path, caplog):
    path = tmp_path / "crash.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "flushed", proc.stderr.read() if proc.poll() is not None else line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # The kill really left an unfinished tail behind in every data array.
    group = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(group["meta/episode_ends"][:], [20, 50])
    lengths = raw_lengths(path)
    assert all(n > 50 for n in lengths.values()), lengths

    before = tree_digest(path)
    reader = EpisodeStore.open(path, mode="r")
    assert reader.n_episodes == 2 and reader.n_steps == 50
    assert_episode_equal(reader.get_episode(0), make_episode(20, 0))
    assert_episode_equal(reader.get_episode(1), make_episode(30, 1))
    assert reader.load(["action"])["action"].shape == (50, 10)
    assert tree_digest(path) == before  # mode "r" wrote nothing
    assert raw_lengths(path) == lengths

    with caplog.at_level(logging.WARNING, logger="robopolicy.data.layout"):
        store = EpisodeStore.open(path, mode="a")
    dropped = max(lengths.values()) - 50
    assert f"dropped an unfinished tail of {dropped} steps" in caplog.text
    assert set(raw_lengths(path).values()) == {50}

    new = make_episode(40, 3)
    assert store.add_episode(new, {"seed": 3}) == 2
    store = EpisodeStore.open(path)
    np.testing.assert_array_equal(store.episode_ends, [20, 50, 90])
    assert set(raw_lengths(path).values()) == {90}
    for i, ep in enumerate([make_episode(20, 0), make_episode(30, 1), new]):
        assert_episode_equal(store.get_episode(i), ep)
    assert [m["seed"] for m in store.episodes()] == [0, 1, 3]
    assert json.loads((path / "zarr.json").read_text())["attributes"]["schema_version"] == 1
