"""`collect` with real workers and a real store (the expert_store fixture runs it)."""

import numpy as np

from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


def test_collect_writes_successful_episodes_in_seed_order(expert_store):
    store = EpisodeStore.open(expert_store)
    assert store.n_episodes == 4
    metas = store.episodes()
    assert [m["seed"] for m in metas] == [0, 1, 2, 3]
    assert all(m["success"] and m["source"] == "expert" and m["task_class"] == 1 for m in metas)
    assert store.keys == ["proprio", "state", "action"]
    ep = store.get_episode(0)
    assert ep["action"].shape == (metas[0]["length"], 10)
    # Demos end with the gripper closed on the handle, after starting open.
    assert ep["action"][0, 9] == 1.0 and ep["action"][-1, 9] == 0.0
    assert store.env_config["tasks"]["classes"] == [1]


def test_replay_of_a_stored_episode_succeeds_again(expert_store):
    from robopolicy.viewer.replay import replay_frames

    store = EpisodeStore.open(expert_store)
    frames, info = replay_frames(store, 1, size=(64, 48))
    assert len(frames) == store.episode_meta(1)["length"] + 1
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert info["success"]


def test_killed_collection_resumes_without_duplicates(tmp_path):
    """Kill `robopolicy collect` mid-run, rerun the same command: it continues to N episodes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "demos.zarr"
    cmd = [sys.executable, "-m", "robopolicy.cli", "collect", f"out={out}", "episodes=6",
           "executor.workers=1", "suite.tasks.classes=[1]", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            try:
                if EpisodeStore.open(out).n_episodes >= 2:
                    break
            except RobopolicyError:  # not created yet, or being created
                pass
            time.sleep(0.2)
        assert proc.poll() is None, "collect finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    partial = EpisodeStore.open(out).n_episodes
    assert 2 <= partial < 6
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "success: 6/6" in r.stdout
    seeds = [m["seed"] for m in EpisodeStore.open(out).episodes()]
    assert sorted(seeds) == list(range(6)) and len(seeds) == 6  # none lost, none twice
    # the same command on a finished store does nothing more
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and EpisodeStore.open(out).n_episodes == 6
    # another suite config on the same store is refused in one line
    r = subprocess.run([*cmd[:-2], "suite.tasks.classes=[3]", cmd[-1]], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "another suite config" in r.stderr and r.stderr.count("\n") == 1
