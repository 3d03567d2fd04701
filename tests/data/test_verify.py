"""Damaged stores on disk: `dataset verify` names the array, chunk and episodes at fault; loading
for training turns a bad chunk or NaN/inf into one line; a healthy store verifies OK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import robopolicy.data.schema as schema_mod
from robopolicy.data import EpisodeStore
from robopolicy.data.verify import verify_store
from robopolicy.errors import RobopolicyError

SHAPE_META = {
    "obs": {
        "proprio": {"shape": [7], "type": "low_dim"},
        "state": {"shape": [13], "type": "low_dim"},
        "depth.wrist": {"shape": [8, 8], "type": "depth"},
    },
    "action": {"shape": [10]},
}
LENGTHS = (20, 30, 25)  # episode_ends 20, 50, 75


def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def store_path(tmp_path, monkeypatch) -> Path:
    """Three episodes in ~1 KiB chunks: `state` (52 B/step) has 19-step chunks, so its chunk 2
    holds steps 38-56 (episodes 1-2)."""
    monkeypatch.setattr(schema_mod, "TARGET_CHUNK_BYTES", 1024)
    path = tmp_path / "demos.zarr"
    store = EpisodeStore.create(path, SHAPE_META)
    rng = np.random.default_rng(0)
    for i, n in enumerate(LENGTHS):
        store.add_episode({"proprio": rng.standard_normal((n, 7)),
                           "state": rng.standard_normal((n, 13)),
                           "depth.wrist": rng.random((n, 8, 8)),
                           "action": rng.standard_normal((n, 10))}, {"seed": i})
    assert zarr.open_array(str(path / "data" / "state")).chunks[0] == 19
    return path


def truncate_chunk(path: Path, key: str, index: int) -> Path:
    chunk = path / "data" / key / "c" / str(index) / "0"
    assert chunk.is_file(), chunk
    with open(chunk, "r+b") as f:
        f.truncate(chunk.stat().st_size // 2)
    return chunk


def test_a_healthy_store_verifies_ok_and_info_says_what_it_checked(store_path):
    from robopolicy.data.schema import META_FIELDS

    report = verify_store(store_path)
    # 4 data arrays, episode_ends and one meta array per episode field
    assert (report.episodes, report.steps, report.arrays, report.tail_steps) == (
        3, 75, 4 + 1 + len(META_FIELDS), 0)
    assert len(META_FIELDS) >= 18
    r = run("dataset", "verify", str(store_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().count("\n") == 0 and r.stdout.startswith(f"OK {store_path}: 3 episodes, 75 steps")
    r = run("dataset", "info", str(store_path))
    assert r.returncode == 0 and "chunks:     not verified" in r.stdout, r.stdout
    r = run("dataset", "info", str(store_path), "--verify")
    assert r.returncode == 0 and "chunks:     all decoded, no NaN/inf" in r.stdout, r.stderr


def test_a_truncated_chunk_is_named_by_verify_and_by_load(store_path):
    truncate_chunk(store_path, "state", 2)
    r = run("dataset", "verify", str(store_path))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"dataset {store_path}: data/state chunk 2 (steps 38-56, episodes 1-2) does not decode" \
        in r.stderr
    # info reads only metadata: it still answers, and says it did not look at the chunks
    r = run("dataset", "info", str(store_path))
    assert r.returncode == 0 and "not verified" in r.stdout
    assert run("dataset", "info", str(store_path), "--verify").returncode == 2

    store = EpisodeStore.open(store_path)
    with pytest.raises(RobopolicyError) as e:
        store.load(["proprio", "state", "action"])
    message = str(e.value)
    assert "\n" not in message and str(store_path) in message
    assert "data/state chunk 2 (steps 38-56, episodes 1-2) does not decode" in message
    assert set(store.load(["proprio", "action"])) == {"proprio", "action"}  # the rest still loads
    with pytest.raises(RobopolicyError, match=r"data/state of episode 1 \(steps 20-49\)"):
        store.get_episode(1)
    np.testing.assert_array_equal(store.get_episode(0, ["state"])["state"].shape, (20, 13))


def test_train_on_a_truncated_store_is_a_one_line_error(store_path, tmp_path):
    truncate_chunk(store_path, "state", 3)
    r = run("train", f"dataset.path={store_path}", "dataset.obs_keys=[proprio,state]",
            "trainer.steps=2", "trainer.device=cpu",
            f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "data/state chunk 3 (steps 57-74, episode 2) does not decode" in lines[0]


def test_nan_in_an_array_names_the_key_and_the_first_episode(store_path):
    zarr.open_array(str(store_path / "data" / "proprio"), mode="r+")[27, 3] = np.nan
    zarr.open_array(str(store_path / "data" / "proprio"), mode="r+")[60, 0] = np.inf
    store = EpisodeStore.open(store_path)
    with pytest.raises(RobopolicyError) as e:
        store.load()
    assert str(e.value) == (f"dataset {store_path}: key 'proprio' holds NaN/inf, first in "
                            "episode 1 (its step 7, store step 27)")
    assert set(store.load(["state", "action"])) == {"state", "action"}
    r = run("dataset", "verify", str(store_path))
    assert r.returncode == 2 and r.stderr.strip() == f"error: {e.value}"


def test_verify_checks_episode_ends_against_metadata_and_arrays(store_path):
    zarr.open_array(str(store_path / "meta" / "episodes" / "length"), mode="r+")[1] = 29
    with pytest.raises(RobopolicyError, match="episode 1: meta/episodes/length=29 but "
                                              "meta/episode_ends gives 30 steps"):
        verify_store(store_path)
    zarr.open_array(str(store_path / "meta" / "episodes" / "length"), mode="r+")[1] = 30
    verify_store(store_path)
    # an episode_ends entry past the data: open() ignores it as uncommitted, verify names it
    ends = zarr.open_array(str(store_path / "meta" / "episode_ends"), mode="r+")
    ends.resize((4,))
    ends[3] = 90
    assert EpisodeStore.open(store_path).n_episodes == 3
    with pytest.raises(RobopolicyError, match="meta/episodes/task_id has 3 entries for 4 episodes"):
        verify_store(store_path)


def test_a_damaged_episode_ends_chunk_is_named(store_path):
    chunk = store_path / "meta" / "episode_ends" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])
    with pytest.raises(RobopolicyError, match=r"meta/episode_ends chunk 0 \(entries 0-2\) does "
                                              "not decode"):
        verify_store(store_path)
