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


class Killed(Exception):
    pass


def test_resume_continues_bit_for_bit(expert_store, tiny_policy_cfg, tmp_path):
    """6 steps straight vs 3 + a kill at step 4 + resume: identical weights and losses."""
    from safetensors.torch import load_file

    cfg = {**TRAINER, "steps": 6, "ckpt_every": 3, "log_every": 1}
    keys = ["proprio", "state"]
    straight = train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "a")

    def kill_at_4(step, loss):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "b", callbacks=[kill_at_4])
    losses: list[float] = []
    resumed = train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "b", resume=True,
                    callbacks=[lambda step, loss: losses.append((step, loss))])
    assert [s for s, _ in losses] == [4, 5, 6]
    wa = load_file(straight.policy_dir / "model.safetensors")
    wb = load_file(resumed.policy_dir / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows[3:]] == [loss for _, loss in losses]


def test_resume_refuses_other_settings_or_a_missing_state(expert_store, tiny_policy_cfg, tmp_path):
    cfg = {**TRAINER, "steps": 2, "ckpt_every": 1}
    keys = ["proprio", "state"]
    with pytest.raises(RobopolicyError, match="no training state at .*train_state.pt"):
        train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path, resume=True)
    train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path)
    with pytest.raises(RobopolicyError, match=r"other settings \(trainer\)"):
        train(tiny_policy_cfg, {**cfg, "lr": 1e-2}, expert_store, keys, tmp_path, resume=True)


def test_a_diverging_run_stops_cleanly_keeping_its_last_good_checkpoint(expert_store, tiny_policy_cfg,
                                                                        tmp_path):
    """A huge learning rate blows the weights up: the first non-finite loss stops the run with
    a one-line error naming the step and the last checkpoint, which still loads."""
    cfg = {**TRAINER, "steps": 50, "lr": 1e30, "warmup_steps": 0, "ckpt_every": 1}
    with pytest.raises(RobopolicyError, match=r"non-finite loss .* at step \d+; last good checkpoint: .*latest") as e:
        train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path)
    assert "\n" not in str(e.value)
    step = int(str(e.value).split("at step ")[1].split(";")[0])
    meta = json.loads((tmp_path / "checkpoints" / "latest" / "meta.json").read_text())
    assert meta["step"] == step - 1
    load_policy(tmp_path / "checkpoints" / "latest", expected="diffusion_unet")


def test_a_text_conditioned_policy_trains_on_the_episode_instructions(expert_store, tiny_policy_cfg,
                                                                      tmp_path):
    """The expert store carries one instruction per episode; the saved policy needs text."""
    cfg = {**TRAINER, "steps": 4, "ckpt_every": 4}
    r = train({**tiny_policy_cfg, "text_encoder": "minilm"}, cfg, expert_store,
              ["proprio", "state"], tmp_path)
    policy = load_policy(r.policy_dir)
    obs = {"proprio": torch.zeros(2, 2, 17), "state": torch.zeros(2, 2, 17)}
    assert policy.predict_action(obs, ["Grasp the mug by its handle."] * 2).shape == (2, 8, 10)
    with pytest.raises(RobopolicyError, match="conditioned on text"):
        policy.predict_action(obs)


def test_a_store_without_instructions_cannot_train_a_text_policy(tiny_policy_cfg, tmp_path):
    from robopolicy.data.store import EpisodeStore

    store = EpisodeStore.create(tmp_path / "bare.zarr", {
        "obs": {"proprio": {"shape": [17], "type": "low_dim"}}, "action": {"shape": [10]}})
    store.add_episode({"proprio": np.zeros((20, 17), np.float32),
                       "action": np.zeros((20, 10), np.float32)})
    with pytest.raises(RobopolicyError, match=r"episodes \[0\] have no instruction"):
        train({**tiny_policy_cfg, "text_encoder": "minilm"}, TRAINER, store.path, ["proprio"],
              tmp_path / "run")
