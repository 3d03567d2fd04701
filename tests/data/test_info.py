"""`robopolicy dataset info` on a real store."""

import json
import subprocess
import sys

import numpy as np

from robopolicy.data.info import dataset_info, format_info
from robopolicy.data.store import EpisodeStore


def test_info_counts_what_the_store_holds(expert_store):
    info = dataset_info(expert_store)
    store = EpisodeStore.open(expert_store)
    assert info["episodes"] == store.n_episodes == 4
    assert info["steps"] == store.n_steps == int(store.episode_lengths.sum())
    assert info["successes"] == 4 and info["success_rate"] == 1.0
    assert info["classes"] == {"1": 4} and info["categories"] == {"mug": 4}
    assert info["keys"]["action"]["shape"] == [10] and "proprio" in info["keys"]
    assert info["disk_bytes"] > 0
    text = format_info(info)
    assert "episodes:   4" in text and "mug: 4" in text


def test_dataset_info_cli(expert_store, tmp_path):
    run = [sys.executable, "-m", "robopolicy.cli", "dataset", "info"]
    r = subprocess.run([*run, str(expert_store), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["episodes"] == 4
    r = subprocess.run([*run, str(tmp_path / "nope.zarr")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1


def test_robomimic_export_loads_in_robomimics_sequence_dataset(expert_store, tmp_path):
    import robomimic.utils.obs_utils as ObsUtils
    from robomimic.utils.dataset import SequenceDataset

    out = tmp_path / "demos.hdf5"
    r = subprocess.run([sys.executable, "-m", "robopolicy.cli", "dataset", "export",
                        str(expert_store), "--format", "robomimic", f"export.out={out}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    store = EpisodeStore.open(expert_store)
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": ["proprio", "state"]}})
    ds = SequenceDataset(hdf5_path=str(out), obs_keys=("proprio", "state"),
                         dataset_keys=("actions", "rewards", "dones"), seq_length=16,
                         pad_seq_length=True, frame_stack=2, pad_frame_stack=True,
                         hdf5_cache_mode="low_dim", filter_by_attribute=None)
    assert len(ds) == store.n_steps  # one sample per step, padded at the ends
    item = ds[0]
    # robomimic 0.3 returns seq_length + frame_stack - 1 steps of both, the first one padded
    assert item["actions"].shape == (17, 10)
    state_dim = store.shape_meta["obs"]["state"]["shape"][0]
    assert item["obs"]["proprio"].shape == (17, 17)
    assert item["obs"]["state"].shape == (17, state_dim)
    first = store.get_episode(0)
    np.testing.assert_allclose(item["actions"][1:], first["action"][:16], rtol=1e-6)
    np.testing.assert_allclose(item["obs"]["proprio"][1:], first["proprio"][:16], rtol=1e-6)
    r = subprocess.run([sys.executable, "-m", "robopolicy.cli", "dataset", "export",
                        str(expert_store), "--format", "lerobot"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "unknown format" in r.stderr


def test_robomimic_export_writes_env_metadata_robomimic_accepts(expert_store, tmp_path):
    """robomimic's own metadata functions read a gym-type env with our gymnasium id; building it
    needs robomimic's legacy-gym wrapper, so the file says how to evaluate instead."""
    import gymnasium
    import h5py
    import robomimic.envs.env_base as EB
    import robomimic.utils.env_utils as EnvUtils
    import robomimic.utils.file_utils as FileUtils

    from robopolicy.data.export import env_metadata, export_robomimic

    out = export_robomimic(expert_store, tmp_path / "demos.hdf5")
    env_meta = FileUtils.get_env_metadata_from_dataset(str(out))
    assert EnvUtils.get_env_type(env_meta=env_meta) == EB.EnvType.GYM_TYPE
    assert EnvUtils.check_env_type(EB.EnvType.GYM_TYPE, env_meta=env_meta)
    assert not EnvUtils.is_robosuite_env(env_meta=env_meta)
    assert env_meta["env_name"] == "robopolicy/MugLift-v0"  # the store's tasks are a pool
    store = EpisodeStore.open(expert_store)
    kwargs = env_meta["env_kwargs"]
    assert kwargs == store.env_config
    env = gymnasium.make(env_meta["env_name"], **kwargs).unwrapped
    assert env.shape_meta() == store.shape_meta  # the registered id and kwargs rebuild the recorded env
    with h5py.File(out) as f:
        assert "robopolicy eval policy.path=" in f["data"].attrs["robopolicy_eval"]
    catalog = env_metadata({"env": {}, "tasks": {"source": "catalog", "split": "train"}})
    assert catalog["env_name"] == "robopolicy/PartManip-v0" and catalog["type"] == 2
