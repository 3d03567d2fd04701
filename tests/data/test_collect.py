"""`collect` with real workers and a real store (the expert_store fixture runs it)."""

import numpy as np

from robopolicy.data.store import EpisodeStore


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
