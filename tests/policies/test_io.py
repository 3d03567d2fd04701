"""Policy directories: save/load round trip, type checks, and clear errors for broken files."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from robopolicy.errors import RobopolicyError
from robopolicy.policies import load_policy, save_policy
from robopolicy.policies.io import instantiate_policy

CONFIG = Path(__file__).parents[2] / "configs" / "policy" / "diffusion_unet.yaml"
SHAPE_META = {
    "obs": {
        "proprio": {"shape": [4], "type": "low_dim"},
        "state.object": {"shape": [3], "type": "low_dim"},
        "rgb.agentview": {"shape": [16, 16, 3], "type": "rgb"},
    },
    "action": {"shape": [5]},
}


def small_config() -> dict:
    """The shipped config with a smaller network."""
    cfg = OmegaConf.load(CONFIG)
    cfg.unet.down_dims = [16, 32, 64]
    cfg.unet.diffusion_step_embed_dim = 32
    cfg.obs_encoder.rgb_channels = [8, 16]
    cfg.obs_encoder.num_keypoints = 8
    cfg.obs_encoder.rgb_feature_dim = 16
    return OmegaConf.to_container(cfg)


def obs_window(batch: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "proprio": torch.randn(batch, 2, 4, generator=g),
        "state.object": torch.randn(batch, 2, 3, generator=g),
        "rgb.agentview": torch.randint(
            0, 256, (batch, 2, 16, 16, 3), dtype=torch.uint8, generator=g
        ),
    }


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    config = small_config()
    policy = instantiate_policy(config, SHAPE_META)
    g = torch.Generator().manual_seed(1)
    policy.fit_normalizer(
        {
            "action": torch.randn(64, 5, generator=g) * 3,
            "proprio": torch.rand(64, 4, generator=g),
            "state.object": torch.randn(64, 3, generator=g),
        }
    )
    path = save_policy(policy, tmp_path / "policy", config, extra_meta={"step": 7})
    return policy.eval(), path


def test_shipped_config_builds_default_policy():
    policy = instantiate_policy(OmegaConf.load(CONFIG), SHAPE_META)
    assert policy.name == "diffusion_unet"
    assert (policy.horizon, policy.n_obs_steps, policy.n_action_steps) == (16, 2, 8)
    assert policy.noise_scheduler.config.num_train_timesteps == 100
    assert type(policy.inference_scheduler).__name__ == "DDIMScheduler"


def test_round_trip_gives_identical_predictions(saved):
    policy, path = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy"]  # no temp dirs left
    meta = json.loads((path / "meta.json").read_text())
    assert (
        meta["policy"] == "diffusion_unet"
        and meta["step"] == 7
        and meta["shape_meta"] == SHAPE_META
    )
    assert "shape_meta" not in OmegaConf.load(path / "config.yaml")

    loaded = load_policy(path, expected="diffusion_unet")
    assert not loaded.training
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    torch.manual_seed(3)
    before = policy.predict_action(obs_window())
    torch.manual_seed(3)
    after = loaded.predict_action(obs_window())
    assert before.shape == (3, 8, 5)
    assert torch.equal(before, after)


def test_saving_again_replaces_the_policy(saved):
    policy, path = saved
    with torch.no_grad():
        policy.model.head[1].bias.add_(1.0)
    save_policy(policy, path, small_config())
    assert torch.equal(load_policy(path).model.head[1].bias, policy.model.head[1].bias)
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy"]


def test_wrong_expected_type_fails_in_one_line(saved):
    _, path = saved
    with pytest.raises(RobopolicyError) as info:
        load_policy(path, expected="flow_matching")
    message = str(info.value)
    assert message == f"policy at {path} is a 'diffusion_unet' policy, expected 'flow_matching'"


def test_corrupted_weights_fail_clearly(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(RobopolicyError, match="corrupt model.safetensors") as info:
        load_policy(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_weights_for_another_architecture_name_a_key(saved):
    _, path = saved
    config = OmegaConf.load(path / "config.yaml")
    config.unet.down_dims = [16, 32, 128]
    OmegaConf.save(config, path / "config.yaml")
    with pytest.raises(
        RobopolicyError, match=r"weights do not match .* key 'model\..*' has shape"
    ) as info:
        load_policy(path)
    assert "\n" not in str(info.value)


def test_missing_weight_key_is_named(saved):
    _, path = saved
    state = load_file(str(path / "model.safetensors"))
    del state["normalizer.stats.state__object.scale"]
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(
        RobopolicyError, match="'normalizer.stats.state__object.scale' is in the model but not in"
    ):
        load_policy(path)


def test_missing_dir_file_and_unsafe_target(saved, tmp_path):
    _, path = saved
    with pytest.raises(RobopolicyError, match="no such directory"):
        load_policy(tmp_path / "nope")
    config = OmegaConf.load(path / "config.yaml")
    config.noise_scheduler._target_ = "os.system"
    OmegaConf.save(config, path / "config.yaml")
    with pytest.raises(RobopolicyError, match="key 'noise_scheduler._target_' names 'os.system', which is not an allowed"):
        load_policy(path)
    (path / "meta.json").unlink()
    with pytest.raises(RobopolicyError, match=f"policy at {path}: missing meta.json"):
        load_policy(path)


def test_refuses_to_overwrite_a_non_policy_directory(saved, tmp_path):
    policy, _ = saved
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(RobopolicyError, match="not a policy directory"):
        save_policy(policy, other, small_config())
    assert (other / "todo.txt").read_text() == "keep me"


class _OpensAFile:
    """Unpickling this calls open(marker, "w"): what a crafted file could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("where", ["text_encoder", "obs_encoder.extra", "unet.down_dims.0"])
@pytest.mark.parametrize("target", ["torch.load", "builtins.open"])
def test_a_config_that_would_run_code_is_refused_before_anything_is_built(saved, tmp_path, where,
                                                                          target):
    """A nested `_target_` anywhere in config.yaml (torch.load of a crafted pickle, or open):
    one line naming the file and the dotted key, and the marker file is never created."""
    _, path = saved
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save(_OpensAFile(marker), evil)
    node = ({"_target_": "torch.load", "f": str(evil), "weights_only": False} if target == "torch.load"
            else {"_target_": "builtins.open", "file": str(marker), "mode": "w"})
    config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"))
    *parents, last = [int(k) if k.isdigit() else k for k in where.split(".")]
    holder = config
    for key in parents:
        holder = holder[key]
    holder[last] = node
    OmegaConf.save(OmegaConf.create(config), path / "config.yaml")
    with pytest.raises(RobopolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"policy at {path}: config.yaml: key '{where}._target_' names '{target}'")
    assert "\n" not in message
    assert not marker.exists()


def test_the_top_level_target_must_be_a_registered_policy_class(saved):
    _, path = saved
    config = OmegaConf.load(path / "config.yaml")
    config._target_ = "diffusers.DDPMScheduler"  # allowed below the top, not as the policy
    OmegaConf.save(config, path / "config.yaml")
    with pytest.raises(RobopolicyError, match="key '_target_' names 'diffusers.DDPMScheduler'"):
        load_policy(path)


def test_a_training_config_with_a_foreign_target_is_refused():
    config = {**small_config(), "text_encoder": {"_target_": "os.system", "command": "true"}}
    with pytest.raises(RobopolicyError, match="policy config: key 'text_encoder._target_' names 'os.system'"):
        instantiate_policy(config, SHAPE_META)


# Per shipped policy config: overrides that make its network small, so each builds in a moment.
SMALL = {
    "diffusion_unet": ["policy.unet.down_dims=[16,32]", "policy.unet.diffusion_step_embed_dim=16",
                       "policy.unet.n_groups=4"],
    "flow_matching": ["policy.unet.down_dims=[16,32]", "policy.unet.diffusion_step_embed_dim=16",
                      "policy.unet.n_groups=4"],
    "skill_diffusion": ["policy.unet.down_dims=[16,32]", "policy.unet.diffusion_step_embed_dim=16",
                        "policy.unet.n_groups=4", "policy.done_hidden_dim=16"],
    "diffusion_transformer": ["policy.transformer.n_layer=1", "policy.transformer.n_emb=16"],
    "bc": ["policy.actor_layer_dims=[16]"],
    "bc_rnn": ["policy.rnn_hidden_dim=16", "policy.rnn_num_layers=1"],
}


def _shipped_policies() -> list[str]:
    from robopolicy.commands.app import is_eval_only
    from robopolicy.planners.network import PLANNER_TARGET

    # the learned planner's config trains a planner, not a policy (tests/planners/test_learned.py)
    return sorted(p.stem for p in CONFIG.parent.glob("*.yaml") if not is_eval_only(p)
                  and OmegaConf.load(p).get("_target_") != PLANNER_TARGET)


def test_every_shipped_trainable_policy_config_is_covered():
    assert _shipped_policies() == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_shipped_policy_config_round_trips(name, tmp_path):
    """Each configs/policy/*.yaml, composed as `robopolicy train policy=NAME` composes it, passes
    the target check, saves and loads back to identical weights and the same class."""
    from hydra import compose, initialize_config_dir

    from robopolicy.commands.app import config_dir

    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("train", [f"policy={name}", "dataset.path=x.zarr", *SMALL[name]])
    config = OmegaConf.to_container(cfg.policy, resolve=True)
    low_dim = {"obs": {"proprio": {"shape": [4], "type": "low_dim"},
                       "state": {"shape": [3], "type": "low_dim"}}, "action": {"shape": [5]}}
    torch.manual_seed(0)
    policy = instantiate_policy(config, low_dim)
    path = save_policy(policy, tmp_path / name, config)
    loaded = load_policy(path, expected=config["name"])
    assert type(loaded) is type(policy)
    saved_state, loaded_state = policy.state_dict(), loaded.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    assert all(torch.equal(saved_state[k], loaded_state[k]) for k in saved_state)


def test_the_registry_names_each_builtin_policy_once():
    """Every built-in name resolves to the class registered under it, whose `_target_` path is the
    one the registry gives, and no other class can take a built-in name."""
    from robopolicy.policies import (
        available_policies,
        get_policy_class,
        policy_target,
        register_policy,
    )

    for name in available_policies():
        cls = get_policy_class(name)
        assert cls.name == name and policy_target(name) == f"{cls.__module__}.{cls.__qualname__}"
    with pytest.raises(RobopolicyError, match="policy name 'bc' is the built-in"):
        register_policy("bc")(type("Imposter", (), {}))
    with pytest.raises(RobopolicyError, match="is not a built-in policy: register it with a name"):
        register_policy()(type("Nameless", (), {}))
