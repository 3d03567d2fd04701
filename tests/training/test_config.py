from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

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
    assert config.obs_keys == ["proprio", "state"] and config.out_dir == tmp_path
    assert not config.resume


def test_an_unknown_or_missing_trainer_key_is_a_one_line_error():
    values = TrainerSettings(steps=1, batch_size=2, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.99),
                             warmup_steps=0, grad_clip=1.0, ema_power=0.75, ckpt_every=1,
                             val_every=1, log_every=1, device="cpu", seed=0).as_dict()
    with pytest.raises(RobopolicyError, match=r"^trainer config: unknown key\(s\) stepz \(known: steps,"):
        TrainerSettings.from_dict({**values, "stepz": 5})
    del values["lr"]
    with pytest.raises(RobopolicyError, match=r"^trainer config: missing key\(s\) lr$"):
        TrainerSettings.from_dict(values)


@pytest.mark.parametrize("name,robomimic", [("diffusion_unet", False), ("flow_matching", False),
                                            ("bc", True), ("bc_rnn", True)])
def test_the_registry_says_which_trainer_a_policy_uses(name, robomimic):
    assert trains_with_robomimic(TrainConfig.from_hydra(_compose(f"policy={name}"), ".").policy) is robomimic


def test_a_policy_outside_the_registry_cannot_be_trained():
    policy = TrainConfig.from_hydra(_compose("policy=expert"), ".").policy
    with pytest.raises(RobopolicyError, match="policy=expert is not a trainable policy .*trainable: bc, bc_rnn"):
        trains_with_robomimic(policy)
