"""The learned skill planner: its training data from a real store, a short training run that
learns the store's chain and round-trips through its directory, and one-line errors for a
missing directory or a directory of another kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.planners import make_planner
from robopolicy.planners.data import (
    DONE_CLASS,
    IGNORE,
    START_TOKEN,
    PlannerBatcher,
    planner_episodes,
)
from robopolicy.planners.grammar import DONE, SkillCall
from robopolicy.planners.vocabulary import ObjectInfo
from robopolicy.training.config import TrainConfig

PLANNER_CFG = {"name": "skill_planner", "_target_": "robopolicy.planners.network.SkillPlannerNet",
               "d_model": 32, "n_layers": 1, "n_heads": 2, "use_image": False, "dropout": 0.0,
               "pointer": "context"}


@pytest.fixture(scope="module")
def trained_planner(expert_store, tmp_path_factory):
    from robopolicy.training.planner_trainer import train_planner

    out = tmp_path_factory.mktemp("planner")
    trainer = {"steps": 60, "batch_size": 4, "lr": 3e-3, "warmup_steps": 5, "log_every": 20,
               "val_every": 1000, "ckpt_every": 1000, "tensorboard": False, "device": "cpu"}
    # mirrored draws go through the trainer (grasp-the-handle chains have no side to swap)
    config = {**PLANNER_CFG, "mirror_prob": 0.5}
    result = train_planner(TrainConfig.build(config, trainer, expert_store, [], out))
    return result


def test_each_episode_becomes_one_sequence_of_queries(expert_store):
    episodes = planner_episodes(EpisodeStore.open(expert_store), images=False)
    assert len(episodes) == 4
    ep = episodes[0]
    assert ep.chain == [SkillCall("grasp", {"part": "handle"})]
    assert "handle" in ep.parts and "left" in ep.parts  # semantic, then spatial parts
    from robopolicy.models.text_encoder import TextEncoder

    batch = PlannerBatcher(TextEncoder())(episodes[:2])
    # query 0 (start token) answers grasp(handle); query 1 (after it) answers done
    assert batch["in_skill"][0].tolist() == [START_TOKEN, 0]
    assert batch["skill"][0].tolist() == [0, DONE_CLASS]
    assert batch["part"][0].tolist() == [ep.parts.index("handle"), IGNORE]
    assert batch["direction"][0].tolist() == [IGNORE, IGNORE]
    # the pointer's evidence: "handle" is the part most similar to some instruction token
    sims = batch["part_sim"][0, :len(ep.parts)].max(dim=1).values
    assert ep.parts[int(sims.argmax())] == "handle"


def test_a_store_without_the_camera_is_a_one_line_error(expert_store):
    with pytest.raises(RobopolicyError, match="no 'rgb.agentview'") as e:
        planner_episodes(EpisodeStore.open(expert_store), images=True)
    assert "\n" not in str(e.value)


def test_trained_planner_answers_the_chain_then_done(trained_planner, expert_store):
    planner = make_planner({"name": "learned", "path": str(trained_planner.policy_dir)})
    assert planner.obs_keys == ()  # trained without the camera
    meta = EpisodeStore.open(expert_store).episode_meta(0)
    info = ObjectInfo("mug", ("handle", "body", "contents"))
    planner.reset("test/0")
    first = planner.plan(meta["instruction"], {}, info)
    assert first == [SkillCall("grasp", {"part": "handle"})]
    assert planner.next_skill(first, {}) == DONE
    assert planner.calls == 2
    # spawned planners share the network and keep their own episode
    other = planner.spawn()
    with pytest.raises(RobopolicyError, match="before plan"):
        other.next_skill([], {})


def test_planner_directory_round_trips_the_weights(trained_planner):
    from robopolicy.planners.learned import load_planner_net

    a = load_planner_net(trained_planner.policy_dir)
    b = load_planner_net(trained_planner.policy_dir)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert any(v.abs().sum() > 0 for v in a.state_dict().values())


def test_missing_or_foreign_planner_directory_is_a_one_line_error(tmp_path, trained_planner):
    with pytest.raises(RobopolicyError, match="no such directory") as e:
        make_planner({"name": "learned", "path": str(tmp_path / "nope")})
    assert "\n" not in str(e.value)
    # a policy directory of another kind (a diffusion policy's files) is refused by its meta
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "meta.json").write_text('{"policy": "diffusion_unet"}')
    (foreign / "config.yaml").write_text("_target_: robopolicy.policies.diffusion.DiffusionPolicy\n")
    with pytest.raises(RobopolicyError, match="holds a 'diffusion_unet' policy, not a learned "
                       "planner") as e:
        make_planner({"name": "learned", "path": str(foreign)})
    assert "\n" not in str(e.value)


def test_teacher_forced_accuracy_is_perfect_after_training(trained_planner, expert_store):
    from robopolicy.models.text_encoder import TextEncoder
    from robopolicy.planners.learned import load_planner_net
    from robopolicy.training.planner_trainer import evaluate

    net = load_planner_net(trained_planner.policy_dir)
    episodes = planner_episodes(EpisodeStore.open(expert_store), images=False)
    scores = evaluate(net, PlannerBatcher(TextEncoder(), net.pointer), episodes, "cpu")
    assert scores["call_acc"] == 1.0 and np.isfinite(scores["loss"])


def test_train_cli_trains_the_planner(expert_store, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "robopolicy.cli", "train", "policy=skill_planner",
                        f"dataset.path={expert_store}", "policy.use_image=false", "policy.d_model=32",
                        "policy.mirror_prob=0.5", "trainer.steps=2", "trainer.batch_size=2", "trainer.tensorboard=false",
                        f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "checkpoints" / "latest" / "model.safetensors").is_file()
    assert "policy:" in r.stdout


@pytest.mark.parametrize("key", ["mirror_prob", "compose_prob"])
def test_an_augmentation_probability_outside_0_1_is_a_one_line_error(expert_store, tmp_path, key):
    from robopolicy.training.planner_trainer import train_planner

    trainer = {"steps": 1, "batch_size": 2, "tensorboard": False, "device": "cpu"}
    config = TrainConfig.build({**PLANNER_CFG, key: 1.5}, trainer, expert_store, [], tmp_path)
    with pytest.raises(RobopolicyError, match=rf"policy.{key}: 1.5 is not a probability") as e:
        train_planner(config)
    assert "\n" not in str(e.value)


def test_the_env_renders_at_the_size_of_the_frames_the_planner_learned_from(tmp_path):
    """A planner trained on 40x32 agentview frames gets 40x32 frames, not the config's 128x128
    resized, when its low level observes no images; the oracle leaves the size alone."""
    from robopolicy.data.collect import CollectConfig, collect
    from robopolicy.evaluation.bilevel import BILEVEL, BilevelConfig
    from robopolicy.evaluation.runners import make_runner
    from robopolicy.training.planner_trainer import train_planner
    from tests.conftest import TASKS

    store = tmp_path / "frames.zarr"
    env = {"obs_keys": ["proprio", "state", "rgb.agentview"], "image_size": [40, 32]}
    assert collect(CollectConfig(env, {**TASKS, "horizon": 60}, store, episodes=1, seed=0)).kept == 1
    trainer = {"steps": 1, "batch_size": 1, "tensorboard": False, "device": "cpu"}
    config = {**PLANNER_CFG, "use_image": True, "image_size": 16}
    planner = train_planner(TrainConfig.build(config, trainer, store, [], tmp_path / "p")).policy_dir
    eval_env = {"obs_keys": ["proprio"], "image_size": [128, 128]}
    learned = BilevelConfig(planner={"name": "learned", "path": str(planner)})
    _, env_config, _ = make_runner(BILEVEL, eval_env, TASKS, bilevel=learned)
    assert env_config["image_size"] == [40, 32] and "rgb.agentview" in env_config["obs_keys"]
    _, env_config, _ = make_runner(BILEVEL, eval_env, TASKS, bilevel=BilevelConfig(planner={"name": "oracle"}))
    assert env_config["image_size"] == [128, 128]
