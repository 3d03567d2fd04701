"""A trained diffusion policy's evaluation does not depend on batching or the worker count:
run one episode at a time or six at once on two workers, every executed action is identical."""

import json

import numpy as np
import pytest

from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
from robopolicy.evaluation.rollout import evaluate_policy
from robopolicy.training.trainer import train
from tests.conftest import ENV_CONFIG

TASKS = {"classes": [1], "parts": ["handle"], "instances": [0, 1], "horizon": 40}


@pytest.fixture(scope="module")
def trained_dir(expert_store, tiny_policy_cfg, tmp_path_factory):
    """A tiny diffusion policy trained for 300 steps: its actions depend on its observations
    (an untrained one's barely do, which would hide a difference that grows in closed loop)."""
    trainer = {"steps": 300, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0,
               "betas": [0.9, 0.999], "warmup_steps": 10, "grad_clip": 1.0, "ema_power": 0.75,
               "ckpt_every": 1000, "val_every": 1000, "log_every": 100, "device": "cpu",
               "seed": 0}
    out = tmp_path_factory.mktemp("train300")
    return train(tiny_policy_cfg, trainer, expert_store, ["proprio", "state"], out).policy_dir


def _records(folder):
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    return sorted(({k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in lines),
                  key=lambda r: r["episode"])


def test_one_env_and_two_workers_of_three_envs_execute_identical_actions(trained_dir, tmp_path):
    reports = {}
    for name, workers, envs in (("1x1", 1, 1), ("2x3", 2, 3)):
        run = EvalConfig(trained_dir, ENV_CONFIG, TASKS, tmp_path / name, episodes=6, seed=30,
                         executor=ExecutorConfig(workers=workers, envs_per_worker=envs))
        reports[name] = evaluate_policy(run)
    assert reports["2x3"]["envs_per_worker"] == 3  # six episodes ran side by side
    one, six = _records(tmp_path / "1x1"), _records(tmp_path / "2x3")
    assert one == six  # outcomes, steps, completion
    moved = 0.0
    for rec in one:
        with np.load(tmp_path / "1x1" / rec["rollout"]) as a, \
                np.load(tmp_path / "2x3" / rec["rollout"]) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{rec['rollout']}: {key}")
            moved = max(moved, float(np.ptp(a["action"][:, :3], axis=0).max()))
    assert moved > 0.01  # the policy's actions do move the arm: the comparison is not vacuous
