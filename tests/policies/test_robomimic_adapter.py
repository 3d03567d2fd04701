"""Robomimic's BC and BC-RNN behind our Policy contract, trained by robomimic's own update on
a real (synthetic) store, saved and loaded as policy directories, run by our rollout loop."""

import json

import numpy as np
import pytest
import torch

from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.policies.io import instantiate_policy, load_policy, save_policy
from robopolicy.training.robomimic_trainer import train_robomimic

SHAPE_META = {"obs": {"proprio": {"shape": [17], "type": "low_dim"},
                      "state": {"shape": [20], "type": "low_dim"}},
              "action": {"shape": [10]}}
OBS_KEYS = ["proprio", "state"]
TRAINER = {"steps": 40, "batch_size": 32, "ckpt_every": 20, "val_every": 20, "log_every": 10,
           "device": "cpu", "seed": 0}
BC = {"name": "bc", "_target_": "robopolicy.policies.robomimic_adapter.BCPolicy",
      "actor_layer_dims": [64, 64], "lr": 1e-3, "gmm": False, "gmm_modes": 5}
BC_RNN = {"name": "bc_rnn", "_target_": "robopolicy.policies.robomimic_adapter.BCRNNPolicy",
          "rnn_horizon": 5, "rnn_hidden_dim": 32, "rnn_num_layers": 2, "rnn_type": "LSTM",
          "actor_layer_dims": [], "lr": 1e-3, "gmm": False, "gmm_modes": 5}


def _episode(rng, length):
    """Smooth obs; actions a fixed function of the current obs, in data units unlike [-1, 1]
    (positions around 0.5 m with a 10 cm spread, a 0/1 gripper)."""
    t = np.arange(length)[:, None] / length
    state = rng.normal(size=20) + t * rng.normal(size=20)
    proprio = np.sin(state[:, :17] + t)
    x = np.concatenate([proprio, state], 1)
    w = np.random.default_rng(99).normal(size=(37, 10)) / 6
    a = np.tanh(x @ w)
    action = np.concatenate([0.5 + 0.1 * a[:, :3], a[:, 3:9], (a[:, 9:] > 0)], 1)
    return {"proprio": proprio.astype(np.float32), "state": state.astype(np.float32),
            "action": action.astype(np.float32)}


def make_store(path, episodes, length=30, seed=0):
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path, SHAPE_META, {"obs_keys": OBS_KEYS})
    for i in range(episodes):
        store.add_episode(_episode(rng, length), {"success": True, "seed": i, "source": "expert"})
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("demos") / "demos.zarr", episodes=6)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _windows(data, n_obs_steps):
    """Each step's observation window (the first frame repeated at the start), as the pool builds."""
    n = len(data["action"])
    idx = np.clip(np.arange(n)[:, None] + np.arange(-n_obs_steps + 1, 1), 0, n - 1)
    return {k: torch.from_numpy(data[k][idx]) for k in OBS_KEYS}


@pytest.mark.parametrize("cfg", [BC, BC_RNN], ids=["bc", "bc_rnn"])
def test_trains_with_robomimic_and_loads_as_a_policy(cfg, store, tmp_path):
    r = train_robomimic(cfg, TRAINER, store, OBS_KEYS, tmp_path, val_ratio=0.2)
    rows = _rows(tmp_path)
    assert [row["step"] for row in rows] == [10, 20, 30, 40]
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"]  # mean losses of steps 1-10 vs 31-40
    assert "val_loss" in rows[1] and np.isfinite(rows[1]["val_loss"])
    assert (tmp_path / "robomimic.hdf5").is_file()  # the export robomimic's dataset read

    policy = load_policy(r.policy_dir, expected=cfg["name"])
    meta = json.loads((r.policy_dir / "meta.json").read_text())
    assert meta["step"] == 40 and meta["obs_keys"] == OBS_KEYS and meta["trained_with"] == "robomimic"
    assert type(policy.algo).__name__ == ("BC" if cfg is BC else "BC_RNN")
    data = EpisodeStore.open(store).get_episode(0)
    obs = {k: v[:7] for k, v in _windows(data, policy.n_obs_steps).items()}
    action = policy.predict_action(obs)
    assert action.shape == (7, 1, 10)
    # data units: positions near 0.5 m, not the normalized [-1, 1] range around 0
    assert (action[..., :3] - 0.5).abs().max() < 0.2


def test_bc_overfits_four_demonstrations(tmp_path):
    path = make_store(tmp_path / "four.zarr", episodes=4)
    cfg = {**BC, "actor_layer_dims": [256, 256]}
    r = train_robomimic(cfg, {**TRAINER, "steps": 400, "log_every": 100, "ckpt_every": 1000},
                        path, OBS_KEYS, tmp_path / "run")
    policy = load_policy(r.policy_dir, expected="bc")
    store = EpisodeStore.open(path)
    errors = []
    for i in range(store.n_episodes):
        data = store.get_episode(i)
        predicted = policy.predict_action(_windows(data, 1))[:, 0].numpy()
        errors.append(np.abs(predicted - data["action"]))
    error = np.concatenate(errors)
    assert error[:, :3].mean() < 0.005  # metres, of a 0.2 m range
    assert error[:, 9].mean() < 0.05  # gripper 0/1


def test_bc_rnn_carries_its_hidden_state_like_robomimic_get_action(store):
    policy = instantiate_policy({**BC_RNN, "rnn_horizon": 4}, SHAPE_META)
    data = EpisodeStore.open(store).get_episode(1)
    policy.fit_normalizer(data)
    policy.eval()
    windows = _windows(data, 2)
    ours = [policy.predict_action({k: v[t:t + 1] for k, v in windows.items()})[0, 0]
            for t in range(11)]

    algo = policy.algo  # robomimic's own rollout: get_action with its hidden state and counter
    algo.set_eval()
    algo.reset()
    with torch.no_grad():
        theirs = [policy.normalizer.unnormalize("action", algo.get_action(
            {k: policy.normalizer.normalize(k, torch.from_numpy(data[k][t:t + 1])) for k in OBS_KEYS}))[0]
            for t in range(11)]
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs))

    # the state is carried: the same window gives another action mid-episode than at the start
    first = {k: v[0:1] for k, v in windows.items()}
    step3 = {k: v[3:4] for k, v in windows.items()}
    policy.reset()
    fresh = policy.predict_action(step3)  # a row continuing nothing starts from zero
    assert not torch.allclose(fresh[0, 0], ours[3])
    policy.reset()
    torch.testing.assert_close(policy.predict_action(first)[0, 0], ours[0])


class _FakePool:
    """The rollout pool's interface over in-process toy envs whose next observation depends on
    the action taken; episode lengths differ, so slots restart at different times."""

    def __init__(self, n_slots, lengths):
        self.n_slots, self.lengths = n_slots, lengths
        self.envs = {}
        self.actions = {}  # episode -> actions taken

    def _obs(self, s):
        x = self.envs[s]["x"]
        return {"proprio": np.tanh(x[:17]).astype(np.float32), "state": x.astype(np.float32)}

    def reset(self, items):
        out = []
        for s, task, *_ in items:  # (slot, task, record video, record states)
            x = np.random.default_rng(task["init_seed"]).normal(size=20)
            self.envs[s] = {"x": x, "t": 0, "episode": task["init_seed"]}
            self.actions[task["init_seed"]] = []
            out.append((s, self._obs(s), {"instruction": ""}))
        return out, []  # no worker lost

    def step(self, items):
        out = []
        for s, action in items:
            env = self.envs[s]
            self.actions[env["episode"]].append(np.asarray(action))
            env["x"] = 0.9 * env["x"] + 0.1 * np.resize(action, 20)
            env["t"] += 1
            done = env["t"] >= self.lengths[env["episode"]]
            info = {"success": False, "completion": 0.0}
            out.append((s, self._obs(s), 0.0, done, False, info,
                        {"action": np.asarray(action, np.float32)}))
        return out, []


@pytest.mark.parametrize("gmm", [False, True], ids=["l2", "gmm"])
def test_bc_rnn_in_the_rollout_loop_acts_per_env(gmm, store, tmp_path):
    """Batched with other envs that start and stop at other times, each episode gets exactly
    the actions it gets alone."""
    from robopolicy.evaluation.rollout import EpisodeSpec, PolicyRunner, run_episodes

    torch.manual_seed(0)
    policy = instantiate_policy({**BC_RNN, "gmm": gmm}, SHAPE_META)
    policy.fit_normalizer(EpisodeStore.open(store).load(["proprio", "state", "action"]))
    lengths = {0: 9, 1: 4, 2: 13, 3: 6, 4: 7}
    episodes = [EpisodeSpec(i, {"task_id": f"t{i}", "task_class": 1, "category": "mug",
                                "instance_id": 0, "init_seed": i, "split": "test",
                                "instruction": ""}) for i in lengths]
    taken = {}
    for n_slots in (1, 3):
        pool = _FakePool(n_slots, lengths)
        policy.reset()
        run_episodes(PolicyRunner(policy, "cpu", seed=0), pool, episodes, tmp_path / f"s{n_slots}")
        taken[n_slots] = pool.actions
    for i in lengths:
        assert len(taken[3][i]) == lengths[i]
        np.testing.assert_allclose(np.stack(taken[3][i]), np.stack(taken[1][i]), atol=1e-5)


def test_checkpoints_do_not_load_as_another_policy(store, tmp_path, tiny_policy_cfg):
    bc = instantiate_policy(BC, SHAPE_META)
    bc.fit_normalizer(EpisodeStore.open(store).load(["proprio", "state", "action"]))
    bc_dir = save_policy(bc, tmp_path / "bc", BC)
    dp = instantiate_policy(tiny_policy_cfg, SHAPE_META)
    dp.fit_normalizer(EpisodeStore.open(store).load(["proprio", "state", "action"]))
    dp_dir = save_policy(dp, tmp_path / "dp", tiny_policy_cfg)

    for path, expected in ((bc_dir, "diffusion_unet"), (bc_dir, "bc_rnn"), (dp_dir, "bc")):
        with pytest.raises(RobopolicyError) as err:
            load_policy(path, expected=expected)
        assert len(str(err.value).splitlines()) == 1 and f"expected '{expected}'" in str(err.value)

    # a bc directory whose config names another class fails on the mismatch, in one line
    (bc_dir / "config.yaml").write_text((dp_dir / "config.yaml").read_text())
    with pytest.raises(RobopolicyError, match="does not match meta policy 'bc'") as err:
        load_policy(bc_dir)
    assert len(str(err.value).splitlines()) == 1


def test_bc_rnn_weights_round_trip_without_shared_tensors(store, tmp_path):
    """Robomimic's RNN nets register one module under two names; only one is saved."""
    policy = instantiate_policy({**BC_RNN, "gmm": True}, SHAPE_META)
    policy.fit_normalizer(EpisodeStore.open(store).load(["proprio", "state", "action"]))
    loaded = load_policy(save_policy(policy, tmp_path / "p", {**BC_RNN, "gmm": True}))
    saved = policy.state_dict()
    assert len({v.data_ptr() for v in saved.values()}) == len(saved)
    every = dict(policy.named_parameters(remove_duplicate=False))
    assert len(saved) < len(every) + len(dict(policy.named_buffers()))  # an alias was left out
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, saved[k])


def test_train_command_dispatches_robomimic_policies():
    from robopolicy.commands.train import trains_with_robomimic

    assert trains_with_robomimic(BC) and trains_with_robomimic(BC_RNN)
    assert not trains_with_robomimic({"_target_": "robopolicy.policies.diffusion.DiffusionPolicy"})
    with pytest.raises(RobopolicyError, match="'no.such.Class' is no registered policy class"):
        trains_with_robomimic({"_target_": "no.such.Class"})


def test_image_observations_are_refused_in_one_line():
    meta = {**SHAPE_META, "obs": {**SHAPE_META["obs"],
                                  "rgb.agentview": {"shape": [8, 8, 3], "type": "rgb"}}}
    with pytest.raises(RobopolicyError, match="low_dim observations only; shape_meta has rgb.agentview"):
        instantiate_policy(BC, meta)


@pytest.mark.slow
def test_robopolicy_train_runs_bc_rnn_through_robomimic(store, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "robopolicy.cli", "train", "policy=bc_rnn",
                        f"dataset.path={store}", "dataset.obs_keys=[proprio,state]",
                        "trainer.steps=10", "trainer.batch_size=16",
                        "trainer.log_every=5", "policy.rnn_hidden_dim=16",
                        f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "final loss" in r.stdout and "ROBOMIMIC" not in r.stdout
    assert [row["step"] for row in _rows(tmp_path)] == [5, 10]
    assert load_policy(tmp_path / "checkpoints" / "latest", expected="bc_rnn").rnn_horizon == 10
