import json
import os
import subprocess
import sys

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
    obs = {k: torch.zeros(3, 2, *v["shape"]) for k, v in policy.shape_meta["obs"].items()}
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
    """6 steps straight vs 3 + a kill at step 5 (step 4 logged, not checkpointed) + resume:
    identical weights and losses, and metrics.jsonl holds each step once, as the straight run's."""
    from safetensors.torch import load_file

    cfg = {**TRAINER, "steps": 6, "ckpt_every": 3, "log_every": 1}
    keys = ["proprio", "state"]
    straight = train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "a")

    def kill_at_5(step, loss):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "b", callbacks=[kill_at_5])
    metrics = tmp_path / "b" / "metrics.jsonl"
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [1, 2, 3, 4]
    losses: list[float] = []
    resumed = train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path / "b", resume=True,
                    callbacks=[lambda step, loss: losses.append((step, loss))])
    assert [s for s, _ in losses] == [4, 5, 6]
    wa = load_file(straight.policy_dir / "model.safetensors")
    wb = load_file(resumed.policy_dir / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows[3:]] == [loss for _, loss in losses]
    resumed_rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in resumed_rows] == [(r["step"], r["loss"]) for r in rows]


def test_resume_refuses_other_settings_or_a_missing_state(expert_store, tiny_policy_cfg, tmp_path):
    cfg = {**TRAINER, "steps": 2, "ckpt_every": 1}
    keys = ["proprio", "state"]
    with pytest.raises(RobopolicyError, match="no training state at .*train_state.pt"):
        train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path, resume=True)
    train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path)
    with pytest.raises(RobopolicyError, match=r"other settings \(trainer\)"):
        train(tiny_policy_cfg, {**cfg, "lr": 1e-2}, expert_store, keys, tmp_path, resume=True)


class _OpensAFile:
    """Unpickling this calls open(marker, "w"): what a crafted train_state.pt could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_training_state_that_would_run_code_is_refused_unread(expert_store, tiny_policy_cfg,
                                                                tmp_path):
    """A train_state.pt whose unpickling would create a file: resume names the file in one
    line and the file is never created (the state is read with weights_only=True)."""
    cfg = {**TRAINER, "steps": 2, "ckpt_every": 1}
    keys = ["proprio", "state"]
    train(tiny_policy_cfg, cfg, expert_store, keys, tmp_path)
    state_path = tmp_path / "checkpoints" / "train_state.pt"
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "payload": _OpensAFile(marker)}, state_path)
    with pytest.raises(RobopolicyError, match=r"resume: .*train_state.pt is not a plain training state") as e:
        train(tiny_policy_cfg, {**cfg, "steps": 3}, expert_store, keys, tmp_path, resume=True)
    assert "\n" not in str(e.value) and str(state_path) in str(e.value)
    assert not marker.exists()


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
    obs = {k: torch.zeros(2, 2, *v["shape"]) for k, v in policy.shape_meta["obs"].items()}
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


def test_metrics_go_to_tensorboard(expert_store, tiny_policy_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_policy_cfg, {**TRAINER, "steps": 20}, expert_store, ["proprio", "state"], tmp_path,
          val_ratio=0.25)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [10, 20]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in losses] == pytest.approx([r["loss"] for r in rows])
    assert [e.step for e in events.Scalars("train/val_loss")] == [20]


@pytest.mark.slow
def test_rollouts_rank_the_top_k_checkpoints(expert_store, tiny_policy_cfg, tmp_path):
    """Two rollout evaluations on held-out seeds; keep_top_k=1 keeps the better step folder."""
    cfg = {**TRAINER, "steps": 40, "rollout_every": 20, "rollout_episodes": 2,
           "rollout_workers": 1, "rollout_envs_per_worker": 2, "keep_top_k": 1}
    train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rated = {r["step"]: r["rollout_success"] for r in rows if "rollout_success" in r}
    assert set(rated) == {20, 40}
    for step in (20, 40):
        report = json.loads((tmp_path / "rollouts" / f"step_{step:07d}" / "report.json").read_text())
        assert report["overall"]["episodes"] == 2
    top = json.loads((tmp_path / "checkpoints" / "top_k.json").read_text())
    best = max(rated, key=lambda s: (rated[s], s))
    assert [e["step"] for e in top] == [best]
    steps_kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    assert steps_kept == [f"step_{best:07d}"]
    load_policy(tmp_path / "checkpoints" / steps_kept[0], expected="diffusion_unet")


@pytest.mark.slow
def test_torchrun_gloo_trains_on_two_processes_and_saves_once(expert_store, tmp_path):
    """`torchrun --nproc_per_node 2`: DDP over gloo on CPU; rank 0 alone logs and saves."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(29500 + os.getpid() % 1000), "-m", "robopolicy.cli", "train",
           f"dataset.path={expert_store}", "trainer.steps=8", "trainer.batch_size=16",
           "trainer.log_every=2", "trainer.ckpt_every=4", "trainer.device=cpu",
           "policy.unet.down_dims=[16,32]", "policy.unet.diffusion_step_embed_dim=16",
           "policy.unet.n_groups=4", f"hydra.run.dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4, 6, 8]  # one writer
    assert "cpu x 2" in (run / "train.log").read_text()
    assert r.stdout.count("policy:") == 1  # only rank 0 reports
    policy = load_policy(run / "checkpoints" / "latest", expected="diffusion_unet")
    assert json.loads((run / "checkpoints" / "latest" / "meta.json").read_text())["step"] == 8
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_an_odd_batch_cannot_be_split_over_ranks():
    from robopolicy.training.distributed import Dist

    assert Dist(0, 2).local_batch(16) == 8
    with pytest.raises(RobopolicyError, match="batch_size 15 must be divisible by the number of processes \\(2\\)"):
        Dist(0, 2).local_batch(15)


def test_a_nan_in_a_batch_stops_training_before_it_reaches_the_weights(expert_store, tiny_policy_cfg,
                                                                        tmp_path, monkeypatch):
    """Step 5's batch carries a NaN action: the run stops there in one line, before the
    optimizer step, and the step-4 checkpoint it names loads with finite weights."""
    from robopolicy.data.sampler import SequenceSampler

    real = SequenceSampler.sample_batch
    calls = []

    def poisoned(self, idx):
        batch = real(self, idx)
        calls.append(1)
        if len(calls) == 5:
            batch["action"][0, 3, 0] = np.nan
        return batch

    monkeypatch.setattr(SequenceSampler, "sample_batch", poisoned)
    cfg = {**TRAINER, "steps": 20, "ckpt_every": 2, "val_every": 1000}
    with pytest.raises(RobopolicyError, match=r"non-finite loss \(nan\) at step 5; last good checkpoint: .*latest") as e:
        train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path)
    assert "\n" not in str(e.value)
    latest = tmp_path / "checkpoints" / "latest"
    assert json.loads((latest / "meta.json").read_text())["step"] == 4
    policy = load_policy(latest, expected="diffusion_unet")
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    state = torch.load(tmp_path / "checkpoints" / "train_state.pt", weights_only=True)
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_init_from_starts_from_a_trained_policy_and_refuses_another(expert_store, tiny_policy_cfg,
                                                                   tmp_path):
    """init_from: a 0-learning-rate run keeps the source's weights and normalizer exactly (a
    fresh run's differ); a policy of other shapes is a one-line error."""
    cfg = {**TRAINER, "steps": 20, "ckpt_every": 100}
    source = train(tiny_policy_cfg, cfg, expert_store, ["proprio", "state"], tmp_path / "a")
    frozen = {**cfg, "steps": 2, "lr": 0.0, "seed": 1}
    tuned = train(tiny_policy_cfg, frozen, expert_store, ["proprio", "state"], tmp_path / "b",
                  init_from=source.policy_dir)
    fresh = train(tiny_policy_cfg, frozen, expert_store, ["proprio", "state"], tmp_path / "c")
    ws, wt, wf = (load_policy(r.policy_dir).state_dict() for r in (source, tuned, fresh))
    assert all(torch.equal(ws[k], wt[k]) for k in ws)
    assert not all(torch.equal(ws[k], wf[k]) for k in ws)
    with pytest.raises(RobopolicyError, match=r"init_from .*do not fit .*tensors differ"):
        train(tiny_policy_cfg, frozen, expert_store, ["proprio", "state", "skill_state"],
              tmp_path / "d", init_from=source.policy_dir)
    with pytest.raises(RobopolicyError, match="no such directory"):
        train(tiny_policy_cfg, frozen, expert_store, ["proprio", "state"], tmp_path / "e",
              init_from=tmp_path / "missing")
