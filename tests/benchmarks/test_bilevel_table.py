"""benchmarks/bilevel_table.py: its training commands compose into the configs they name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bilevel_table  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def _compose(cmd: list[str]):
    from hydra import compose, initialize_config_dir

    from robopolicy.commands.app import config_dir

    assert cmd[2:4] == ["robopolicy.cli", "train"]
    with initialize_config_dir(str(config_dir()), version_base=None):
        return compose("train", cmd[4:])


def test_down_dims_sizes_every_dp_and_leaves_the_planner_alone():
    a = bilevel_table.parse(["--down-dims", "128,256,512", "--skill-delta", "--next-skill",
                             "--generic-text", "--skill-geom"])
    commands = bilevel_table.train_commands(a, Path("demos.zarr"))
    for name in ("e2e_state", "e2e_pcd", "skill_dp"):
        cfg = _compose(commands[name])
        assert list(cfg.policy.unet.down_dims) == [128, 256, 512], name
    skill = _compose(commands["skill_dp"])
    assert skill.policy.next_skill and list(skill.dataset.obs_keys)[-2:] == ["skill_delta", "skill_geom"]
    assert list(skill.policy.skill_obs_keys) == ["skill_state", "skill_delta", "skill_geom"]
    assert skill.policy.skill_text == "generic"
    assert not any("down_dims" in c for c in commands["planner"])
    default = bilevel_table.train_commands(bilevel_table.parse([]), Path("demos.zarr"))
    assert list(_compose(default["skill_dp"]).policy.unet.down_dims) == [64, 128, 256]
    assert _compose(default["skill_dp"]).policy.skill_text == "instruction"


def test_an_unknown_row_is_refused():
    with pytest.raises(SystemExit):
        bilevel_table.parse(["--rows", "e2e_state,oracle"])
