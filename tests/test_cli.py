"""The `robopolicy` console script as a user runs it (real subprocesses)."""

import subprocess
import sys

import pytest


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_the_verbs():
    r = run("--help")
    assert r.returncode == 0
    for verb in ("collect", "train", "eval", "view", "quickstart"):
        assert f"\n  {verb}" in r.stdout


def test_verb_help_shows_its_config():
    r = run("train", "--help")
    assert r.returncode == 0
    assert "robopolicy train:" in r.stdout and "dataset:" in r.stdout and "down_dims" in r.stdout


def test_unknown_verb_and_unknown_key_fail():
    r = run("fly")
    assert r.returncode == 2 and "unknown verb" in r.stderr
    r = run("train", "dataset.path=x.zarr", "trainer.stepz=5")
    assert r.returncode != 0 and "stepz" in r.stderr


@pytest.mark.parametrize("make_bad", ["missing", "corrupt"])
def test_bad_store_path_is_a_one_line_error(tmp_path, make_bad):
    path = tmp_path / "demos.zarr"
    if make_bad == "corrupt":
        path.mkdir()
        (path / "zarr.json").write_text("{ not json")
    r = run("view", f"path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dataset") and str(path) in lines[0]


def test_view_writes_an_mp4_of_the_episode(expert_store, tmp_path):
    import imageio.v3 as iio

    from robopolicy.data.store import EpisodeStore

    out = tmp_path / "ep.mp4"
    r = run("view", f"path={expert_store}", "episode=2", f"video={out}", "size=[64,64]",
            f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    frames = iio.imread(out, plugin="pyav") if False else iio.imread(out)
    assert frames.shape[0] == EpisodeStore.open(expert_store).episode_meta(2)["length"] + 1
    assert frames.shape[1:] == (64, 64, 3)
