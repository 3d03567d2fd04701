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


@pytest.fixture(scope="session")
def image_store(tmp_path_factory):
    """1 expert episode with 64-px images (mug 0, grasp its body; 30 steps): agentview RGB,
    depth and target-part mask, wrist RGB, and the agentview's object point cloud."""
    root = tmp_path_factory.mktemp("augment_img")
    out = root / "demos.zarr"
    r = subprocess.run(
        [sys.executable, "-m", "robopolicy.cli", "collect", "suite=mug_lift",
         "suite.tasks.classes=[1]", "suite.tasks.categories=[mug]", "suite.tasks.parts=[]",
         "suite.tasks.instances=[0]", "episodes=1", "workers=1", f"out={out}",
         "suite.env.obs_keys=[proprio,pcd,rgb.agentview,rgb.wrist,depth.agentview,"
         "part_mask.agentview]", "suite.env.image_size=[64,64]",
         f"hydra.run.dir={root / 'run'}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "success: 1/1" in r.stdout
    return out


# a small, quick colour fit (64 px, sparse surfaces, few views and iterations), cached once
SMALL_FIT = {"iterations": 15, "train_views": 4, "heldout_views": 1, "size": 64,
             "per_m2": 5000.0, "object_per_m2": 40000.0}


@pytest.fixture(scope="session")
def small_fit_dir(tmp_path_factory):
    """A fit cache holding mug 0's small fit."""
    from robopolicy.augment.fit import FitConfig
    from robopolicy.augment.fit_cache import fitted_instance

    cache = tmp_path_factory.mktemp("fit_cache")
    fitted_instance("mug", 0, FitConfig(**SMALL_FIT), cache_dir=cache)
    return cache
