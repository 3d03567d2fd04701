"""`collect` with real workers and a real store (the expert_store fixture runs it)."""

import json

import numpy as np
import pytest

from robopolicy.data.collect import config_differences
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


def test_collect_writes_successful_episodes_in_seed_order(expert_store):
    store = EpisodeStore.open(expert_store)
    assert store.n_episodes == 4
    metas = store.episodes()
    assert [m["seed"] for m in metas] == [0, 1, 2, 3]
    assert all(m["success"] and m["source"] == "expert" and m["task_class"] == 1 for m in metas)
    # the policy's keys, and what every store records whatever obs_keys says
    assert sorted(store.keys) == ["action", "articulation", "object_pose", "proprio",
                                  "robot_joints", "skill_state", "state"]
    assert store.obs_layout["version"] == 2
    assert set(store.obs_layout["keys"]) == set(store.keys) - {"action"}
    assert store.obs_layout["keys"]["state"].startswith("task: object pos 3")
    ep = store.get_episode(0)
    # object_pose and robot_joints are the simulator's own: pos matches state, gripper proprio
    np.testing.assert_array_equal(ep["object_pose"][:, :3], ep["state"][:, :3])
    np.testing.assert_array_equal(ep["robot_joints"], ep["proprio"][:, :8])
    assert json.loads(metas[0]["chain"]) == [{"skill": "grasp", "params": {"part": "handle"}}]
    assert ep["action"].shape == (metas[0]["length"], 10)
    # Demos end with the gripper closed on the handle, after starting open.
    assert ep["action"][0, 9] == 1.0 and ep["action"][-1, 9] == 0.0
    assert store.env_config["tasks"]["classes"] == [1]
    index, instructions = store.episode_skills(0)  # one skill: grasp the handle
    assert len(instructions) == 1 and "handle" in instructions[0]
    assert index.tolist() == [0] * metas[0]["length"]


def test_each_step_is_labelled_with_its_skill(mug_env, tmp_path):
    """A grasp-then-move demo records where the move began; skill_state's goal jumps there
    to 12 cm above the object, and the store gives back the per-step skill index."""
    from sims.partmanip.demo import run_expert_episode
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.tasks import make_task

    task = make_task(3, "mug", "handle", "top", init_seed=3)
    data, info = run_expert_episode(mug_env, ScriptedExpert(), task)
    assert info["success"]
    starts = info["skill_starts"]
    assert len(starts) == 2 and starts[0] == 0 and 0 < starts[1] < len(data["action"])
    goal, obj = data["skill_state"][:, 6:9], data["state"][:, :3]
    k = starts[1]
    np.testing.assert_allclose(goal[k - 1], obj[0], atol=2e-3)  # grasp: stay where it was
    np.testing.assert_allclose(goal[k], obj[k] + [0, 0, 0.12], atol=2e-3)  # move: 12 cm up
    assert np.ptp(goal[k:], axis=0).max() < 1e-6  # fixed for the whole move

    store = EpisodeStore.create(tmp_path / "s.zarr", mug_env.shape_meta())
    store.add_episode(data, {"skill_starts": json.dumps(starts),
                             "skill_instructions": json.dumps(list(task.skill_instructions))})
    index, instructions = store.episode_skills(0)
    assert index.tolist() == [0] * k + [1] * (len(data["action"]) - k)
    assert instructions == list(task.skill_instructions) and len(instructions) == 2

    # the store serves skill_delta from the keys it records: the move starts 12 cm short
    assert store.obs_shape_meta["skill_delta"] == {"shape": [6], "type": "low_dim"}
    delta = store.load(["skill_delta"])["skill_delta"]
    np.testing.assert_allclose(delta[k, :3], [0, 0, 0.12], atol=2e-3)
    np.testing.assert_allclose(delta, store.get_episode(0, ["skill_delta"])["skill_delta"])
    assert np.linalg.norm(delta[-1, :3]) < np.linalg.norm(delta[k, :3]) - 0.05  # carried up
    lean = EpisodeStore.create(tmp_path / "lean.zarr", {**mug_env.shape_meta(), "obs": {
        k: v for k, v in mug_env.shape_meta()["obs"].items() if k != "skill_state"}})
    with pytest.raises(RobopolicyError, match=r"unknown key\(s\) \['skill_delta'\]"):
        lean.load(["skill_delta"])


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
           "workers=1", "suite=mug_lift", "suite.tasks.classes=[1]", f"hydra.run.dir={tmp_path / 'run'}"]
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
    assert "tasks.classes differ" in r.stderr


def test_a_field_added_since_at_its_default_is_the_same_config():
    stored = {"env": {"backend": "mujoco", "pcd_points": 512}, "tasks": {"classes": [1, 2]}}
    now = {"env": {"backend": "mujoco", "pcd_points": 512, "perturb": None}, "tasks": {"classes": [1, 2]}}
    assert config_differences(stored, now) == []
    now["env"]["perturb"] = "lighting"
    now["tasks"]["classes"] = [3]
    assert config_differences(stored, now) == ["env.perturb", "tasks.classes"]


def test_collect_from_the_catalog_records_every_attempt(tmp_path):
    """suite=partmanip: episode i is the i-th catalog train episode; attempts are logged with
    their class and category (failures too) and `dataset info` tabulates them."""
    from robopolicy.data.collect import CollectConfig, collect
    from robopolicy.data.info import dataset_info, format_info
    from sims.partmanip.task_source import CatalogTasks

    tasks = {"source": "catalog", "split": "train", "train_episodes": 2000}
    out = tmp_path / "suite.zarr"
    s = collect(CollectConfig({"obs_keys": ["proprio", "state"]}, tasks, out, episodes=3, seed=0,
                              workers=1, keep_failures=True))
    assert s.episodes == 3 and s.kept == 3
    source = CatalogTasks.from_config(tasks)
    metas = EpisodeStore.open(out).episodes()
    for i, m in enumerate(metas):
        t = source.task(i)
        assert (m["task_id"], m["instance_id"], m["init_seed"], m["split"]) == (
            t.task_id, t.instance_id, t.init_seed, "train")
        assert 0.0 <= m["completion"] <= 1.0 and m["length"] > 0
    info = dataset_info(out)
    att = info["attempts"]
    assert att["attempts"] == 3 and sum(n for _, n in att["by_class"].values()) == 3
    assert "expert attempts:" in format_info(info)
    with pytest.raises(RobopolicyError, match="has 2000 episodes"):
        collect(CollectConfig({"obs_keys": ["proprio"]}, tasks, tmp_path / "x.zarr", episodes=5,
                              seed=1998))


def test_ray_executor_collects_the_same_episodes(tmp_path, expert_store):
    """executor=ray (a local Ray, 2 actors) writes the same episodes as the process pool."""
    from robopolicy.data.collect import CollectConfig, collect
    from tests.conftest import ENV_CONFIG, TASKS

    out = tmp_path / "ray.zarr"
    s = collect(CollectConfig(ENV_CONFIG, TASKS, out, episodes=4, seed=0, workers=2,
                              executor="ray"))
    assert s.kept == 4
    ours, theirs = EpisodeStore.open(out), EpisodeStore.open(expert_store)
    assert [m["seed"] for m in ours.episodes()] == [0, 1, 2, 3]
    for i in range(4):
        np.testing.assert_array_equal(ours.get_episode(i)["action"], theirs.get_episode(i)["action"])


@pytest.mark.parametrize("override,message", [
    ("split=test9", "unknown split 'test9'"),
    ("suite.tasks.source=bogus", "unknown task source 'bogus'"),
    ("executor.kind=nope", "unknown executor 'nope'"),
    ("episodes=0", "collect: episodes must be a positive integer, got 0"),
    ("episodes=-1", "collect: episodes must be a positive integer, got -1"),
    ("workers=0", "collect: workers must be a positive integer, got 0"),
    ("seed=-3", "collect: seed must be a non-negative integer, got -3"),
    ("+episodez=3", "collect: unknown config key(s) ['episodez']"),
    ("+expert.sped=0.3", "collect: expert: unknown expert parameter(s) ['sped']"),
])
def test_bad_collect_config_is_one_line_and_writes_nothing(tmp_path, override, message):
    import subprocess
    import sys

    out = tmp_path / "demos.zarr"
    r = subprocess.run([sys.executable, "-m", "robopolicy.cli", "collect", override, f"out={out}",
                        f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


def test_collect_config_rejects_unknown_keys_and_bad_counts(tmp_path):
    from robopolicy.data.collect import CollectConfig

    good = {"env": {}, "tasks": {}, "out": str(tmp_path / "d.zarr"), "episodes": 2}
    c = CollectConfig.from_dict(good)
    assert c.out == tmp_path / "d.zarr" and (c.seed, c.workers, c.executor) == (0, 2, "process")
    with pytest.raises(RobopolicyError, match=r"unknown config key\(s\) \['worker'\]"):
        CollectConfig.from_dict({**good, "worker": 3})
    for bad in ({"episodes": 0}, {"episodes": -1}, {"episodes": True}, {"workers": 0}):
        with pytest.raises(RobopolicyError, match="must be a positive integer"):
            CollectConfig.from_dict({**good, **bad})


def test_collect_builds_its_experts_with_the_configs_params(tmp_path):
    from robopolicy.data.collect import CollectConfig, collect
    from tests.conftest import ENV_CONFIG, TASKS

    steps = []
    for name, params in (("default", {}), ("slow", {"speed": 0.2, "carry_speed": 0.08})):
        s = collect(CollectConfig(ENV_CONFIG, TASKS, tmp_path / f"{name}.zarr", episodes=1, seed=0,
                                  workers=1, expert=params))
        assert s.successes == 1
        steps.append(EpisodeStore.open(tmp_path / f"{name}.zarr").n_steps)
    assert steps[1] > steps[0] + 5  # a slower hand takes longer to the same success
