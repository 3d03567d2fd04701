"""`robopolicy dataset calibrate`'s runner: expert episodes in real MuJoCo workers, merged into the
feasibility table; sims' layering (nothing under sims/ imports robopolicy)."""

import ast
import json
from pathlib import Path

from robopolicy.data.calibrate import calibrate
from sims.partmanip.calibration import calibration_jobs
from sims.partmanip.feasibility import infeasible_units, load_table


def test_calibrate_measures_units_in_mujoco_and_merges_the_table(tmp_path):
    out = tmp_path / "feasibility.json"
    out.write_text(json.dumps({"units": {"box/grasp/lid": [0, 3]}, "fingerprints": {"box": "x"}}))
    table = calibrate(["mug"], episodes=1, workers=1, out=out)
    assert table["units"]["mug/grasp/body"] == [1, 1]  # a mug lifted by its body: the easy case
    mug = {k: v for k, v in table["units"].items() if k.startswith("mug/")}
    assert len(mug) > 3 and all(n == 1 for _, n in mug.values())  # one episode per mug unit
    saved = load_table(out)
    assert saved["units"]["box/grasp/lid"] == [0, 3]  # rows of other categories are kept
    assert set(table["units"]) <= set(saved["units"]) and "mug" in saved["fingerprints"]
    assert "box/grasp/lid" in infeasible_units(saved)


def test_calibration_jobs_are_the_units_in_a_fixed_order():
    jobs = calibration_jobs(["mug"], episodes=2)
    assert jobs == calibration_jobs(["mug"], episodes=2)
    keys = [k for k, _ in jobs]
    assert "mug/grasp/body" in keys and all(k.startswith("mug/") for k in keys)
    assert all(job["category"] == "mug" for _, job in jobs)


def test_nothing_under_sims_imports_robopolicy():
    """At module level or inside functions: sims is usable without the learning package."""
    root = Path(__file__).resolve().parents[2] / "sims"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            offenders += [f"{path.relative_to(root.parent)}:{node.lineno} {n}" for n in names
                          if n == "robopolicy" or n.startswith("robopolicy.")]
    assert not offenders, offenders
