import json

import numpy as np
import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import load_policy
from robopolicy.training.trainer import train

TRAINER = {"steps": 60, "batch_size": 32, "lr": 3e-3, "weight_decay": 1e-6, "betas": [0.9, 0.999],
           "warmup_steps": 5, "grad_clip": 1.0, "ema_power": 0.75, "ckpt_every": 20,
           "val_every": 20, "log_every": 10, "device": "cpu", "seed": 0}


def test_loss_falls_and_a_loadable_policy_is_saved(expert_store, tiny_policy_cfg, tmp_path):
    r = train(tiny_policy_cfg, TRAINER, expert_store, ["proprio", "state"], tmp_path, val_ratio=0.25)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 10 and rows[-1]["step"] == 60
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]  # mean losses of steps 1-10 vs 51-60
    assert any("val_loss" in row for row in rows)
    policy = load_policy(r.policy_dir, expected="diffusion_unet")
    meta = json.loads((r.policy_dir / "meta.json").read_text())
    assert meta["step"] == 60 and meta["obs_keys"] == ["proprio", "state"]
    obs = {"proprio": torch.zeros(3, 2, 17), "state": torch.zeros(3, 2, 17)}
    assert policy.predict_action(obs).shape == (3, 8, 10)


def test_missing_observation_key_is_a_clear_error(expert_store, tiny_policy_cfg, tmp_path):
    with pytest.raises(RobopolicyError, match="rgb.agentview"):
        train(tiny_policy_cfg, TRAINER, expert_store, ["proprio", "rgb.agentview"], tmp_path)


def test_same_seed_same_weights(expert_store, tiny_policy_cfg, tmp_path):
    cfg = {**TRAINER, "steps": 6, "ckpt_every": 100}
    a = train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path / "a")
    b = train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path / "b")
    wa = load_policy(a.policy_dir).state_dict()
    wb = load_policy(b.policy_dir).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not np.isnan(a.final_loss)


def test_every_frame_is_a_current_observation(expert_store, tiny_policy_cfg):
    from robopolicy.data.store import EpisodeStore
    from robopolicy.policies.io import instantiate_policy
    from robopolicy.training.trainer import training_sampler

    store = EpisodeStore.open(expert_store)
    policy = instantiate_policy(tiny_policy_cfg, store.shape_meta)
    data = store.load(["proprio", "state", "action"])
    sampler = training_sampler(data, store.episode_ends, policy, ["proprio", "state"],
                               np.arange(store.n_episodes))
    current = {int(sampler.window_indices(i)[policy.n_obs_steps - 1]) for i in range(len(sampler))}
    assert current == set(range(store.n_steps))  # the last frames of each episode included
    # a window at an episode's end holds the final action
    last = len(sampler) - 1
    np.testing.assert_array_equal(sampler[last]["action"][-1], data["action"][store.n_steps - 1])
