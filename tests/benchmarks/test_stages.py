"""benchmarks/stages.py: a training stage is skipped when finished and continued, not started
over, when interrupted (a real training run killed after its first checkpoint, then the stage
rerun through the CLI); a command that fails ends the script in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import stages  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

TINY = ["policy=diffusion_unet", "policy.unet.down_dims=[16,32]", "policy.unet.n_groups=4",
        "policy.unet.diffusion_step_embed_dim=16", "dataset.obs_keys=[proprio,state]",
        "trainer.steps=4", "trainer.ckpt_every=2", "trainer.batch_size=8", "trainer.log_every=1",
        "trainer.tensorboard=false", "trainer.device=cpu"]


class Killed(Exception):
    pass


def test_an_interrupted_training_stage_continues_from_its_last_checkpoint(expert_store, tmp_path):
    from hydra import compose, initialize_config_dir

    from robopolicy.commands.app import config_dir
    from robopolicy.training.config import TrainConfig
    from robopolicy.training.trainer import train

    run_dir, log = tmp_path / "run", tmp_path / "commands.log"
    overrides = [f"dataset.path={expert_store}", *TINY]
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("train", overrides)

    def kill_at_3(step, loss):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):  # checkpointed at step 2, killed during step 3
        train(TrainConfig.from_hydra(cfg, run_dir), callbacks=[kill_at_3])
    assert not stages.trained(run_dir, 4)

    cmd = stages.cli("train", *overrides, f"hydra.run.dir={run_dir}")
    assert stages.train_stage(cmd, run_dir, 4, log) is not None
    text = log.read_text()
    assert text.splitlines()[0].endswith(" resume=true")
    assert "from step 2 of 4" in text
    assert stages.trained(run_dir, 4)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]  # each once: the resumed step 3 replaces the killed run's

    assert stages.train_stage(cmd, run_dir, 4, log) is None  # finished: skipped
    assert log.read_text() == text


def test_a_failed_command_ends_in_one_line_with_its_own_error_and_keeps_the_log(tmp_path):
    log = tmp_path / "commands.log"
    log.write_text("earlier output\n")
    with pytest.raises(SystemExit) as e:
        stages.run(stages.cli("augment", "path=nowhere.zarr", "augment=[bogus]"), log)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("augment failed (exit 2): error: augment:")
    assert "bogus" in msg and str(log) in msg
    assert log.read_text().startswith("earlier output\n$ ")
