"""SequenceSampler windows and padding, split_episodes."""

from __future__ import annotations

import numpy as np
import pytest

from robopolicy.data import EpisodeStore, SequenceSampler, split_episodes
from robopolicy.errors import RobopolicyError


def make_data(lengths: list[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every frame holds its global step index, so a sample shows which steps it came from."""
    n = sum(lengths)
    t = np.arange(n)
    data = {
        "x": t.astype(np.float32)[:, None],
        "img": np.broadcast_to(t[:, None, None], (n, 2, 3)).astype(np.int64),
        "action": np.stack([t, -t], axis=1).astype(np.float32),
    }
    return data, np.cumsum(lengths)


def reference_windows(lengths, horizon, pad_before, pad_after, episodes=None):
    """Plain-Python enumeration of the windows' global step indices."""
    out = []
    start = 0
    for e, length in enumerate(lengths):
        if episodes is None or e in episodes:
            last = max(length - horizon + pad_after, -pad_before)
            for s in range(-pad_before, last + 1):
                out.append([start + min(max(s + k, 0), length - 1) for k in range(horizon)])
        start += length
    return out


@pytest.mark.parametrize(
    ("horizon", "n_obs", "pad_before", "pad_after", "expected"),
    [
        (4, 2, None, None, 3 + 8 + 1),  # L - horizon + 1 + pad_before(=1) windows per episode
        (4, 2, 1, 3, 6 + 11 + 4),  # L + 1 with pad_after = n_action_steps - 1 = 3
        (1, 1, None, None, 5 + 10 + 3),  # one window per step
    ],
)
def test_window_count(horizon, n_obs, pad_before, pad_after, expected):
    lengths = [5, 10, 3]
    data, ends = make_data(lengths)
    sampler = SequenceSampler(
        data, ends, horizon, n_obs, ["x"], pad_before=pad_before, pad_after=pad_after
    )
    assert len(sampler) == expected
    pb = n_obs - 1 if pad_before is None else pad_before
    pa = 0 if pad_after is None else pad_after
    assert len(reference_windows(lengths, horizon, pb, pa)) == expected


def test_windows_match_reference_and_obs_action_align():
    lengths = [5, 10, 3, 1]
    data, ends = make_data(lengths)
    horizon, n_obs, pb, pa = 6, 3, 2, 4
    sampler = SequenceSampler(data, ends, horizon, n_obs, ["x", "img"], pad_before=pb, pad_after=pa)
    ref = reference_windows(lengths, horizon, pb, pa)
    assert len(sampler) == len(ref)
    for i, idx in enumerate(ref):
        sample = sampler[i]
        assert sample["action"].shape == (horizon, 2) and sample["action"].dtype == np.float32
        assert sample["obs"]["x"].shape == (n_obs, 1)
        assert (
            sample["obs"]["img"].shape == (n_obs, 2, 3) and sample["obs"]["img"].dtype == np.int64
        )
        np.testing.assert_array_equal(sample["action"][:, 0], idx)
        np.testing.assert_array_equal(sample["action"][:, 1], -np.asarray(idx))
        # obs are the window's first n_obs frames, aligned with its first actions
        np.testing.assert_array_equal(sample["obs"]["x"][:, 0], sample["action"][:n_obs, 0])
        np.testing.assert_array_equal(sample["obs"]["img"][:, 0, 0], idx[:n_obs])
    np.testing.assert_array_equal(sampler[-1]["action"], sampler[len(sampler) - 1]["action"])
    with pytest.raises(IndexError):
        sampler[len(sampler)]


def test_padding_repeats_edge_frames():
    data, ends = make_data([5, 10])  # episode 1 covers global steps 5..14
    sampler = SequenceSampler(data, ends, horizon=4, n_obs_steps=2, obs_keys=["x"], pad_after=2)
    windows = [sampler[i] for i in range(len(sampler))]
    ep1 = [w for w in windows if w["action"][:, 0].min() >= 5]
    first, last = ep1[0], ep1[-1]
    np.testing.assert_array_equal(first["obs"]["x"][:, 0], [5, 5])  # starts one step early
    np.testing.assert_array_equal(first["action"][:, 0], [5, 5, 6, 7])
    np.testing.assert_array_equal(last["obs"]["x"][:, 0], [13, 14])  # runs 2 steps past the end
    np.testing.assert_array_equal(last["action"][:, 0], [13, 14, 14, 14])
    # no window mixes episodes
    for w in windows:
        steps = w["action"][:, 0]
        assert (steps < 5).all() or (steps >= 5).all()


def test_episode_indices_restrict_windows():
    lengths = [5, 10, 3]
    data, ends = make_data(lengths)
    sampler = SequenceSampler(
        data, ends, 4, 2, ["x"], pad_after=3, episode_indices=np.array([2, 0])
    )
    ref = reference_windows(lengths, 4, 1, 3, episodes={0, 2})
    assert len(sampler) == len(ref) == 6 + 4
    steps = np.concatenate([sampler[i]["action"][:, 0] for i in range(len(sampler))])
    assert set(steps.tolist()) == set(range(0, 5)) | set(range(15, 18))
    with pytest.raises(RobopolicyError, match=r"episode_indices \[3\] out of range"):
        SequenceSampler(data, ends, 4, 2, ["x"], episode_indices=np.array([3]))


def test_short_episodes_still_yield_padded_windows():
    data, ends = make_data([2, 1])
    sampler = SequenceSampler(data, ends, horizon=8, n_obs_steps=2, obs_keys=["x"])
    assert len(sampler) == 2
    np.testing.assert_array_equal(sampler[0]["obs"]["x"][:, 0], [0, 0])
    np.testing.assert_array_equal(sampler[0]["action"][:, 0], [0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(sampler[1]["action"][:, 0], [2] * 8)
    padded = SequenceSampler(data, ends, horizon=8, n_obs_steps=2, obs_keys=["x"], pad_after=7)
    assert len(padded) == 3 + 2  # s in [-1, L - 8 + 7]
    np.testing.assert_array_equal(padded[2]["action"][:, 0], [1] * 8)


def test_invalid_arguments():
    data, ends = make_data([5])
    with pytest.raises(RobopolicyError, match="n_obs_steps"):
        SequenceSampler(data, ends, horizon=2, n_obs_steps=3, obs_keys=["x"])
    with pytest.raises(RobopolicyError, match=r"\['rgb'\] not in data"):
        SequenceSampler(data, ends, horizon=2, n_obs_steps=1, obs_keys=["rgb"])
    with pytest.raises(RobopolicyError, match="pad_after"):
        SequenceSampler(data, ends, horizon=2, n_obs_steps=1, obs_keys=["x"], pad_after=2)
    with pytest.raises(RobopolicyError, match="fewer than episode_ends"):
        SequenceSampler(data, np.array([6]), horizon=2, n_obs_steps=1, obs_keys=["x"])


def test_from_store_matches_in_memory(tmp_path):
    shape_meta = {"obs": {"proprio": {"shape": [3], "type": "low_dim"}}, "action": {"shape": [2]}}
    store = EpisodeStore.create(tmp_path / "s.zarr", shape_meta)
    rng = np.random.default_rng(0)
    episodes = [{"proprio": rng.random((n, 3)), "action": rng.random((n, 2))} for n in (6, 2, 9)]
    for ep in episodes:
        store.add_episode(ep)
    store = EpisodeStore.open(tmp_path / "s.zarr")
    sampler = SequenceSampler.from_store(
        store, 4, 2, ["proprio"], pad_after=1, episode_indices=np.array([0, 2])
    )
    data = {
        k: np.concatenate([ep[k] for ep in episodes]).astype(np.float32)
        for k in ("proprio", "action")
    }
    ref = SequenceSampler(
        data, np.cumsum([6, 2, 9]), 4, 2, ["proprio"], pad_after=1, episode_indices=np.array([0, 2])
    )
    assert len(sampler) == len(ref) == (6 - 4 + 1 + 1 + 1) + (9 - 4 + 1 + 1 + 1)
    for i in range(len(ref)):
        np.testing.assert_array_equal(sampler[i]["obs"]["proprio"], ref[i]["obs"]["proprio"])
        np.testing.assert_array_equal(sampler[i]["action"], ref[i]["action"])


def test_split_episodes():
    train, val = split_episodes(20, 0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(20))
    again = split_episodes(20, 0.25, seed=1)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(split_episodes(20, 0.25, seed=2)[1], val)
    assert train.dtype == np.int64 and (np.diff(train) > 0).all()

    train, val = split_episodes(7, 0.0, seed=0)
    assert val.size == 0 and train.tolist() == list(range(7))
    train, val = split_episodes(1, 0.5, seed=0)
    assert train.tolist() == [0] and val.size == 0
    train, val = split_episodes(3, 0.99, seed=0)
    assert len(train) == 1 and len(val) == 2
    train, val = split_episodes(10, 0.01, seed=0)
    assert len(val) == 1
    assert split_episodes(0, 0.5, seed=0)[0].size == 0
    with pytest.raises(RobopolicyError, match="val_ratio"):
        split_episodes(10, 1.5, seed=0)


def test_episode_text_labels_each_window_with_its_episode_string():
    data, ends = make_data([5, 3, 4])
    sampler = SequenceSampler(data, ends, horizon=4, n_obs_steps=2, obs_keys=["x"],
                              episode_indices=np.array([0, 2]), episode_text=["a", "b", "c"])
    batch = sampler.sample_batch(np.arange(len(sampler)))
    first_step = batch["action"][:, 1, 0]  # the window's step at the last observed frame
    assert batch["text"] == ["a" if t < 5 else "c" for t in first_step]
    assert sampler[len(sampler) - 1]["text"] == "c"
    assert "text" not in SequenceSampler(data, ends, 4, 2, ["x"]).sample_batch(np.arange(2))
    with pytest.raises(RobopolicyError, match="2 strings for 3 episodes"):
        SequenceSampler(data, ends, 4, 2, ["x"], episode_text=["a", "b"])
