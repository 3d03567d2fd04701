"""Export an EpisodeStore to robomimic's HDF5 layout, so robomimic's own loaders and
algorithms read our demos:

    data/                      attrs: total (steps), env_args (JSON, robomimic's env metadata),
                               robopolicy_eval (how to evaluate a policy trained on the file)
      demo_<i>/                attrs: num_samples, plus our episode metadata
        obs/<key>              (T, ...) per observation key
        next_obs/<key>         obs shifted by one step (the last one repeated)
        actions                (T, 10) absolute TCP targets
        rewards, dones         (T,) 1 on the last step of a successful episode
    mask/train, mask/valid     demo names of the episode-level split (as our sampler's)

``env_args`` is robomimic's env metadata: ``type`` 2 (robomimic's ``EnvType.GYM_TYPE``),
``env_name`` the suite's gymnasium id and ``env_kwargs`` the store's env config (``env`` and
``tasks``). robomimic 0.3 builds a gym-type env with the legacy ``gym`` package, which cannot
make a gymnasium env, so its rollouts do not run on our suites; a robomimic-trained policy is
evaluated through ``robopolicy eval`` instead (:data:`EVAL_HINT`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from robopolicy.data.sampler import split_episodes
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError

#: robomimic's ``EnvType.GYM_TYPE`` (robomimic.envs.env_base): a gym-registered env.
ROBOMIMIC_GYM_TYPE = 2
#: The gymnasium id of each suite, by its task source (``suite.tasks.source``): the catalog is
#: the part-manipulation suite, a pool the mug-lift set-up.
GYM_IDS = {"catalog": "robopolicy/PartManip-v0", "pool": "robopolicy/MugLift-v0"}
EVAL_HINT = ("robomimic 0.3 builds gym-type envs with the legacy gym package, which cannot make "
             "this gymnasium env: train with `robopolicy train policy=bc_rnn dataset.path=<store>` "
             "(or policy=bc; robomimic's own update) and evaluate with `robopolicy eval "
             "policy.path=<run>/checkpoints/latest`")


def env_metadata(env_config: dict) -> dict:
    """robomimic's ``env_args`` for a store recorded with ``env_config`` (``{"env", "tasks"}``)."""
    source = (env_config.get("tasks") or {}).get("source", "pool")
    if source not in GYM_IDS:
        raise RobopolicyError(f"dataset export: unknown task source {source!r} in the store's "
                              f"env config (known: {', '.join(GYM_IDS)})")
    return {"env_name": GYM_IDS[source], "type": ROBOMIMIC_GYM_TYPE, "env_kwargs": env_config}


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
        data.attrs["env_args"] = json.dumps(env_metadata(store.env_config))
        data.attrs["robopolicy_eval"] = EVAL_HINT
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
