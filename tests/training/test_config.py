from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from robopolicy.commands.app import config_dir
from robopolicy.commands.train import trains_with_robomimic
from robopolicy.errors import RobopolicyError
from robopolicy.training.config import TrainConfig, TrainerSettings


def _compose(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base=None):
        return compose("train", ["dataset.path=demos.zarr", *overrides])


def test_the_train_config_is_built_from_hydra_with_typed_trainer_settings(tmp_path):
    config = TrainConfig.from_hydra(_compose("trainer.steps=7", "policy=flow_matching"), tmp_path)
    assert config.trainer.steps == 7 and config.trainer.betas == (0.95, 0.999)
    assert config.policy["name"] == "flow_matching" and config.dataset == Path("demos.zarr")
    assert config.obs_keys == ["proprio", "state", "skill_state"] and config.out_dir == tmp_path
    assert not config.resume


def test_an_unknown_trainer_key_is_a_one_line_error():
    with pytest.raises(RobopolicyError, match=r"^trainer config: unknown key\(s\) stepz \(known: steps,"):
        TrainerSettings.from_dict({"steps": 5, "stepz": 5})


def test_the_settings_defaults_are_the_shipped_trainer_config():
    shipped = OmegaConf.to_container(OmegaConf.load(config_dir() / "trainer" / "default.yaml"))
    assert TrainerSettings.from_dict(shipped) == TrainerSettings()


@pytest.mark.parametrize("name,robomimic", [("diffusion_unet", False), ("flow_matching", False),
                                            ("bc", True), ("bc_rnn", True)])
def test_the_registry_says_which_trainer_a_policy_uses(name, robomimic):
    assert trains_with_robomimic(TrainConfig.from_hydra(_compose(f"policy={name}"), ".").policy) is robomimic


def test_a_policy_outside_the_registry_cannot_be_trained():
    policy = TrainConfig.from_hydra(_compose("policy=expert"), ".").policy
    with pytest.raises(RobopolicyError, match="policy=expert is not a trainable policy .*trainable: bc, bc_rnn"):
        trains_with_robomimic(policy)
