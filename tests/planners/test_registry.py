"""The planner registry, make_planner, the shipped configs and the oracle planner."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from robopolicy.commands.app import config_dir
from robopolicy.errors import RobopolicyError
from robopolicy.planners import available_planners, make_planner, planner_targets, register_planner
from robopolicy.planners.base import Planner
from robopolicy.planners.grammar import DONE
from robopolicy.planners.oracle import OraclePlanner
from robopolicy.planners.vocabulary import ObjectInfo
from robopolicy.policies.io import check_targets
from sims.partmanip.tasks import make_task


def test_builtins_and_shipped_configs():
    assert {"oracle", "openai", "transformers"} <= set(available_planners())
    for name in ("oracle", "openai", "transformers"):
        cfg = OmegaConf.to_container(OmegaConf.load(config_dir() / "planner" / f"{name}.yaml"))
        assert cfg["name"] == name and planner_targets()[cfg["_target_"]] == name
        check_targets(cfg, f"configs/planner/{name}.yaml")  # the allow-list admits planners


@pytest.mark.parametrize("cfg, error", [
    ({"name": "gpt5"}, "unknown planner 'gpt5' (known: "),
    ({}, "planner config needs a 'name'"),
    ({"name": "oracle", "_target_": "os.system"}, "_target_ 'os.system' is not the 'oracle' planner"),
    ({"name": "oracle", "_target_": "robopolicy.planners.openai_compat.OpenAIPlanner"},
     "is not the 'oracle' planner"),
    ({"name": "oracle", "colour": 3}, "unexpected keyword argument 'colour'"),
    ({"name": "oracle", "advance": "learned"}, "unexpected keyword argument 'advance'"),
])
def test_config_errors_are_one_line(cfg, error):
    with pytest.raises(RobopolicyError) as info:
        make_planner(cfg)
    assert error in str(info.value) and "\n" not in str(info.value)


def test_register_planner_sets_name_and_refuses_builtin_names():
    @register_planner("test_echo")
    class Echo(OraclePlanner):
        pass

    assert Echo.name == "test_echo" and "test_echo" in available_planners()
    assert isinstance(make_planner({"name": "test_echo"}), Planner)
    with pytest.raises(RobopolicyError, match="built-in"):
        register_planner("openai")(type("Other", (OraclePlanner,), {}))


def test_oracle_returns_the_chain_in_order():
    task = make_task(10, "mug", "handle", directions=("top", "left"), rotate_part="handle",
                     facing="front")
    planner = make_planner({"name": "oracle"})
    info = ObjectInfo.from_task(task)
    assert planner.plan(task.instruction, {}, info) == list(task.chain)
    other = planner.spawn()
    with pytest.raises(RobopolicyError, match="next_skill before plan"):
        other.next_skill([], {})
    for i, call in enumerate(task.chain):
        assert planner.next_skill_async(task.chain[:i], {}).result() == call
    assert planner.next_skill(task.chain, {}) is DONE
    with pytest.raises(RobopolicyError, match="needs the task's chain"):
        planner.plan(task.instruction, {}, ObjectInfo("mug", ("handle",)))
