"""A real demo store for the augmentation tests, collected with the CLI (box: a hinged lid, and
mug; grasp and grasp-then-move)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def box_mug_store(tmp_path_factory):
    """4 expert episodes (seeds 0-3: box class 3, box class 1, mug class 1, mug class 3)."""
    root = tmp_path_factory.mktemp("augment_src")
    out = root / "demos.zarr"
    r = subprocess.run(
        [sys.executable, "-m", "robopolicy.cli", "collect", "suite=mug_lift",
         "suite.tasks.classes=[1,3]", "suite.tasks.categories=[mug,box]", "suite.tasks.parts=[]",
         "suite.tasks.instances=[0]", "episodes=4", "workers=1", f"out={out}",
         f"hydra.run.dir={root / 'run'}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "success: 4/4" in r.stdout
    return out
