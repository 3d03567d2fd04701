"""Finding an episode in a dataset store or an eval run folder (no simulator needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.viewer.sources import load_episode
from tests.viewer.conftest import HORIZON, OFFSET, write_eval_run

TASK = {"task_id": "c01-mug-handle", "task_class": 1, "category": "mug", "instance_id": 0,
        "init_seed": 7, "instruction": "Hold the mug at its handle.",
        "chain": [{"skill": "grasp", "params": {"part": "handle"}}],
        "skill_instructions": ["Grasp the mug by its handle."]}
ENV = {"obs_keys": ["proprio"]}


def _run(tmp_path, **kw):
    return write_eval_run(tmp_path / "run", ENV, TASK, np.zeros((20, 10), np.float32), **kw)


def test_eval_run_episode_by_its_record_number(tmp_path):
    _run(tmp_path, episode=3)
    _run(tmp_path, episode=5, with_chunks=False)
    with open(tmp_path / "run" / "test1" / "episodes.jsonl", "a") as f:
        f.write('{"episode": 9, "tas')  # a torn last line (a write cut short) is skipped
    ep = load_episode(tmp_path / "run", 3)  # the run root: its only split is found
    assert ep.source == "eval" and ep.index == 3 and ep.steps == 20
    assert ep.env_config == ENV and ep.task["task_id"] == TASK["task_id"]
    assert ep.pred_chunk.shape == (20, HORIZON, 10) and ep.pred_step[9] == 8
    assert ep.pred_offset == OFFSET
    assert ep.meta["seed"] == 7 and "task" not in ep.meta
    ep = load_episode(tmp_path / "run" / "test1", 5)  # the split folder itself
    assert ep.pred_chunk is None and ep.pred_step is None and ep.pred_offset == 0
    with pytest.raises(RobopolicyError, match=r"eval run .*test1: no episode 9 \(2 finished"):
        load_episode(tmp_path / "run", 9)


def test_eval_run_with_several_splits_needs_split(tmp_path):
    _run(tmp_path, split="test1")
    _run(tmp_path, split="test2", episode=0)
    with pytest.raises(RobopolicyError, match="has splits test1, test2; pick one with split="):
        load_episode(tmp_path / "run", 3)
    assert load_episode(tmp_path / "run", 0, split="test2").meta["split"] == "test2"
    with pytest.raises(RobopolicyError, match="no split 'test9'"):
        load_episode(tmp_path / "run", 0, split="test9")


def test_broken_eval_runs_name_what_is_missing(tmp_path):
    rec = _run(tmp_path)
    (tmp_path / "run" / "test1" / rec["rollout"]).unlink()
    with pytest.raises(RobopolicyError, match=r"episode 3's rollout .*episode_0003.npz does not exist"):
        load_episode(tmp_path / "run", 3)
    (tmp_path / "run" / "run.json").write_text(json.dumps({"policy": "x"}))
    with pytest.raises(RobopolicyError, match=r"run.json has no 'env' config"):
        load_episode(tmp_path / "run", 3)
    _run(tmp_path, episode=4)
    jsonl = tmp_path / "run" / "test1" / "episodes.jsonl"
    jsonl.write_text(jsonl.read_text().replace('"chain"', '"chian"'))
    with pytest.raises(RobopolicyError, match=r"episode 4: 'task' is not a TaskSpec dict"):
        load_episode(tmp_path / "run", 4)


def test_a_folder_that_is_neither_store_nor_run_is_an_error(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(RobopolicyError, match=r"stuff: neither a dataset store .* nor an eval run"):
        load_episode(tmp_path / "stuff", 0)
    with pytest.raises(RobopolicyError, match=r"^dataset or eval run .*nope: no such file"):
        load_episode(tmp_path / "nope", 0)


def test_view_flags_become_hydra_overrides():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from robopolicy.cli import flags_to_overrides

    args = ["path=x", "--save", "a b/out,1.rrd", "--video=v.mp4", "--web", "--native", "--help"]
    out = flags_to_overrides("view", args)
    assert out[0] == "path=x" and out[2:] == ["video=v.mp4", "web=true", "native=true", "--help"]
    assert OverridesParser.create().parse_override(out[1]).value() == "a b/out,1.rrd"
    assert flags_to_overrides("train", ["--save", "x"]) == ["--save", "x"]  # only view's flags
    with pytest.raises(ValueError, match="--save needs a value"):
        flags_to_overrides("view", ["--save"])
