"""Eval run configs: counts that make no run are refused in one line, before anything is built."""

import subprocess
import sys

import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig

HYDRA = {"name": "eval", "policy": {"path": "expert"}, "suite": {"env": {}, "tasks": {}},
         "executor": {"kind": "process", "workers": 2, "envs_per_worker": 4},
         "splits": None, "episodes_per_cell": None, "episodes": 5, "seed": 0, "videos": 0,
         "device": "cpu", "out": None}


def _with(**over):
    cfg = {**HYDRA, **over}
    return EvalConfig.from_hydra(cfg, "/nonexistent")


def test_the_hydra_config_becomes_a_typed_run():
    run = _with(splits=["test1", "test2"], episodes_per_cell=3)
    assert run.splits == ("test1", "test2") and run.episodes_per_cell == 3
    assert run.executor == ExecutorConfig("process", 2, 4, None)


def test_the_expert_params_reach_the_run():
    assert _with(policy={"path": "expert", "params": {"speed": 0.3}}).expert_params == {"speed": 0.3}
    assert _with().expert_params == {}


@pytest.mark.parametrize("over, message", [
    ({"episodes": -1}, r"^eval: episodes=-1: must be a positive whole number$"),
    ({"episodes": 0}, r"^eval: episodes=0: must be a positive"),
    ({"episodes_per_cell": 0, "splits": ["test1"]}, r"^eval: episodes_per_cell=0: must be"),
    ({"videos": -2}, r"^eval: videos=-2: must be a whole number >= 0$"),
    ({"splits": []}, r"^eval: splits is empty"),
    ({"executor": {**HYDRA["executor"], "workers": 0}}, r"^executor.workers=0: must be"),
    ({"executor": {**HYDRA["executor"], "envs_per_worker": -4}}, r"^executor.envs_per_worker=-4"),
    ({"executor": {**HYDRA["executor"], "kind": "slurm"}}, r"^executor: unknown kind 'slurm'"),
    ({"executor": {**HYDRA["executor"], "worker": 3}}, r"^executor: unknown key 'worker'"),
    ({"episode": 3}, r"^eval: unknown key 'episode'"),
    ({"policy": {"path": "???"}}, r"^eval: policy.path is required"),
    ({"policy": {"path": "expert", "params": {"sped": 0.3}}},
     r"^eval: policy.params: unknown expert parameter\(s\) \['sped'\]"),
    ({"policy": {"path": "some/policy", "params": {"speed": 0.3}}},
     r"^eval: policy.params sets the scripted expert's parameters"),
])
def test_bad_values_are_refused_in_one_line(over, message):
    with pytest.raises(RobopolicyError, match=message) as e:
        _with(**over)
    assert "\n" not in str(e.value)


def test_the_cli_refuses_a_negative_episode_count_before_building_anything(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "robopolicy.cli", "eval", "policy=expert",
                           "episodes=-1", f"out={out}"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: eval: episodes=-1: must be a positive whole number"
    assert not (out / "run.json").exists() and not (out / "report.json").exists()
