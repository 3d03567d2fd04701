"""`robopolicy eval perturb=<kind>`: configs, CLI errors and help, and the run's own report
names (never mixed with the nominal results)."""

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from robopolicy.commands.app import config_dir
from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
from robopolicy.evaluation.rollout import evaluate_policy, evaluate_splits
from sims.partmanip.perturb import PERTURBATIONS, make_perturbation
from tests.conftest import ENV_CONFIG

TASKS = {"classes": [1], "parts": ["handle"], "instances": [0], "horizon": 120}
LIGHTING = {"kind": "lighting"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_each_perturb_config_is_its_kind_with_the_default_ranges():
    files = {p.stem: p for p in (config_dir() / "perturb").glob("*.yaml")}
    assert set(files) == set(PERTURBATIONS)
    for kind, path in files.items():
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        assert cfg["kind"] == kind
        assert make_perturbation(cfg) == PERTURBATIONS[kind](), path  # the yaml says what runs


def test_help_lists_the_kinds_and_an_unknown_kind_is_one_line():
    r = _cli("eval", "--help")
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("== Perturbation test splits")[1].split("== Planners")[0]
    assert [ln.split()[0] for ln in section.splitlines()[1:] if ln.strip()] == sorted(PERTURBATIONS)
    r = _cli("eval", "suite=partmanip", "policy=expert", "perturb=fog")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: eval: perturb=fog: unknown kind (known: appearance, camera, lighting, pose_wide)"]


def test_from_hydra_puts_the_perturbation_into_the_env_config():
    base = {"policy": {"path": "expert"}, "suite": {"env": dict(ENV_CONFIG), "tasks": TASKS},
            "executor": {"kind": "process", "workers": 1, "envs_per_worker": 1},
            "episodes": 1, "seed": 0, "videos": 0, "device": "cpu"}
    run = EvalConfig.from_hydra({**base, "perturb": {"kind": "camera", "roll_deg": 2.0}}, "out")
    assert run.perturb == "camera" and run.env["perturb"]["roll_deg"] == 2.0
    assert EvalConfig.from_hydra({**base, "perturb": None}, "out").perturb is None
    both = {**base, "suite": {"env": {**ENV_CONFIG, "perturb": "camera"}, "tasks": TASKS}}
    with pytest.raises(RobopolicyError, match="perturb and suite.env.perturb are both set"):
        EvalConfig.from_hydra({**both, "perturb": LIGHTING}, "out")
    with pytest.raises(RobopolicyError, match="suite.env: perturb lighting: unknown Lighting keys"):
        EvalConfig.from_hydra({**base, "perturb": {**LIGHTING, "glow": 1}}, "out")


def _run(out, env, **kw) -> EvalConfig:
    return EvalConfig("expert", env, TASKS, out, episodes=2, seed=0,
                      executor=ExecutorConfig("process", 1, 2), **kw)


def test_a_perturbed_run_names_its_perturbation_and_keeps_out_of_nominal_folders(tmp_path):
    out = tmp_path / "lighting"
    report = evaluate_policy(_run(out, {**ENV_CONFIG, "perturb": LIGHTING}))
    assert report["perturb"] == "lighting"
    assert report["overall"]["success_rate"] == 1.0  # the expert reads the state, not the image
    assert json.loads((out / "report.json").read_text())["perturb"] == "lighting"
    assert (out / "report.md").read_text().startswith("# Evaluation report (perturbation: lighting)")
    assert json.loads((out / "run.json").read_text())["perturb"] == "lighting"
    with pytest.raises(RobopolicyError, match="choose a new `out`"):
        evaluate_policy(_run(out, ENV_CONFIG))  # nominal episodes would resume as "finished"


@pytest.mark.slow
def test_perturbed_splits_report_under_their_own_key_and_folder(tmp_path):
    tasks = {"source": "catalog", "split": "train", "train_episodes": 2000, "classes": [1]}
    run = EvalConfig("expert", {**ENV_CONFIG, "perturb": {"kind": "pose_wide"}}, tasks, tmp_path,
                     splits=("test1",), episodes_per_cell=1, executor=ExecutorConfig("process", 2, 1))
    report = evaluate_splits(run)
    assert list(report["by_split"]) == ["test1-pose_wide"] and report["perturb"] == "pose_wide"
    group = tmp_path / "test1-pose_wide"
    lines = (group / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == report["overall"]["episodes"] >= 5  # one per category of class 1
    assert report["overall"]["success_rate"] >= 0.7  # beyond the training range, still solvable
    assert (group / "success.png").exists() and not (tmp_path / "test1").exists()
    assert "## test1-pose_wide" in (tmp_path / "report.md").read_text()
