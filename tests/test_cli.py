"""The `robopolicy` console script as a user runs it (real subprocesses)."""

import subprocess
import sys

import numpy as np
import pytest


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_the_verbs():
    r = run("--help")
    assert r.returncode == 0
    for verb in ("collect", "train", "eval", "view", "quickstart"):
        assert f"\n  {verb}" in r.stdout


def test_verb_help_shows_its_config():
    r = run("train", "--help")
    assert r.returncode == 0
    assert "robopolicy train:" in r.stdout and "dataset:" in r.stdout and "down_dims" in r.stdout


def test_train_help_lists_every_policy_config_with_a_summary():
    from robopolicy.commands.app import config_dir, is_eval_only

    files = sorted((config_dir() / "policy").glob("*.yaml"))
    names = [f.stem for f in files if not is_eval_only(f)]
    assert {"diffusion_unet", "diffusion_transformer", "flow_matching"} <= set(names)
    assert {"expert", "bilevel"} == {f.stem for f in files} - set(names)
    r = run("train", "--help")
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("== Policies")[1].split("== Configuration groups")[0]
    for name in names:
        # "  <name>  <summary>" (the first line of configs/policy/<name>.yaml)
        line = next((ln for ln in section.splitlines() if ln.split()[:1] == [name]), "")
        assert len(line.split()) > 2, f"{name} has no summary line in train --help"
    for name in ("expert", "bilevel"):  # evaluated only: not offered for training
        assert not any(ln.split()[:1] == [name] for ln in section.splitlines())


def test_unknown_verb_and_unknown_key_fail():
    r = run("fly")
    assert r.returncode == 2 and "unknown verb" in r.stderr
    r = run("train", "dataset.path=x.zarr", "trainer.stepz=5")
    assert r.returncode != 0 and "stepz" in r.stderr


@pytest.mark.parametrize("make_bad", ["missing", "corrupt"])
def test_bad_store_path_is_a_one_line_error(tmp_path, make_bad):
    path = tmp_path / "demos.zarr"
    if make_bad == "corrupt":
        path.mkdir()
        (path / "zarr.json").write_text("{ not json")
    r = run("view", f"path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dataset") and str(path) in lines[0]


def test_view_writes_an_mp4_of_the_episode(expert_store, tmp_path):
    import imageio.v3 as iio

    from robopolicy.data.store import EpisodeStore

    out = tmp_path / "ep.mp4"
    r = run("view", f"path={expert_store}", "episode=2", f"video={out}", "size=[64,64]",
            f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    from robopolicy.viewer.captions import BAR

    frames = iio.imread(out)
    assert frames.shape[0] == EpisodeStore.open(expert_store).episode_meta(2)["length"] + 1
    assert frames.shape[1:] == (64 + 2 * BAR, 2 * 64, 3)  # agentview | wrist, caption bars


def test_assets_list_json_describes_the_library():
    import json

    r = run("assets", "list", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cats = out["categories"]
    assert len(cats) == 14 and out["total_instances"] >= 500
    assert cats["mug"]["split"] == "seen" and cats["mug"]["instances"] >= 30
    assert {"handle", "body"} <= set(cats["mug"]["parts"])
    assert sum(c["split"] == "unseen" for c in cats.values()) == 4


def test_assets_build_skips_valid_instances_and_rebuilds_broken_ones(tmp_path):
    args = ("assets", "build", f"cache_dir={tmp_path}", "categories=[mug,kettle]", "max_instances=2")
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert "built:   4 instances, skipped 0" in r.stdout
    inst = tmp_path / "kettle" / "kettle_0001"
    assert {"model.xml", "model.urdf", "parts.npz", "meta.json"} <= {p.name for p in inst.iterdir()}
    assert (tmp_path / "manifest.json").is_file()
    (inst / "model.xml").write_text("<mujoco/>")  # damaged: must be rebuilt
    r = run(*args)
    assert "built:   1 instances, skipped 3" in r.stdout, r.stdout
    import mujoco

    mujoco.MjModel.from_xml_path(str(inst / "model.xml"))


def test_assets_preview_writes_a_contact_sheet(tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "sheet.png"
    r = run("assets", "preview", "categories=[mug,box]", "preview.per_row=2", "preview.size=64",
            f"preview.out={out}")
    assert r.returncode == 0, r.stderr
    img = iio.imread(out)
    assert img.shape[0] == 2 * 64 and img.shape[1] > 2 * 64
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # rendered, not blank


def test_assets_unknown_category_is_one_line_error():
    r = run("assets", "list", "categories=[teapot]")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "teapot" in r.stderr


def test_eval_of_an_unknown_split_is_a_one_line_error(expert_store, tiny_policy_cfg, tmp_path):
    from robopolicy.data.store import EpisodeStore
    from robopolicy.policies.io import instantiate_policy, save_policy
    from robopolicy.training.trainer import policy_shape_meta

    store = EpisodeStore.open(expert_store)
    policy = instantiate_policy(tiny_policy_cfg, policy_shape_meta(store, ["proprio", "state"]))
    policy.fit_normalizer(store.load(["proprio", "state", "action"]))
    path = save_policy(policy, tmp_path / "policy", tiny_policy_cfg)
    r = run("eval", "suite=partmanip", "suite.tasks.split=test9", "episodes=2",
            f"policy.path={path}", f"out={tmp_path / 'eval'}")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "unknown split 'test9'" in r.stderr and "test5" in r.stderr


def test_eval_of_an_unknown_split_in_splits_or_a_missing_policy_is_a_one_line_error(tmp_path):
    r = run("eval", "suite=partmanip", "policy=expert", "splits=[test1,test9]",
            f"out={tmp_path / 'a'}")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "unknown split 'test9'" in r.stderr
    r = run("eval", f"policy.path={tmp_path / 'nowhere'}", "episodes=1", f"out={tmp_path / 'b'}")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "nowhere" in r.stderr and "no such directory" in r.stderr
    r = run("eval", "policy=expert", "splits=[test1]", f"out={tmp_path / 'c'}")  # a pool suite
    assert r.returncode == 2 and "suite=partmanip" in r.stderr, r.stderr


@pytest.mark.parametrize("verb", ["eval", "collect"])
def test_an_unknown_backend_is_a_one_line_error_before_any_worker_starts(verb, tmp_path):
    args = (["policy=expert", "splits=[test1]", "episodes_per_cell=1"] if verb == "eval"
            else ["episodes=2"])
    r = run(verb, "suite=partmanip", "suite.env.backend=gazebo", *args, f"out={tmp_path / 'o'}")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "unknown backend 'gazebo' (known: mujoco, pybullet)" in r.stderr
    assert not list(tmp_path.rglob("episodes.jsonl")) and not list(tmp_path.rglob("*.zarr*"))
