"""Skill-level chunk policies: the skill-done head learns when a skill's goal holds from a real
store's recorded boundaries, works on both networks of DP and FM, round-trips save/load; old
task-level checkpoints still load; `robopolicy train` logs the done terms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robopolicy.data import SequenceSampler
from robopolicy.data.skills import SKILL_PARAMS_DIM, chain_from_meta, encode_skill, skill_chains
from robopolicy.errors import RobopolicyError
from robopolicy.policies import load_policy, save_policy
from robopolicy.policies.diffusion import DiffusionPolicy
from robopolicy.policies.flow_matching import FlowMatchingPolicy
from robopolicy.training.trainer import train
from tests.data.test_skill_sampler import SHAPE_META, write_skill_store

H, TO = 8, 2
SMALL_UNET = {"diffusion_step_embed_dim": 16, "down_dims": [16, 32], "n_groups": 4}
TINY_TRANSFORMER = {"n_layer": 1, "n_head": 2, "n_emb": 16, "p_drop_emb": 0.0, "p_drop_attn": 0.0}
SKILL = {"condition": "skill", "skill_done_head": True, "done_hidden_dim": 64}
REACH, FINISH = "Reach the middle.", "Go on to the end."


def reach_store(path, n: int = 8):
    """Episodes whose state x runs from 0 to 1 in 20-34 steps; skill 0 (reach the middle) ends at
    the first step with x >= 0.5, so whether it is done is a function of the state."""
    episodes = []
    for i in range(n):
        x = np.linspace(0.0, 1.0, 20 + 2 * i)
        episodes.append({"x": x, "starts": [0, int(np.argmax(x >= 0.5))],
                         "instructions": [REACH, FINISH]})
    return write_skill_store(path, episodes)


def skill_sampler(store, lag: int = 4) -> SequenceSampler:
    return SequenceSampler(store.load(["x", "action"]), store.episode_ends, H, TO, ["x"],
                           pad_before=TO - 1, pad_after=H - TO, skills=skill_chains(store),
                           done_lag_steps=lag)


def to_torch(batch: dict) -> dict:
    out = {k: torch.from_numpy(v) for k, v in batch.items() if k not in ("obs", "text")}
    return out | {"obs": {k: torch.from_numpy(v) for k, v in batch["obs"].items()},
                  "text": batch["text"]}


def make(cls=DiffusionPolicy, denoiser: str = "unet", **skill):
    torch.manual_seed(0)
    kwargs = {"noise_scheduler": {"num_train_timesteps": 20}} if cls is DiffusionPolicy else {}
    return cls(SHAPE_META, horizon=H, n_obs_steps=TO, n_action_steps=4, num_inference_steps=2,
               unet=SMALL_UNET, transformer=TINY_TRANSFORMER, denoiser=denoiser,
               text_encoder="minilm", **(SKILL | skill), **kwargs)


def test_done_head_learns_when_the_skill_goal_holds(tmp_path):
    store = reach_store(tmp_path / "reach.zarr")
    sampler = skill_sampler(store)
    batch = to_torch(sampler.sample_batch(np.arange(len(sampler))))
    done = batch["done"].numpy() > 0.5
    assert 20 < done.sum() < len(done) / 2  # both classes present; positives are the minority
    policy = make(done_loss_weight=5.0)
    policy.fit_normalizer(store.load(["x", "action"]))
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for _ in range(80):
        terms = policy.compute_loss(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    assert set(terms) == {"loss", "action_loss", "done_loss", "done_acc"}
    policy.eval()
    p = policy.predict_done(batch["obs"], batch["text"]).numpy()
    assert p.shape == (len(done),) and ((p >= 0) & (p <= 1)).all()
    # accurate on both classes: done windows (skill 0 with x past 0.5, incl. the lagged ones) and
    # not-done ones (skill 0 before it, and every window of the last skill)
    assert ((p > 0.5) == done)[done].mean() > 0.9
    assert ((p > 0.5) == done)[~done].mean() > 0.9
    # the instruction matters: the same late-reach states asked as the last skill are not done
    late = np.flatnonzero(done)
    p_other = policy.predict_done(batch["obs"], [FINISH] * len(done)).numpy()
    assert (p_other[late] < 0.5).mean() > 0.9


@pytest.mark.parametrize("cls", [DiffusionPolicy, FlowMatchingPolicy])
@pytest.mark.parametrize("denoiser", ["unet", "transformer"])
def test_done_head_on_both_policies_and_networks(tmp_path, cls, denoiser):
    store = reach_store(tmp_path / "reach.zarr", n=2)
    sampler = skill_sampler(store)
    batch = to_torch(sampler.sample_batch(np.arange(6)))
    policy = make(cls, denoiser)
    policy.fit_normalizer(store.load(["x", "action"]))
    terms = policy.compute_loss(batch)
    terms["loss"].backward()
    assert policy.done_head.net[0].weight.grad.abs().sum() > 0
    assert torch.isfinite(terms["done_loss"]) and 0 <= float(terms["done_acc"]) <= 1
    assert policy.predict_done(batch["obs"], batch["text"]).shape == (6,)
    assert policy.predict_action(batch["obs"], batch["text"]).shape == (6, 4, 2)
    # without labels a done head cannot train; without text it cannot condition
    with pytest.raises(RobopolicyError, match="'done' labels"):
        policy.compute_loss({k: v for k, v in batch.items() if k != "done"})
    with pytest.raises(RobopolicyError, match="one instruction per sample"):
        policy.predict_done(batch["obs"])


def test_lagged_windows_add_no_action_loss(tmp_path):
    """The lagged windows (action_weight 0) carry the next skill's actions: whatever those are,
    the action loss is the same (same noise: same seed, same batch size)."""
    store = reach_store(tmp_path / "reach.zarr", n=2)
    sampler = skill_sampler(store)
    batch = to_torch(sampler.sample_batch(np.arange(len(sampler))))
    lagged = batch["action_weight"] == 0
    assert lagged.any() and not lagged.all()
    policy = make(FlowMatchingPolicy)  # its target, action - noise, moves with the actions
    policy.fit_normalizer(store.load(["x", "action"]))
    changed = batch["action"].clone()
    changed[lagged] += 1000.0

    def loss(action: torch.Tensor, weight: torch.Tensor) -> float:
        torch.manual_seed(1)
        return float(policy.compute_loss({**batch, "action": action, "action_weight": weight})["action_loss"])

    weight, ones = batch["action_weight"], torch.ones_like(batch["action_weight"])
    assert loss(batch["action"], weight) == loss(changed, weight)
    assert loss(changed, ones) > 10 * loss(batch["action"], ones)  # unweighted, they would count


def test_skill_params_join_the_condition(tmp_path):
    meta = {"length": 12, "skill_starts": "[0, 5]", "skill_instructions": json.dumps([REACH, FINISH]),
            "chain": json.dumps([{"skill": "grasp", "params": {"part": "handle"}},
                                       {"skill": "move", "params": {"direction": "top"}}])}
    data = {"x": np.linspace(0, 1, 12, dtype=np.float32)[:, None],
            "action": np.zeros((12, 2), np.float32)}
    sampler = SequenceSampler(data, np.array([12]), H, TO, ["x"], pad_before=1, pad_after=H - TO,
                              skills=[chain_from_meta(meta, "episode 0")])
    batch = to_torch(sampler.sample_batch(np.arange(len(sampler))))
    for denoiser in ("unet", "transformer"):
        policy = make(denoiser=denoiser, skill_params=True)
        policy.fit_normalizer(data)
        assert torch.isfinite(policy.compute_loss(batch)["loss"])
        params = torch.from_numpy(np.stack([encode_skill("move", {"direction": "top"})] * 3))
        obs = {"x": batch["obs"]["x"][:3]}
        assert policy.predict_done(obs, [FINISH] * 3, skill_params=params).shape == (3,)
        assert policy.predict_action(obs, [FINISH] * 3, skill_params=params).shape == (3, 4, 2)
        with pytest.raises(RobopolicyError, match=f"skill_params \\[3, {SKILL_PARAMS_DIM}\\]"):
            policy.predict_done(obs, [FINISH] * 3)
    # next_skill: the vector holds the next skill's too, and only that width is accepted
    sampler = SequenceSampler(data, np.array([12]), H, TO, ["x"], pad_before=1, pad_after=H - TO,
                              skills=[chain_from_meta(meta, "episode 0")], next_skill=True)
    batch = to_torch(sampler.sample_batch(np.arange(len(sampler))))
    policy = make(skill_params=True, next_skill=True)
    policy.fit_normalizer(data)
    assert policy.uses_next_skill and torch.isfinite(policy.compute_loss(batch)["loss"])
    both = torch.cat([params, torch.zeros_like(params)], dim=1)
    assert policy.predict_action(obs, [FINISH] * 3, skill_params=both).shape == (3, 4, 2)
    with pytest.raises(RobopolicyError, match=f"skill_params \\[3, {2 * SKILL_PARAMS_DIM}\\]"):
        policy.predict_action(obs, [FINISH] * 3, skill_params=params)


@pytest.mark.parametrize(("skill", "match"), [
    ({"condition": "subtask"}, "condition 'subtask' is not one of"),
    ({"condition": "task"}, "skill_done_head: true needs condition: skill"),
    ({"done_lag_steps": -1}, "must be >= 0"),
    ({"next_skill": True}, "next_skill: true needs skill_params: true"),
    ({"skill_done_heads": True}, "skill_done_heads"),
    ({"condition": "skill", "skill_text": "plain"}, "skill_text 'plain' is not one of"),
    ({"condition": "task", "skill_done_head": False, "skill_text": "generic"},
     "skill_text: generic needs condition: skill"),
])
def test_bad_skill_options_are_one_line_errors(skill, match):
    with pytest.raises(RobopolicyError, match=match) as e:
        make(**skill)
    assert "\n" not in str(e.value)


def small_config(**skill) -> dict:
    return {"_target_": "robopolicy.policies.diffusion.DiffusionPolicy", "name": "diffusion_unet",
            "noise_scheduler": {"_target_": "diffusers.DDPMScheduler", "num_train_timesteps": 20},
            "horizon": H, "n_obs_steps": TO, "n_action_steps": 4, "num_inference_steps": 2,
            "unet": SMALL_UNET, "text_encoder": "minilm", **skill}


def test_a_policy_with_a_done_head_round_trips(tmp_path):
    store = reach_store(tmp_path / "reach.zarr", n=2)
    batch = to_torch(skill_sampler(store).sample_batch(np.arange(5)))
    policy = make()
    policy.fit_normalizer(store.load(["x", "action"]))
    policy.eval()
    path = save_policy(policy, tmp_path / "skill_policy", small_config(**SKILL))
    loaded = load_policy(path, expected="diffusion_unet")
    assert loaded.condition == "skill" and loaded.done_head is not None
    assert loaded.skill_text == "instruction"  # checkpoints without the key keep the recorded text
    torch.testing.assert_close(loaded.predict_done(batch["obs"], batch["text"]),
                               policy.predict_done(batch["obs"], batch["text"]))


def test_an_old_task_policy_checkpoint_still_loads(tmp_path):
    """A checkpoint written before skill policies: no skill keys in config.yaml, no done head
    weights; it loads as a task policy, and asking it for p(done) is a one-line error."""
    config = small_config()
    torch.manual_seed(0)
    old = DiffusionPolicy(SHAPE_META, **{k: v for k, v in config.items() if k[0] != "_" and k != "name"})
    old.fit_normalizer({"x": np.zeros((4, 1)), "action": np.zeros((4, 2))})
    path = save_policy(old, tmp_path / "old", config)
    assert "condition" not in (path / "config.yaml").read_text()
    loaded = load_policy(path)
    assert loaded.condition == "task" and loaded.done_head is None
    assert not any("done_head" in k for k in loaded.state_dict())
    with pytest.raises(RobopolicyError, match="has no skill-done head"):
        loaded.predict_done({"x": torch.zeros(1, TO, 1)}, ["reach"])


def test_train_logs_the_done_terms(tmp_path):
    store = reach_store(tmp_path / "reach.zarr", n=6)
    trainer = {"steps": 4, "batch_size": 16, "log_every": 2, "val_every": 2, "ckpt_every": 100,
               "warmup_steps": 0, "device": "cpu", "tensorboard": False}
    result = train(small_config(**SKILL, done_lag_steps=2), trainer, store.path, ["x"],
                   tmp_path / "run", val_ratio=0.34)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "action_loss", "done_loss", "done_acc", "val_loss", "val_done_loss",
            "val_done_acc"} <= set(rows[-1])
    assert load_policy(result.policy_dir).done_head is not None


def test_generic_skill_text_reaches_the_trainer(tmp_path):
    """The trainer reads each window's text as the policy's skill_text says: generic texts are
    rebuilt from the chain, which this store does not record (a one-line error naming it)."""
    store = reach_store(tmp_path / "reach.zarr", n=2)
    trainer = {"steps": 1, "batch_size": 4, "ckpt_every": 100, "warmup_steps": 0, "device": "cpu",
               "tensorboard": False}
    with pytest.raises(RobopolicyError, match=r"reach.zarr: episode 0: skill_text: generic") as e:
        train(small_config(**SKILL, skill_text="generic"), trainer, store.path, ["x"], tmp_path / "run")
    assert "\n" not in str(e.value)
