"""Shared fixtures. Sim tests use real MuJoCo; stores are real zarr folders under tmp_path."""

from __future__ import annotations

import pytest


def pytest_configure(config):
    # One torch thread: tests that run sim worker processes next to a torch parent would
    # otherwise oversubscribe the cores (OpenMP spin-waiting makes that 10x slower).
    import torch

    torch.set_num_threads(1)
    # sims.mujoco loads Triton before any GL library: a test module that imports pybullet or
    # mujoco first (test_library does) would otherwise make the first env segfault when run
    # without the modules that happen to import sims.mujoco earlier (e.g. `pytest -k ...`)
    import sims.mujoco  # noqa: F401


@pytest.fixture(scope="session")
def mug_env():
    """A state-only PartManipEnv (no cameras rendered), shared by tests that reset it."""
    from sims.partmanip.factory import make_env

    env = make_env()
    yield env
    env.close()


@pytest.fixture(scope="session")
def expert_store(tmp_path_factory):
    """A real demo store: 4 expert episodes (grasp the mug handle) collected by 2 workers."""
    from robopolicy.data.collect import CollectConfig, collect

    path = tmp_path_factory.mktemp("demos") / "demos.zarr"
    summary = collect(CollectConfig(ENV_CONFIG, TASKS, path, episodes=4, seed=0, workers=2))
    assert summary.kept == 4
    return path


ENV_CONFIG = {"obs_keys": ["proprio", "state", "skill_state"]}
TASKS = {"classes": [1], "parts": ["handle"], "instances": [0, 1], "horizon": 120}


@pytest.fixture(scope="session")
def tiny_policy_cfg():
    """A small, fast diffusion policy config (hydra dict) for pipeline tests."""
    from omegaconf import OmegaConf

    from robopolicy.commands.app import config_dir

    cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "policy" / "diffusion_unet.yaml"))
    cfg["unet"].update(down_dims=[16, 32], diffusion_step_embed_dim=16, n_groups=4)
    cfg["num_inference_steps"] = 3
    return cfg
