"""Skill-conditioned windows: each window's skill, instruction and done label from a real store's
recorded skill boundaries, the lagged done windows, the skill vector, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robopolicy.data import EpisodeStore, SequenceSampler
from robopolicy.data.skills import SKILL_PARAMS_DIM, chain_from_meta, encode_skill, skill_chains
from robopolicy.errors import RobopolicyError

SHAPE_META = {"obs": {"x": {"shape": [1], "type": "low_dim"}}, "action": {"shape": [2]}}


def write_skill_store(path, episodes: list[dict]) -> EpisodeStore:
    """A store of episodes {"x": (T,) values, "starts": [...], "instructions": [...]}; action =
    (global step, -global step), so a sample shows which steps it holds."""
    store = EpisodeStore.create(path, SHAPE_META)
    step = 0
    for ep in episodes:
        x = np.asarray(ep["x"], np.float32)
        t = np.arange(step, step + len(x), dtype=np.float32)
        store.add_episode({"x": x[:, None], "action": np.stack([t, -t], 1)},
                          {"instruction": ep.get("instruction", "do the task"),
                           "skill_starts": json.dumps(ep["starts"]),
                           "skill_instructions": json.dumps(ep["instructions"])})
        step += len(x)
    return EpisodeStore.open(path)


EPISODES = [
    {"x": np.arange(10), "starts": [0, 4, 7], "instructions": ["a0", "a1", "a2"]},
    # the second skill was never begun (a failed episode)
    {"x": np.arange(6), "starts": [0], "instructions": ["b0", "b1"]},
]
H, TO, PB, PA, LAG = 4, 2, 1, 2, 2


def reference(lengths, starts, instructions, lag):
    """Plain-Python windows: (global first step, skill index, instruction, done, weight)."""
    rows, late, offset = [], [], 0
    for length, st, ins in zip(lengths, starts, instructions, strict=True):
        goal = [*st[1:], length]
        for s in range(-PB, max(length - H + PA, -PB) + 1):
            t0, t1 = min(max(s, 0), length - 1), min(max(s + TO - 1, 0), length - 1)
            k = sum(t0 >= b for b in st[1:])
            rows.append((offset + t0, k, ins[k], float(t1 >= goal[k]), 1.0))
            if k >= 1 and t0 - st[k] < lag:
                late.append((offset + t0, k - 1, ins[k - 1], 1.0, 0.0))
        offset += length
    return rows + late


@pytest.fixture
def store(tmp_path):
    return write_skill_store(tmp_path / "skills.zarr", EPISODES)


def sampler(store, lag=LAG, episodes=None):
    return SequenceSampler(store.load(["x", "action"]), store.episode_ends, H, TO, ["x"],
                           pad_before=PB, pad_after=PA, episode_indices=episodes,
                           skills=skill_chains(store), done_lag_steps=lag)


@pytest.mark.parametrize("lag", [0, LAG])
def test_windows_carry_their_first_steps_skill_and_done_label(store, lag):
    s = sampler(store, lag)
    ref = reference([10, 6], [e["starts"] for e in EPISODES], [e["instructions"] for e in EPISODES], lag)
    assert len(s) == len(ref)
    batch = s.sample_batch(np.arange(len(s)))
    for i, (first, k, text, done, weight) in enumerate(ref):
        sample = s[i]
        assert sample["action"][0, 0] == first  # the window's first (observed) step
        assert (sample["text"], int(sample["skill_index"]), float(sample["done"]),
                float(sample["action_weight"])) == (text, k, done, weight), i
        assert (batch["text"][i], batch["skill_index"][i], batch["done"][i],
                batch["action_weight"][i]) == (text, k, done, weight)
    assert batch["skill_index"].dtype == np.int64 and batch["done"].dtype == np.float32
    assert "skill_params" not in batch  # the store has no structured chain


def test_done_flips_exactly_at_the_recorded_boundaries(store):
    """Episode 0's skill 1 starts at step 4 (obs 4 is the first in which skill 0's goal holds)."""
    s = sampler(store)
    by_first = {}
    for i in range(len(s)):
        x = s[i]
        first = int(x["action"][0, 0])
        by_first.setdefault(first, []).append((x["text"], float(x["done"]), float(x["action_weight"])))
    # windows starting at step -1 (padded) and 0: skill 0, obs steps (0, 0) and (0, 1)
    assert by_first[0] == [("a0", 0.0, 1.0)] * 2
    assert by_first[2] == [("a0", 0.0, 1.0)]                         # obs 2, 3: goal not yet
    assert by_first[3] == [("a0", 1.0, 1.0)]                         # obs 3, 4: goal holds at 4
    assert by_first[4] == [("a1", 0.0, 1.0), ("a0", 1.0, 0.0)]       # new skill + lagged window
    assert by_first[5] == [("a1", 0.0, 1.0), ("a0", 1.0, 0.0)]
    assert by_first[6] == [("a1", 1.0, 1.0)]                         # obs 6, 7: skill 2 starts at 7
    assert by_first[7] == [("a2", 0.0, 1.0), ("a1", 1.0, 0.0)]
    assert by_first[8] == [("a2", 0.0, 1.0), ("a1", 1.0, 0.0)]       # last skill: never done
    # episode 1 never began its second skill: every window is b0, not done
    assert {w for f, v in by_first.items() if f >= 10 for w in v} == {("b0", 0.0, 1.0)}


def test_episode_indices_select_windows(store):
    s = sampler(store, episodes=np.array([1]))
    assert {s[i]["text"] for i in range(len(s))} == {"b0"}


def test_structured_chain_gives_the_skill_vector():
    np.testing.assert_array_equal(encode_skill("grasp", {"part": "handle"}),
                                  np.eye(SKILL_PARAMS_DIM, dtype=np.float32)[0])
    move_top = encode_skill("move", {"direction": "top"})
    assert move_top.shape == (SKILL_PARAMS_DIM,) and np.flatnonzero(move_top).tolist() == [2, 5 + 4]
    meta = {"length": 6, "skill_starts": "[0, 3]", "skill_instructions": '["g", "m"]',
            "chain": json.dumps([{"skill": "grasp", "params": {"part": "handle"}},
                                       {"skill": "move", "params": {"direction": "top"}}])}
    chain = chain_from_meta(meta, "episode 0")
    data = {"x": np.zeros((6, 1), np.float32), "action": np.zeros((6, 2), np.float32)}
    s = SequenceSampler(data, np.array([6]), H, TO, ["x"], pad_before=PB, pad_after=PA,
                        skills=[chain])
    batch = s.sample_batch(np.arange(len(s)))
    assert batch["skill_params"].shape == (len(s), SKILL_PARAMS_DIM)
    np.testing.assert_array_equal(batch["skill_params"], chain.params[batch["skill_index"]])

    # next_skill: each window also carries the next skill's vector; the last skill's is zeros
    s = SequenceSampler(data, np.array([6]), H, TO, ["x"], pad_before=PB, pad_after=PA,
                        skills=[chain], next_skill=True)
    batch = s.sample_batch(np.arange(len(s)))
    first = batch["skill_index"] == 0
    assert first.any() and (~first).any()
    np.testing.assert_array_equal(batch["skill_params"][first],
                                  np.tile(np.concatenate([chain.params[0], move_top]), (first.sum(), 1)))
    np.testing.assert_array_equal(batch["skill_params"][~first],
                                  np.tile(np.concatenate([move_top, np.zeros(SKILL_PARAMS_DIM)]),
                                          ((~first).sum(), 1)))


@pytest.mark.parametrize(("meta", "match"), [
    ({"length": 5, "skill_starts": "", "skill_instructions": ""}, "no skill_starts"),
    ({"length": 5, "skill_starts": "[0, 9]", "skill_instructions": '["a", "b"]'}, "do not fit"),
    ({"length": 5, "skill_starts": "[0]", "skill_instructions": '["a"]',
      "chain": '[{"skill": "fly"}]'}, "skill 'fly' is not one of"),
    ({"length": 5, "skill_starts": "[0]", "skill_instructions": '["a"]',
      "chain": '[{"skill": "move", "params": {"direction": "up"}}]'}, "direction 'up'"),
])
def test_bad_skill_metadata_is_a_one_line_error(meta, match):
    with pytest.raises(RobopolicyError, match=match) as e:
        chain_from_meta(meta, "dataset d.zarr: episode 3")
    assert "\n" not in str(e.value)


def test_next_skill_needs_structured_chains(store):
    with pytest.raises(RobopolicyError, match="next_skill needs every episode's structured chain"):
        SequenceSampler(store.load(["x", "action"]), store.episode_ends, H, TO, ["x"],
                        skills=skill_chains(store), next_skill=True)


def test_a_store_without_skills_cannot_be_skill_conditioned(tmp_path):
    store = EpisodeStore.create(tmp_path / "old.zarr", SHAPE_META)
    store.add_episode({"x": np.zeros((4, 1), np.float32), "action": np.zeros((4, 2), np.float32)})
    with pytest.raises(RobopolicyError, match=r"old.zarr: episode 0: no skill_starts"):
        skill_chains(EpisodeStore.open(tmp_path / "old.zarr"))


def test_hold_keys_keep_the_conditioning_skills_fields(store):
    """Windows past their skill's end show the held key at the skill's last step (episode 0:
    skill 0 ends at step 3), other keys as recorded."""
    data = store.load(["x", "action"]) | {"goal": store.load(["x"])["x"] * 10}
    s = SequenceSampler(data, store.episode_ends, H, TO, ["x", "goal"], pad_before=PB,
                        pad_after=PA, skills=skill_chains(store), done_lag_steps=LAG,
                        hold_keys=["goal"])
    batch = s.sample_batch(np.arange(len(s)))
    for i in range(len(s)):
        sample, first = s[i], int(s[i]["action"][0, 0])
        np.testing.assert_array_equal(sample["obs"]["goal"], batch["obs"]["goal"][i])
        if first >= 10:
            continue
        last = {"a0": 3, "a1": 6, "a2": 9}[sample["text"]]
        x = sample["obs"]["x"][:, 0]
        np.testing.assert_array_equal(sample["obs"]["goal"][:, 0], np.minimum(x, last) * 10)
    # e.g. the lagged window at steps 4, 5 conditioned on skill 0 sees goal 30, 30 and x 4, 5
    lagged = [i for i in range(len(s)) if s[i]["text"] == "a0" and s[i]["action"][0, 0] == 4]
    assert len(lagged) == 1
    assert s[lagged[0]]["obs"]["goal"][:, 0].tolist() == [30, 30]
    with pytest.raises(RobopolicyError, match="hold_keys"):
        SequenceSampler(data, store.episode_ends, H, TO, ["x"], hold_keys=["goal"],
                        skills=skill_chains(store))


def test_collected_store_gives_each_skill_its_parameters(expert_store):
    """The collector's per-episode `chain` reaches the skill-parameter vectors."""
    from robopolicy.data.skills import encode_skill, skill_chains
    from robopolicy.data.store import EpisodeStore

    chains = skill_chains(EpisodeStore.open(expert_store))
    assert chains and all(c.params is not None for c in chains)
    np.testing.assert_array_equal(chains[0].params[0], encode_skill("grasp", {"part": "handle"}))


def test_generic_skill_text_drops_the_category_name(expert_store):
    """skill_text "generic" rebuilds each skill's text from the chain with the object named
    "object": the part stays, the category ("mug") goes."""
    store = EpisodeStore.open(expert_store)
    recorded, generic = skill_chains(store), skill_chains(store, "generic")
    assert recorded[0].instructions[0] == "Grasp the mug by its handle."
    assert generic[0].instructions[0] == "Grasp the object by its handle."
    assert all("mug" not in s for c in generic for s in c.instructions)
    assert [len(c.instructions) for c in generic] == [len(c.instructions) for c in recorded]


def test_generic_skill_text_needs_the_structured_chain(store):
    with pytest.raises(RobopolicyError, match=r"skills.zarr: episode 0: skill_text: generic .*"
                                              "structured chain") as e:
        skill_chains(store, "generic")
    assert "\n" not in str(e.value)
    with pytest.raises(RobopolicyError, match="skill_text 'plain' is not one of instruction, generic"):
        skill_chains(store, "plain")
