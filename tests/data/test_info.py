"""`robopolicy dataset info` on a real store."""

import json
import subprocess
import sys

from robopolicy.data.info import dataset_info, format_info
from robopolicy.data.store import EpisodeStore


def test_info_counts_what_the_store_holds(expert_store):
    info = dataset_info(expert_store)
    store = EpisodeStore.open(expert_store)
    assert info["episodes"] == store.n_episodes == 4
    assert info["steps"] == store.n_steps == int(store.episode_lengths.sum())
    assert info["successes"] == 4 and info["success_rate"] == 1.0
    assert info["classes"] == {"1": 4} and info["categories"] == {"mug": 4}
    assert info["keys"]["action"]["shape"] == [10] and "proprio" in info["keys"]
    assert info["disk_bytes"] > 0
    text = format_info(info)
    assert "episodes:   4" in text and "mug: 4" in text


def test_dataset_info_cli(expert_store, tmp_path):
    run = [sys.executable, "-m", "robopolicy.cli", "dataset", "info"]
    r = subprocess.run([*run, str(expert_store), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == 4
    r = subprocess.run([*run, str(tmp_path / "nope.zarr")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
