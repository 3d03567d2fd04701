"""Evaluation on real worker processes: one line per episode, resume, reports."""

import json

import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.report import wilson_interval
from robopolicy.evaluation.rollout import evaluate_policy
from robopolicy.training.trainer import train
from tests.conftest import ENV_CONFIG

TASKS = {"classes": [1], "parts": ["handle"], "instances": [0, 1], "horizon": 12}


@pytest.fixture(scope="module")
def policy_dir(expert_store, tiny_policy_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    trainer = {"steps": 2, "batch_size": 8, "lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.999],
               "warmup_steps": 1, "grad_clip": 1.0, "ema_power": 0.75, "ckpt_every": 100,
               "val_every": 100, "log_every": 1, "device": "cpu", "seed": 0}
    return train(tiny_policy_cfg, trainer, expert_store, ["proprio", "state"], out).policy_dir


def _lines(path):
    return path.read_text().splitlines()


def test_eval_writes_a_line_per_episode_and_resumes(policy_dir, tmp_path):
    out = tmp_path / "eval"
    report = evaluate_policy(policy_dir, ENV_CONFIG, TASKS, episodes=4, seed=500, out_dir=out,
                             workers=2, envs_per_worker=1, videos=1)
    lines = _lines(out / "episodes.jsonl")
    records = [json.loads(x) for x in lines]
    assert sorted(r["episode"] for r in records) == [0, 1, 2, 3]
    assert all(r["steps"] == 12 and r["seed"] == 500 + r["episode"] for r in records)
    assert report["overall"]["episodes"] == 4
    assert (out / "report.md").read_text().startswith("# Evaluation report")
    video = out / [r for r in records if r["episode"] == 0][0]["video"]
    assert video.stat().st_size > 1000

    # Interrupted after two episodes, mid-way through writing the third line.
    (out / "episodes.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:17])
    report2 = evaluate_policy(policy_dir, ENV_CONFIG, TASKS, episodes=4, seed=500, out_dir=out,
                              workers=2, envs_per_worker=1, videos=1)
    resumed = _lines(out / "episodes.jsonl")
    assert resumed[:2] == lines[:2]  # finished episodes were not redone or rewritten
    assert len(resumed) == 4
    strip = lambda r: {k: v for k, v in r.items() if k != "wall_s"}  # noqa: E731
    assert sorted(map(strip, map(json.loads, resumed)), key=lambda r: r["episode"]) == \
        sorted(map(strip, records), key=lambda r: r["episode"])
    assert report2["overall"] == report["overall"]


def test_eval_refuses_a_folder_of_another_run(policy_dir, tmp_path):
    evaluate_policy(policy_dir, ENV_CONFIG, TASKS, episodes=1, seed=0, out_dir=tmp_path,
                    workers=1, envs_per_worker=1)
    with pytest.raises(RobopolicyError, match="another policy or episode list"):
        evaluate_policy(policy_dir, ENV_CONFIG, TASKS, episodes=2, seed=0, out_dir=tmp_path,
                        workers=1, envs_per_worker=1)


def test_wilson_interval_matches_a_hand_computed_case():
    # 8 successes of 10: p = 0.8, z = 1.96 -> [0.4902, 0.9433] (Wilson 1927).
    lo, hi = wilson_interval(8, 10)
    assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17


def test_eval_warns_when_the_suite_differs_from_training(policy_dir, tmp_path, caplog):
    env = {**ENV_CONFIG, "yaw_range": [-0.5, 0.5]}
    with caplog.at_level("WARNING", logger="robopolicy.evaluation.rollout"):
        evaluate_policy(policy_dir, env, TASKS, episodes=1, seed=0, out_dir=tmp_path,
                        workers=1, envs_per_worker=1)
    assert "env.yaw_range" in caplog.text and "[-0.5, 0.5]" in caplog.text


def test_a_catalog_split_episode_list_must_fit_the_split():
    from robopolicy.evaluation.rollout import episode_list

    tasks = {"source": "catalog", "split": "test1", "train_episodes": 2000, "classes": [1, 2, 3]}
    specs = episode_list(tasks, 5, seed=2)
    assert [s.index for s in specs] == list(range(5))
    assert {s.task["task_class"] for s in specs} <= {1, 2, 3}
    with pytest.raises(RobopolicyError, match=r"runs past its end \(use seed=0 episodes<="):
        episode_list(tasks, 5, seed=100_000)
