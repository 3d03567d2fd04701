"""The bi-level policy in the evaluation pool: the oracle planner with the expert executing each
planned skill reproduces the expert's own episodes; a planner config error is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def eval_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", "eval", "suite=partmanip",
                           "splits=[test1]", "episodes_per_cell=1", "executor.workers=2",
                           "videos=0", *args], capture_output=True, text=True, timeout=timeout)


def records(folder) -> list[dict]:
    lines = (folder / "test1" / "episodes.jsonl").read_text().splitlines()
    return sorted((json.loads(ln) for ln in lines), key=lambda r: r["episode"])


@pytest.mark.slow
def test_oracle_planner_with_the_expert_matches_the_expert(tmp_path):
    r = eval_cli("policy=expert", f"out={tmp_path / 'expert'}")
    assert r.returncode == 0, r.stderr
    r = eval_cli("policy=bilevel", "planner=oracle", f"out={tmp_path / 'bilevel'}")
    assert r.returncode == 0, r.stderr
    expert, bilevel = records(tmp_path / "expert"), records(tmp_path / "bilevel")
    assert len(expert) == len(bilevel) == 10
    assert [e["success"] for e in expert] == [b["success"] for b in bilevel]
    for b in bilevel:  # the oracle's plan is the chain, each skill started once
        assert b["plan_valid"] and b["planner_calls"] >= 1
        assert b["skills_correct"] == len(b["skills"]) <= b["chain_length"]
        assert b["skill_starts"] == sorted(b["skill_starts"]) and b["skill_starts"][0] == 0
    report = json.loads((tmp_path / "bilevel" / "report.json").read_text())
    assert report["by_split"]["test1"]["planner"]["skill_accuracy"] > 0.9


def test_bilevel_without_a_planner_and_unknown_planner_are_one_line_errors(tmp_path):
    r = eval_cli("policy=bilevel", f"out={tmp_path / 'a'}")
    assert r.returncode == 2 and "needs a planner" in r.stderr and r.stderr.count("\n") == 1
    r = eval_cli("policy=bilevel", "+planner.name=nonesuch", f"out={tmp_path / 'b'}")
    assert r.returncode == 2 and "nonesuch" in r.stderr and r.stderr.count("\n") == 1, r.stderr
