"""Export an EpisodeStore to robomimic's HDF5 layout, so robomimic's own loaders and
algorithms read our demos:

    data/                      attrs: total (steps), env_args (JSON: our env config)
      demo_<i>/                attrs: num_samples, plus our episode metadata
        obs/<key>              (T, ...) per observation key
        next_obs/<key>         obs shifted by one step (the last one repeated)
        actions                (T, 10) absolute TCP targets
        rewards, dones         (T,) 1 on the last step of a successful episode
    mask/train, mask/valid     demo names of the episode-level split (as our sampler's)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from robopolicy.data.sampler import split_episodes
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


def export_robomimic(store_path: str | os.PathLike, out: str | os.PathLike, val_ratio: float = 0.1,
                     seed: int = 0) -> Path:
    """Write the store's episodes to `out` (.hdf5), written to a temporary file then renamed."""
    import h5py

    store = EpisodeStore.open(store_path)
    if store.n_episodes == 0:
        raise RobopolicyError(f"dataset {store.path}: no episodes to export")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    train, val = split_episodes(store.n_episodes, val_ratio, seed)
    obs_keys = list(store.shape_meta["obs"])
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "robopolicy.PartManipEnv", "type": 0,
                                             "env_kwargs": store.env_config})
        total = 0
        for i in range(store.n_episodes):
            ep = store.get_episode(i)
            meta = store.episode_meta(i)
            n = len(ep["action"])
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            for k, v in meta.items():
                demo.attrs[k] = v
            obs, next_obs = demo.create_group("obs"), demo.create_group("next_obs")
            for k in obs_keys:
                gz = "gzip" if ep[k].dtype == np.uint8 else None
                obs.create_dataset(k, data=ep[k], compression=gz)
                # the store keeps no observation after the last action: repeat the last one
                nxt = np.concatenate([ep[k][1:], ep[k][-1:]])
                next_obs.create_dataset(k, data=nxt, compression=gz)
            demo.create_dataset("actions", data=ep["action"].astype(np.float64))
            done = np.zeros(n, np.float64)
            done[-1] = 1.0
            demo.create_dataset("dones", data=done)
            demo.create_dataset("rewards", data=done * float(meta["success"]))
            total += n
        data.attrs["total"] = total
        mask = f.create_group("mask")
        mask.create_dataset("train", data=np.array([f"demo_{i}" for i in train], dtype="S"))
        mask.create_dataset("valid", data=np.array([f"demo_{i}" for i in val], dtype="S"))
    tmp.replace(out)
    return out
