"""Evaluation on real worker processes: one line per episode, resume, reports."""

import json

import numpy as np
import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
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


def _run(policy, out, episodes, seed, workers=1, envs=1, kind="process", env=ENV_CONFIG,
         tasks=TASKS, **kw) -> EvalConfig:
    """An evaluation run of `episodes` episodes from `seed` on `workers` x `envs` envs."""
    return EvalConfig(policy, env, tasks, out, episodes=episodes, seed=seed,
                      executor=ExecutorConfig(kind, workers, envs), **kw)


def _lines(path):
    return path.read_text().splitlines()


def test_eval_writes_a_line_per_episode_and_resumes(policy_dir, tmp_path):
    out = tmp_path / "eval"
    report = evaluate_policy(_run(policy_dir, out, 4, seed=500, workers=2, videos=1))
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
    report2 = evaluate_policy(_run(policy_dir, out, 4, seed=500, workers=2, videos=1))
    resumed = _lines(out / "episodes.jsonl")
    assert resumed[:2] == lines[:2]  # finished episodes were not redone or rewritten
    assert len(resumed) == 4
    strip = lambda r: {k: v for k, v in r.items() if k != "wall_s"}  # noqa: E731
    assert sorted(map(strip, map(json.loads, resumed)), key=lambda r: r["episode"]) == \
        sorted(map(strip, records), key=lambda r: r["episode"])
    assert report2["overall"] == report["overall"]


def test_eval_refuses_a_folder_of_another_run(policy_dir, tmp_path):
    evaluate_policy(_run(policy_dir, tmp_path, 1, seed=0))
    with pytest.raises(RobopolicyError, match="another policy or episode list"):
        evaluate_policy(_run(policy_dir, tmp_path, 2, seed=0))


def test_a_policy_of_an_older_observation_layout_is_refused_in_one_line(policy_dir, tmp_path):
    """A policy trained when `state` carried the oracle skill (layout 1, no obs_layout in its
    meta.json) is refused before any worker starts; so is one whose shapes the env no longer
    gives."""
    import shutil

    from robopolicy.evaluation.runners import check_policy_observations

    old = tmp_path / "old_policy"
    shutil.copytree(policy_dir, old)
    meta = json.loads((old / "meta.json").read_text())
    assert meta["obs_layout"] == 2
    del meta["obs_layout"]
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RobopolicyError) as e:
        evaluate_policy(_run(old, tmp_path / "eval", 1, seed=0))
    msg = str(e.value)
    assert "\n" not in msg and str(old) in msg and "layout 1" in msg and "['state']" in msg
    shape_meta = {"obs": {"proprio": {"shape": [17]}, "state": {"shape": [20]}}}
    with pytest.raises(RobopolicyError, match=r"'state' has shape \[20\] in the policy, \[11\]"):
        check_policy_observations(policy_dir, shape_meta, ENV_CONFIG)
    assert not (tmp_path / "eval" / "episodes.jsonl").exists()


def test_the_eval_env_renders_images_and_clouds_at_the_policys_sizes(policy_dir, tmp_path, caplog):
    """A policy trained on 64-point clouds and 40x48 images is evaluated on those, whatever
    the suite config's defaults; a point-cloud policy's agentview renders at its store's size
    (the cloud is that camera's depth); a state policy's env config is left as it is."""
    import logging
    import shutil

    from robopolicy.evaluation.runners import check_policy_observations, observation_sizes

    shape_meta = {"obs": {"proprio": {"shape": [17]}, "pcd": {"shape": [64, 3]},
                          "rgb.agentview": {"shape": [48, 40, 3]}}}
    env = {**ENV_CONFIG, "image_size": [128, 128], "pcd_points": 512}
    with pytest.raises(RobopolicyError, match=r"'pcd' has shape \[64, 3\] in the policy"):
        check_policy_observations(policy_dir, shape_meta, env)
    with caplog.at_level(logging.INFO, logger="robopolicy.evaluation.runners"):
        sized = observation_sizes(policy_dir, shape_meta, env, "the pcd policy")
    assert sized == {**env, "image_size": [40, 48], "pcd_points": 64}
    check_policy_observations(policy_dir, shape_meta, sized)
    assert "pcd_points=64, image_size=[40, 48] as the pcd policy was trained" in caplog.text
    assert "pcd_points=512, image_size=[128, 128]" in caplog.text

    pcd_only = {"obs": {"proprio": {"shape": [17]}, "pcd": {"shape": [64, 3]}}}
    small = tmp_path / "small_store_policy"
    shutil.copytree(policy_dir, small)
    meta = json.loads((small / "meta.json").read_text())
    meta["dataset_env_config"]["env"]["image_size"] = [32, 24]
    (small / "meta.json").write_text(json.dumps(meta))
    assert observation_sizes(small, pcd_only, env, "p") == {**env, "image_size": [32, 24],
                                                             "pcd_points": 64}
    state_only = {"obs": {"proprio": {"shape": [17]}, "state": {"shape": [11]}}}
    assert observation_sizes(small, state_only, env, "a state policy") == env


def test_wilson_interval_matches_a_hand_computed_case():
    # 8 successes of 10: p = 0.8, z = 1.96 -> [0.4902, 0.9433] (Wilson 1927).
    lo, hi = wilson_interval(8, 10)
    assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17


def test_eval_warns_when_the_suite_differs_from_training(policy_dir, tmp_path, caplog):
    env = {**ENV_CONFIG, "yaw_range": [-0.5, 0.5]}
    with caplog.at_level("WARNING", logger="robopolicy.evaluation.runners"):
        evaluate_policy(_run(policy_dir, tmp_path, 1, seed=0, env=env))
    assert "env.yaw_range" in caplog.text and "[-0.5, 0.5]" in caplog.text


def test_a_catalog_split_episode_list_must_fit_the_split():
    from robopolicy.evaluation.rollout import episode_list

    tasks = {"source": "catalog", "split": "test1", "train_episodes": 2000, "classes": [1, 2, 3]}
    specs = episode_list(tasks, 5, seed=2)
    assert [s.index for s in specs] == list(range(5))
    assert {s.task["task_class"] for s in specs} <= {1, 2, 3}
    with pytest.raises(RobopolicyError, match=r"runs past its end \(use seed=0 episodes<="):
        episode_list(tasks, 5, seed=100_000)


def _strip(report):
    """A report without its wall-clock parts."""
    return {k: v for k, v in report.items() if k not in ("wall_s", "timing")}


def _records(path):
    return sorted(({k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in _lines(path)),
                  key=lambda r: r["episode"])


def test_same_seed_and_policy_give_identical_reports(policy_dir, tmp_path):
    reports = [evaluate_policy(_run(policy_dir, tmp_path / name, 3, seed=7, workers=w, envs=e))
               for name, w, e in (("a", 2, 2), ("b", 1, 1))]  # other batching, same episodes
    assert _strip(reports[0]) == {**_strip(reports[1]), "workers": 2, "envs_per_worker": 2}
    assert _records(tmp_path / "a" / "episodes.jsonl") == _records(tmp_path / "b" / "episodes.jsonl")
    t = reports[0]["timing"]
    assert t["env_steps"] == 3 * 12 and t["worker_restarts"] == 0
    assert 0 < t["share"]["simulation"] < 1 and 0 < t["share"]["policy"] < 1


def test_each_episode_leaves_its_rollout_for_the_viewer(policy_dir, tmp_path):
    import numpy as np

    evaluate_policy(_run(policy_dir, tmp_path, 1, seed=3))
    rec = json.loads(_lines(tmp_path / "episodes.jsonl")[0])
    assert rec["task"]["task_id"] == rec["task_id"] and rec["task"]["init_seed"] == 3
    z = np.load(tmp_path / rec["rollout"])
    assert z["action"].shape == (12, 10)
    assert z["pred_chunk"].shape == (12, 16, 10)  # the whole horizon of each call
    assert list(z["pred_step"]) == [0] * 8 + [8] * 4  # Ta = 8
    # the executed actions are the chunk's entries from the last observed frame on (To = 2)
    np.testing.assert_allclose(z["action"][:8], z["pred_chunk"][0, 1:9], atol=1e-6)
    assert json.loads((tmp_path / "run.json").read_text())["env"]["obs_keys"] == ["proprio", "state"]


def test_action_steps_runs_fewer_actions_per_call_than_trained(policy_dir, tmp_path):
    evaluate_policy(_run(policy_dir, tmp_path, 1, seed=3, action_steps=3))
    rec = json.loads(_lines(tmp_path / "episodes.jsonl")[0])
    z = np.load(tmp_path / rec["rollout"])
    assert list(z["pred_step"]) == [0] * 3 + [3] * 3 + [6] * 3 + [9] * 3
    np.testing.assert_allclose(z["action"][3:6], z["pred_chunk"][3, 1:4], atol=1e-6)
    assert json.loads((tmp_path / "run.json").read_text())["policy"].endswith("(action_steps=3)")


@pytest.mark.parametrize("steps, message", [
    (16, "policy.action_steps=16: must be a whole number from 1 to 15"),  # horizon 16, To 2
    (0, "policy.action_steps=0: must be a positive whole number"),
])
def test_action_steps_beyond_the_chunk_is_a_one_line_error(policy_dir, tmp_path, steps, message):
    with pytest.raises(RobopolicyError, match=message):
        evaluate_policy(_run(policy_dir, tmp_path, 1, seed=3, action_steps=steps))
    assert not (tmp_path / "episodes.jsonl").exists()


@pytest.mark.parametrize("bilevel", [False, True])
def test_action_steps_is_refused_for_the_scripted_expert(tmp_path, bilevel):
    from robopolicy.evaluation.bilevel import BILEVEL, BilevelConfig

    acting = {"policy": BILEVEL, "bilevel": BilevelConfig(planner={"name": "oracle"})} \
        if bilevel else {"policy": "expert"}  # the bi-level default low level is the expert
    with pytest.raises(RobopolicyError, match="action_steps is for a learned policy"):
        _run(acting.pop("policy"), tmp_path, 1, seed=0, action_steps=2, **acting)


class _KillingRunner:
    """Wraps a runner and kills worker 0's process at its `at`-th call."""

    def __init__(self, runner, pool, at):
        self.inner, self.pool, self.at, self.calls = runner, pool, at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args):
        import os
        import signal

        self.calls += 1
        if self.calls == self.at:
            os.kill(self.pool.pids[0], signal.SIGKILL)
        return self.inner(*args)


def test_a_worker_killed_mid_episode_is_replaced_and_the_report_is_complete(policy_dir, tmp_path):
    from robopolicy.evaluation.pool import ProcessRolloutPool
    from robopolicy.evaluation.rollout import PolicyRunner, episode_list, run_episodes
    from robopolicy.policies.io import load_policy

    runner = PolicyRunner(load_policy(policy_dir), "cpu", seed=0)
    specs = episode_list(TASKS, 4, seed=40)
    with ProcessRolloutPool(ENV_CONFIG, TASKS, workers=2, envs_per_worker=1) as pool:
        first = pool.pids[0]
        killed = run_episodes(_KillingRunner(runner, pool, at=2), pool, specs, tmp_path / "killed")
        assert pool.stats.restarts == 1 and pool.pids[0] != first
        assert pool.stats.lost_slots == [0]
    with ProcessRolloutPool(ENV_CONFIG, TASKS, workers=2, envs_per_worker=1) as pool:
        clean = run_episodes(runner, pool, specs, tmp_path / "clean")
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(killed) == strip(clean)  # the rerun episode ends exactly as it does unharmed
    assert len(_lines(tmp_path / "killed" / "episodes.jsonl")) == 4


@pytest.mark.slow
def test_ray_executor_runs_four_episodes_like_the_process_pool(policy_dir, tmp_path):
    reports = {kind: evaluate_policy(_run(policy_dir, tmp_path / kind, 4, seed=11, workers=2,
                                          kind=kind))
               for kind in ("ray", "process")}
    assert reports["ray"]["overall"]["episodes"] == 4
    assert _records(tmp_path / "ray" / "episodes.jsonl") == \
        _records(tmp_path / "process" / "episodes.jsonl")


@pytest.mark.slow
def test_killing_an_evaluation_and_resuming_gives_the_uninterrupted_report(policy_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "robopolicy.cli", "eval", f"policy.path={policy_dir}",
            "episodes=6", "seed=20", "executor.workers=1", "executor.envs_per_worker=1",
            "videos=0", "suite.env.obs_keys=[proprio,state]", "suite.tasks.horizon=40"]
    jsonl = tmp_path / "killed" / "episodes.jsonl"
    proc = subprocess.Popen([*args, f"out={tmp_path / 'killed'}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not jsonl.exists() or len(_lines(jsonl)) < 2):
        time.sleep(0.2)
    os_kill = __import__("os").killpg
    os_kill(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-run
    proc.wait()
    n_before = len(_lines(jsonl))
    assert 2 <= n_before < 6
    done = subprocess.run([*args, f"out={tmp_path / 'killed'}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    subprocess.run([*args, f"out={tmp_path / 'clean'}"], check=True, capture_output=True)
    clean = json.loads((tmp_path / "clean" / "report.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "report.json").read_text())
    assert _strip(resumed)["overall"] == _strip(clean)["overall"]
    assert resumed["by_task"] == clean["by_task"]
    assert _records(jsonl) == _records(tmp_path / "clean" / "episodes.jsonl")


def test_expert_as_a_policy_succeeds_and_records_a_captioned_two_camera_video(tmp_path):
    import imageio.v2 as imageio
    import numpy as np

    from robopolicy.viewer.captions import BAR

    tasks = {**TASKS, "horizon": 120}
    report = evaluate_policy(_run("expert", tmp_path, 2, seed=0, workers=2, tasks=tasks, videos=1))
    assert report["overall"]["successes"] == 2 and report["policy"] == "expert"
    recs = _records(tmp_path / "episodes.jsonl")
    assert "video" in recs[0] and "video" not in recs[1]
    with imageio.get_reader(tmp_path / recs[0]["video"]) as reader:
        frames = np.stack([f for f in reader])  # noqa: C416 (len(reader) is inf)
    assert frames.shape[0] == recs[0]["steps"] + 1  # the reset frame, then one per step
    assert frames.shape[1:] == (256 + 2 * BAR, 2 * 256, 3)  # agentview | wrist, caption bars


def test_the_workers_experts_take_the_runs_expert_params(tmp_path):
    tasks = {**TASKS, "horizon": 120}
    fast = evaluate_policy(_run("expert", tmp_path / "fast", 1, seed=0, tasks=tasks))
    slow = evaluate_policy(_run("expert", tmp_path / "slow", 1, seed=0, tasks=tasks,
                                expert_params={"speed": 0.2, "carry_speed": 0.08}))
    assert fast["overall"]["successes"] == slow["overall"]["successes"] == 1
    steps = [_records(tmp_path / run / "episodes.jsonl")[0]["steps"] for run in ("fast", "slow")]
    assert steps[1] > steps[0] + 5  # a slower hand takes longer to the same success
    assert json.loads((tmp_path / "slow" / "run.json").read_text())["expert_params"]["speed"] == 0.2


@pytest.mark.slow
def test_catalog_splits_report_per_split_class_and_category(tmp_path):
    from robopolicy.evaluation.rollout import evaluate_splits, split_episodes

    tasks = {"source": "catalog", "split": "train", "train_episodes": 2000, "classes": [1, 2]}
    specs = split_episodes(tasks, "test1", per_cell=1)
    cats = [s.task["category"] for s in specs]
    assert len(cats) == len(set(cats)) >= 10  # one episode per category
    specs2 = split_episodes(tasks, "test2", per_cell=2)
    assert {s.task["task_class"] for s in specs2} == {1, 2}  # spread over the classes
    with pytest.raises(RobopolicyError, match="exceeds the catalog's 16"):
        split_episodes(tasks, "test1", per_cell=17)
    with pytest.raises(RobopolicyError, match="suite=partmanip"):
        split_episodes(TASKS, "test1", per_cell=1)

    tasks1 = {**tasks, "classes": [1]}
    report = evaluate_splits(_run("expert", tmp_path, 1, seed=0, workers=2, envs=2, tasks=tasks1,
                                  splits=("test1", "test5"), episodes_per_cell=1))
    assert list(report["by_split"]) == ["test1", "test5"]
    t1, t5 = report["by_split"]["test1"], report["by_split"]["test5"]
    assert set(t5["by_category"]).isdisjoint(t1["by_category"])  # unseen categories
    assert report["overall"]["episodes"] == t1["overall"]["episodes"] + t5["overall"]["episodes"]
    assert all(k.startswith("1/") for k in t1["by_class_category"])
    assert report["overall"]["success_rate"] >= 0.7  # the expert is the suite's ceiling
    for split in ("test1", "test5"):
        assert (tmp_path / split / "success.png").stat().st_size > 5000
        assert len(_lines(tmp_path / split / "episodes.jsonl")) == report["by_split"][split]["overall"]["episodes"]
    md = (tmp_path / "report.md").read_text()
    assert "## test5" in md and "Successes per task class x category" in md


def test_aligned_chunk_boundaries_batch_the_policy_calls_without_changing_results(policy_dir, tmp_path):
    from dataclasses import replace

    from robopolicy.evaluation.rollout import PolicyRunner, episode_list, rollouts
    from robopolicy.policies.io import load_policy

    tasks = {**TASKS, "horizon": 20}
    # episodes of other lengths (off chunk boundaries) desynchronize unaligned slots
    specs = [replace(s, task={**s.task, "horizon": h})
             for s, h in zip(episode_list(tasks, 5, seed=60), (20, 13, 20, 9, 20), strict=True)]
    runner = PolicyRunner(load_policy(policy_dir), "cpu", seed=0)
    executor = ExecutorConfig(workers=1, envs_per_worker=2)
    out = {align: rollouts(runner, specs, ENV_CONFIG, tasks, tmp_path / str(align), executor,
                           align=align) for align in (True, False)}
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]  # noqa: E731
    assert strip(out[True][0]) == strip(out[False][0])
    assert [r["steps"] for r in out[True][0]] == [20, 13, 20, 9, 20]
    assert out[False][1]["policy_calls"] > out[True][1]["policy_calls"]


def test_an_episode_ended_before_any_action_still_saves_its_rollout():
    from robopolicy.evaluation.loop import EpisodeSlot

    slot = EpisodeSlot(2)
    assert slot.rollout_arrays()["action"].shape == (0, 10)  # e.g. the expert gave up at once
    slot.actions.append(np.ones(10, np.float32))
    assert slot.rollout_arrays()["action"].shape == (1, 10)
