"""benchmarks/one_demo.py: which seeds it collects per task (on the real task pool), its
commands, and its table and targets from report.json files written by the evaluation's own
report writer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from robopolicy.evaluation.report import write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import one_demo  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


@pytest.fixture(scope="module")
def seeds():
    return one_demo.task_seeds(one_demo.task_pool(one_demo.parse([])), n=64)


def attempt(seed: int, task: str, kept: bool) -> dict:
    task_id, instance = task.split("@")
    return {"seed": seed, "task_id": task_id, "instance_id": int(instance), "success": kept,
            "kept": kept}


def test_the_default_pool_is_three_tasks_of_mug_0s_handle_and_each_seed_draws_its_task(seeds):
    assert list(seeds) == ["c01-mug-handle@0", "c02-mug-handle@0", "c03-mug-handle-top@0"]
    pool = one_demo.task_pool(one_demo.parse([]))
    for task, ss in seeds.items():
        assert ss == sorted(ss) and len(ss) >= 10
        assert {one_demo.task_key(pool.task(s).task_id, pool.task(s).instance_id) for s in ss} == {task}
    assert sorted(s for ss in seeds.values() for s in ss) == list(range(64))


def test_one_demo_per_task_collects_one_seed_per_lacking_task_and_retries_a_failed_one(seeds):
    t1, t2, t3 = seeds
    first = one_demo.next_collect(seeds, [], 1)
    assert first == [(seeds[t][0], 1) for t in seeds]
    # t1 failed its first seed, t2 has its demo, t3 not tried: t1's next seed and t3's first
    records = [attempt(seeds[t1][0], t1, False), attempt(seeds[t2][0], t2, True)]
    assert one_demo.next_collect(seeds, records, 1) == [(seeds[t1][1], 1), (seeds[t3][0], 1)]
    done = [attempt(seeds[t][0], t, True) for t in seeds]
    assert one_demo.next_collect(seeds, done, 1) == []


def test_many_demos_per_task_is_one_run_from_seed_0_reaching_every_tasks_count(seeds):
    (seed, n), = one_demo.next_collect(seeds, [], 3)
    assert seed == 0 and n == max(ss[2] for ss in seeds.values()) + 1
    # every seed below n tried, t1 kept only its first two: the run grows to t1's next seed
    t1 = next(iter(seeds))
    records = [attempt(s, t, t != t1 or s in seeds[t1][:2]) for t, ss in seeds.items()
               for s in ss if s < n]
    later = [s for s in seeds[t1] if s >= n][0]
    assert one_demo.next_collect(seeds, records, 3) == [(0, later + 1)]


def test_commands_name_the_pool_the_images_and_the_four_splat_augmenters(tmp_path):
    a = one_demo.parse(["--image-size", "80", "--copies", "7"])
    aug = one_demo.augment_command(a, tmp_path / "one.zarr", tmp_path / "aug.zarr",
                                   one_demo.STORES["b"][2], a.copies)
    assert {"augment=[pose,lighting,camera,appearance]", "copies=7", "keep_source=true"} <= set(aug)
    ev = one_demo.eval_command(a, ["policy=expert"], "camera", tmp_path / "e")
    assert {"suite.env.image_size=[80,80]", "suite.tasks.classes=[1,2,3]", "perturb=camera",
            "suite.env.obs_keys=[proprio,rgb.agentview,rgb.wrist]"} <= set(ev)
    tr = one_demo.train_command(a, tmp_path / "one.zarr", tmp_path / "run")
    assert "policy.text_encoder=minilm" in tr and "dataset.obs_keys=[proprio,rgb.agentview,rgb.wrist]" in tr
    assert "suite.env.yaw_range=[-1,1]" not in ev and "policy.n_obs_steps=2" in tr
    with pytest.raises(SystemExit):
        one_demo.parse(["--rows", "a,f"])


def test_the_augmenters_yaw_range_and_observation_frames_can_be_chosen(tmp_path):
    a = one_demo.parse(["--augmenters", "pose", "--yaw-range=-1,1", "--obs-steps", "1"])
    assert one_demo.row_augmenters(a, "b") == one_demo.row_augmenters(a, "e") == "[pose]"
    assert one_demo.row_augmenters(a, "c") == "[image2d]" and one_demo.row_augmenters(a, "a") is None
    assert one_demo.row_augmenters(one_demo.parse([]), "b") == one_demo.SPLAT
    assert "suite.env.yaw_range=[-1,1]" in one_demo.eval_command(a, ["policy=expert"], None, tmp_path)
    assert "policy.n_obs_steps=1" in one_demo.train_command(a, tmp_path / "s.zarr", tmp_path / "r")
    write_cell(tmp_path, "b", "nominal", 3, 10)
    text = one_demo.markdown(one_demo.table(tmp_path, ["b"], ["nominal"]), ["nominal"], {}, a.augmenters)
    assert "| (b) 1 demo + [pose] |  | 30 [11, 60] (3/10) |" in text


def test_visual_copies_rerender_each_augmented_episode_once_and_rows_b_e_train_on_them(tmp_path):
    a = one_demo.parse(["--augmenters", "pose", "--visual", "lighting,camera",
                        "--visual-args", "augment.camera.params.roll_deg=5 augment.lighting.params.noise_std=0.05"])
    cmd = one_demo.visual_command(a, tmp_path / "aug_one.zarr", tmp_path / "vis_aug_one.zarr")
    assert {"augment=[lighting,camera]", "copies=1", "keep_source=true", f"path={tmp_path / 'aug_one.zarr'}",
            "augment.camera.params.roll_deg=5", "augment.lighting.params.noise_std=0.05"} <= set(cmd)
    assert [one_demo.train_store(a, r) for r in "abcde"] == ["one", "vis_aug_one", "img2d_one", "many", "vis_aug_many"]
    assert one_demo.train_store(one_demo.parse([]), "b") == "aug_one"
    write_cell(tmp_path, "b", "nominal", 1, 4)
    text = one_demo.markdown(one_demo.table(tmp_path, ["b"], ["nominal"]), ["nominal"],
                             {"vis_aug_one": {"episodes": 292}}, a.augmenters, a.visual, {"b": "vis_aug_one"})
    assert "| (b) 1 demo + [pose], half re-rendered [lighting,camera] | 292 | 25 [5, 70] (1/4) |" in text


def write_cell(out: Path, row: str, cond: str, successes: int, n: int) -> None:
    d = out / "eval" / row / cond
    d.mkdir(parents=True)
    write_report(d, [{"task_id": "c03-mug-handle-top", "task_class": 3, "category": "mug",
                      "success": i < successes, "completion": float(i < successes), "steps": 100}
                     for i in range(n)])


def test_the_table_reads_each_cell_and_checks_the_issues_targets(tmp_path):
    conds = ["nominal", "camera", "lighting"]
    rates = {"b": (7, 5, 6), "d": (8, 2, 3), "e": (9, 3, 4)}
    for row, ks in rates.items():
        for cond, k in zip(conds, ks, strict=True):
            write_cell(tmp_path, row, cond, k, 10)
    result = one_demo.table(tmp_path, ["a", "b", "d", "e"], conds)
    b_nominal = result["rows"]["b"]["nominal"]
    assert (b_nominal["successes"], b_nominal["episodes"]) == (7, 10)
    assert b_nominal["ci95"][0] < 0.7 < b_nominal["ci95"][1]
    assert result["rows"]["a"]["nominal"] is None
    met = {t["target"]: t["met"] for t in result["targets"]}
    assert met == {"(b) >= 80% of (d) on nominal": True, "(b) beats (d) on camera": True,
                   "(b) beats (d) on lighting": True, "(e) beats (d) on every condition": True}
    (tmp_path / "eval" / "e" / "lighting" / "report.json").unlink()
    write_cell(tmp_path, "e", "lighting2", 0, 1)  # another folder: the cell stays missing
    missing = one_demo.table(tmp_path, ["b", "d", "e"], conds)["targets"][-1]
    assert missing["met"] is None
    write_cell(tmp_path, "b", "pose_wide", 1, 10)
    write_cell(tmp_path, "d", "pose_wide", 5, 10)
    text = one_demo.markdown(one_demo.table(tmp_path, ["b", "d"], [*conds, "pose_wide"]),
                             [*conds, "pose_wide"], {})
    assert "| (b) 1 demo + Gaussian-splat aug |  | 70 [40, 89] (7/10) |" in text
    assert "- (b) >= 80% of (d) on nominal: met (70% vs 80%)" in text
    assert "- (e) beats (d) on every condition: not measured" in text
