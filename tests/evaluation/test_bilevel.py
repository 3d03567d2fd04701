"""The bi-level policy in the evaluation pool: the oracle planner with the expert executing each
planned skill reproduces the expert's own episodes; a skill policy trained with skill_params gets
the planned call's vector; an episode the planner ends gets its video; a planner config error is
one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from robopolicy.data.skills import SKILL_PARAMS_DIM, encode_skill
from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.bilevel import BILEVEL, BilevelConfig
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
from robopolicy.evaluation.episodes import episode_list
from robopolicy.evaluation.rollout import evaluate_policy, rollouts
from robopolicy.evaluation.runners import make_runner
from robopolicy.planners import register_planner
from robopolicy.planners.base import PlannerInvalid
from robopolicy.planners.grammar import SkillCall
from robopolicy.planners.oracle import OraclePlanner
from robopolicy.training.trainer import train
from tests.conftest import ENV_CONFIG

# grasp(handle), move(left), release(): three calls with three different vectors
MOVE_TASKS = {"classes": [5], "parts": ["handle"], "directions": ["left"], "instances": [0, 1],
              "horizon": 12}


def eval_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "robopolicy.cli", "eval", "suite=partmanip",
                           "splits=[test1]", "episodes_per_cell=1", "executor.workers=2",
                           "videos=0", *args], capture_output=True, text=True, timeout=timeout)


def records(folder) -> list[dict]:
    lines = (folder / "test1" / "episodes.jsonl").read_text().splitlines()
    return sorted((json.loads(ln) for ln in lines), key=lambda r: r["episode"])


@pytest.mark.slow
def test_oracle_planner_with_the_expert_matches_the_expert(tmp_path):
    r = eval_cli("policy=expert", f"out={tmp_path / 'expert'}")
    assert r.returncode == 0, r.stderr
    r = eval_cli("policy=bilevel", "planner=oracle", f"out={tmp_path / 'bilevel'}")
    assert r.returncode == 0, r.stderr
    expert, bilevel = records(tmp_path / "expert"), records(tmp_path / "bilevel")
    assert len(expert) == len(bilevel) == 10
    assert [e["success"] for e in expert] == [b["success"] for b in bilevel]
    for b in bilevel:  # the oracle's plan is the chain, each skill started once
        assert b["plan_valid"] and b["planner_calls"] >= 1
        assert b["skills_correct"] == len(b["skills"]) <= b["chain_length"]
        assert b["next_skill_correct"] == b["next_skill_answers"] == len(b["skills"])
        assert b["skill_starts"] == sorted(b["skill_starts"]) and b["skill_starts"][0] == 0
    report = json.loads((tmp_path / "bilevel" / "report.json").read_text())
    assert report["by_split"]["test1"]["planner"]["skill_accuracy"] > 0.9
    assert report["by_split"]["test1"]["planner"]["next_skill_accuracy"] == 1.0


@pytest.mark.parametrize(("executed", "said_done", "answers", "correct"), [
    (["g", "m", "r"], False, 3, 3),       # the chain, in full
    (["g", "m"], False, 2, 2),            # cut short by the horizon: no wrong answer
    (["g", "x", "r"], False, 2, 1),       # the second answer is wrong; later ones do not count
    (["g", "m"], True, 3, 2),             # "done" before the chain's end is a wrong answer
    (["g", "m", "r", "m"], False, 4, 3),  # a skill where "done" was due
])
def test_next_skill_accuracy_counts_answers_after_a_correct_history(executed, said_done, answers,
                                                                    correct):
    from robopolicy.evaluation.bilevel import EpisodePlan

    calls = {"g": SkillCall("grasp", {"part": "handle"}), "m": SkillCall("move", {"direction": "left"}),
             "x": SkillCall("move", {"direction": "right"}), "r": SkillCall("release", {})}
    chain = [{"skill": c.skill, "params": dict(c.params)} for c in (calls[k] for k in "gmr")]
    ep = EpisodePlan(task={"chain": chain}, planner=OraclePlanner(), said_done=said_done)
    ep.history, ep.current = [calls[k] for k in executed[:-1]], calls[executed[-1]]
    fields = ep.fields()
    assert (fields["next_skill_answers"], fields["next_skill_correct"]) == (answers, correct)


def test_bilevel_without_a_planner_and_unknown_planner_are_one_line_errors(tmp_path):
    r = eval_cli("policy=bilevel", f"out={tmp_path / 'a'}")
    assert r.returncode == 2 and "needs a planner" in r.stderr and r.stderr.count("\n") == 1
    r = eval_cli("policy=bilevel", "+planner.name=nonesuch", f"out={tmp_path / 'b'}")
    assert r.returncode == 2 and "nonesuch" in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.fixture(scope="module")
def skill_params_policy(expert_store, tiny_policy_cfg, tmp_path_factory):
    """A skill policy conditioned on the skill's encode_skill vector (and no text), trained two
    steps on the real expert store (its episodes' structured chains give the vectors)."""
    cfg = {**tiny_policy_cfg, "condition": "skill", "skill_params": True, "skill_done_head": True,
           "done_hidden_dim": 16, "done_lag_steps": 2}
    trainer = {"steps": 2, "batch_size": 8, "lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.999],
               "warmup_steps": 1, "grad_clip": 1.0, "ema_power": 0.75, "ckpt_every": 100,
               "val_every": 100, "log_every": 1, "device": "cpu", "seed": 0}
    out = tmp_path_factory.mktemp("skill_params")
    return train(cfg, trainer, expert_store, ["proprio", "state"], out).policy_dir


def test_a_skill_params_policy_is_conditioned_on_the_planned_call(skill_params_policy, tmp_path):
    """Two envs in one batch, the oracle planner, advancing after every step (threshold 0): each
    policy call and each p(done) sees, per row, the encode_skill vector of that episode's current
    planned call (the last SKILL_PARAMS_DIM features of the network's condition)."""
    bilevel = BilevelConfig(low_level=str(skill_params_policy), advance="learned",
                            done_threshold=0.0, planner={"name": "oracle"})
    runner, env_config, _ = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu",
                                        batch_invariant=False, bilevel=bilevel)
    policy = runner.inner.policy
    acted, judged = [], []
    policy.model.register_forward_pre_hook(
        lambda _m, args: acted.append(args[2][:, -SKILL_PARAMS_DIM:].clone()))
    policy.done_head.register_forward_pre_hook(
        lambda _m, args: judged.append(args[0][:, -SKILL_PARAMS_DIM:].clone()))
    specs = episode_list(MOVE_TASKS, 2, seed=0)
    records, _ = rollouts(runner, specs, env_config, MOVE_TASKS, tmp_path,
                          ExecutorConfig("process", 1, 2))

    chains = [list(spec.task["chain"]) for spec in specs]
    assert [r["skills"] for r in records] == chains  # one step per call, then the plan ran out
    assert all(r["failure"] == "task_failed" and r["plan_valid"] for r in records)
    expected = [torch.from_numpy(np.stack([encode_skill(c["skill"], c["params"]) for c in calls]))
                for calls in zip(*chains, strict=True)]  # per step: each env's current call
    assert expected[1][:, -6:].sum() == 2  # the move's direction is in the vector
    # each denoising step of a call sees the same condition: one entry per distinct call
    calls = [a for i, a in enumerate(acted) if i == 0 or not torch.equal(a, acted[i - 1])]
    for got, want in ((calls, expected), (judged, expected)):
        assert len(got) == len(want)
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


def test_action_steps_applies_to_the_low_level_policy(skill_params_policy):
    bilevel = BilevelConfig(low_level=str(skill_params_policy), planner={"name": "oracle"})
    runner, _, name = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu", bilevel=bilevel,
                                  action_steps=2)
    assert runner.n_action_steps == runner.inner.policy.n_action_steps == 2  # trained with 8
    assert "(action_steps=2)" in name


@pytest.mark.parametrize("hold_grasp", [False, True])
def test_hold_grasp_keeps_the_hand_closed_while_a_move_carries(hold_grasp, skill_params_policy,
                                                               tmp_path):
    """grasp, move, release advanced after every step: with hold_grasp the move's executed
    gripper command is closed, the grasp's and the release's are the policy's own."""
    from robopolicy.evaluation.bilevel import GRIPPER, GRIPPER_CLOSED

    bilevel = BilevelConfig(low_level=str(skill_params_policy), advance="learned",
                            done_threshold=0.0, hold_grasp=hold_grasp, planner={"name": "oracle"})
    runner, env_config, _ = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu",
                                        bilevel=bilevel)
    (record,), _ = rollouts(runner, episode_list(MOVE_TASKS, 1, seed=0), env_config, MOVE_TASKS,
                            tmp_path, ExecutorConfig("process", 1, 1))
    assert [c["skill"] for c in record["skills"]] == ["grasp", "move", "release"]
    gripper = np.load(tmp_path / record["rollout"])["action"][:, GRIPPER]
    assert gripper[0] != GRIPPER_CLOSED and gripper[2] != GRIPPER_CLOSED  # the policy's own
    assert (gripper[1] == GRIPPER_CLOSED) == hold_grasp


@pytest.mark.parametrize(("calls", "carrying"), [
    (["grasp", "move"], True), (["grasp", "move", "rotate"], True), (["touch", "move"], False),
    (["grasp", "move", "release", "move"], False), (["grasp", "release", "grasp", "move"], True),
    (["grasp"], False), (["move"], False)])
def test_a_call_carries_after_a_grasp_until_a_release(calls, carrying):
    from robopolicy.evaluation.bilevel import EpisodePlan

    params = {"grasp": {"part": "handle"}, "touch": {"part": "handle"}, "release": {},
              "move": {"direction": "left"}, "rotate": {"part": "handle", "direction": "front"}}
    history = [SkillCall(c, params[c]) for c in calls]
    plan = EpisodePlan(task={}, planner=None, history=history[:-1], current=history[-1])
    assert plan.carrying is carrying


def test_hold_grasp_with_the_expert_is_a_one_line_error():
    with pytest.raises(RobopolicyError, match="hold_grasp is for a learned low level"):
        BilevelConfig(low_level="expert", hold_grasp=True, planner={"name": "oracle"})


@pytest.fixture(scope="module")
def next_skill_policy(expert_store, tiny_policy_cfg, tmp_path_factory):
    """As skill_params_policy, also conditioned on the next skill's vector (next_skill)."""
    cfg = {**tiny_policy_cfg, "condition": "skill", "skill_params": True, "next_skill": True,
           "skill_done_head": True, "done_hidden_dim": 16}
    trainer = {"steps": 1, "batch_size": 8, "lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.999],
               "warmup_steps": 1, "grad_clip": 1.0, "ema_power": 0.75, "ckpt_every": 100,
               "val_every": 100, "log_every": 1, "device": "cpu", "seed": 0}
    out = tmp_path_factory.mktemp("next_skill")
    return train(cfg, trainer, expert_store, ["proprio", "state"], out).policy_dir


@register_planner("test_one_at_a_time")
class OneAtATime(OraclePlanner):
    """The oracle's answers, but a plan of the first call only: every next call comes from
    `next_skill`."""

    def plan(self, instruction, observation, object_info):
        return super().plan(instruction, observation, object_info)[:1]


@pytest.mark.parametrize("planner", ["oracle", "test_one_at_a_time"])
def test_a_next_skill_policy_sees_the_call_after_the_running_one(planner, next_skill_policy, tmp_path):
    """Each call's rows hold it and the call after it: from the plan's queue (the oracle plans
    the whole chain) or from the director's lookahead (the planner asked what follows the
    running call); after the chain's last call, zeros."""
    bilevel = BilevelConfig(low_level=str(next_skill_policy), advance="learned",
                            done_threshold=0.0, planner={"name": planner})
    runner, env_config, _ = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu",
                                        batch_invariant=False, bilevel=bilevel)
    acted = []
    runner.inner.policy.model.register_forward_pre_hook(
        lambda _m, args: acted.append(args[2][:, -2 * SKILL_PARAMS_DIM:].clone()))
    specs = episode_list(MOVE_TASKS, 2, seed=0)
    records, _ = rollouts(runner, specs, env_config, MOVE_TASKS, tmp_path,
                          ExecutorConfig("process", 1, 2))
    chains = [list(spec.task["chain"]) for spec in specs]
    assert [r["skills"] for r in records] == chains and len(chains[0]) == 3

    def vec(calls, i):
        return (encode_skill(calls[i]["skill"], calls[i]["params"]) if i < len(calls)
                else np.zeros(SKILL_PARAMS_DIM, np.float32))

    expected = [torch.from_numpy(np.stack([np.concatenate([vec(c, i), vec(c, i + 1)]) for c in chains]))
                for i in range(3)]
    calls = [a for i, a in enumerate(acted) if i == 0 or not torch.equal(a, acted[i - 1])]
    assert len(calls) == 3 and all(torch.equal(g, w) for g, w in zip(calls, expected, strict=True))
    assert all(r["planner_calls"] >= 2 for r in records)  # the plan, then the lookahead


def test_a_next_skill_policy_without_lookahead_is_a_one_line_error(next_skill_policy):
    bilevel = BilevelConfig(low_level=str(next_skill_policy), advance="learned",
                            planner={"name": "oracle"}, lookahead=0)
    with pytest.raises(RobopolicyError, match="lookahead=0") as e:
        make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu", bilevel=bilevel)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("lookahead", [8, 1, 0])
def test_the_executor_is_told_the_calls_after_the_one_starting(lookahead):
    """A planner answering one call at a time: each skill directive carries up to `lookahead`
    calls the planner says follow it (the expert's touch side depends on the push after it),
    asked before the call starts; the planner's done ends the list."""
    from robopolicy.evaluation.bilevel import SkillDirector

    spec = episode_list(MOVE_TASKS, 1, seed=0)[0]
    chain = [dict(c) for c in spec.task["chain"]]
    director = SkillDirector(OneAtATime(), lookahead=lookahead)
    directives = director.begin([(0, {}, {}, spec)])
    for i in range(len(chain)):
        [(slot, kind, (call, before, after))] = directives
        assert (slot, kind, call, before) == (0, "skill", chain[i], chain[:i])
        assert after == chain[i + 1:i + 1 + lookahead]
        directives = director.after_step([(0, {}, {}, {"skill_done": True}, None)])
    assert directives == [(0, "end", "task_failed")]  # the planner's Done, as the env has no say
    asked = sum(min(lookahead, len(chain) - i) for i in range(len(chain)))  # a done ends a list
    assert director.finish(0)["planner_calls"] == 1 + len(chain) + asked


@pytest.mark.parametrize("mode", ["instruction", "generic"])
def test_the_low_level_is_told_its_skill_text(mode):
    """The director names each started call by the env's skill instruction, or (generic) by the
    call rebuilt with the object named "object"."""
    from robopolicy.evaluation.bilevel import SkillDirector
    from sims.partmanip.instructions import generic_skill_instruction
    from sims.partmanip.skill_source import call_from_dict

    spec = episode_list(MOVE_TASKS, 1, seed=0)[0]
    director = SkillDirector(OneAtATime(), skill_text=mode)
    director.begin([(0, {}, {}, spec)])
    told = director.text(0, {"skill_instruction": "as the env says"})
    first = call_from_dict(dict(spec.task["chain"][0]))
    assert told == ("as the env says" if mode == "instruction" else generic_skill_instruction(first))
    if mode == "generic":
        assert told == "Grasp the object by its handle." and spec.task["category"] == "mug"


def test_a_generic_text_policy_trains_on_a_collected_store_and_tells_its_director(
        expert_store, tiny_policy_cfg, tmp_path):
    cfg = {**tiny_policy_cfg, "condition": "skill", "skill_params": True, "skill_text": "generic"}
    trainer = {"steps": 1, "batch_size": 8, "warmup_steps": 1, "ckpt_every": 100, "val_every": 100,
               "device": "cpu", "seed": 0}
    policy_dir = train(cfg, trainer, expert_store, ["proprio", "state"], tmp_path).policy_dir
    runner, _, _ = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, device="cpu", bilevel=BilevelConfig(
        low_level=str(policy_dir), planner={"name": "oracle"}))
    assert runner.director.skill_text == "generic"


def test_lookahead_tells_the_expert_the_rest_of_the_plan_by_default():
    from robopolicy.evaluation.bilevel import LOOKAHEAD_EXPERT

    for setting, calls in (("auto", LOOKAHEAD_EXPERT), (0, 0), (2, 2)):
        runner, _, _ = make_runner(BILEVEL, ENV_CONFIG, MOVE_TASKS, bilevel=BilevelConfig(
            planner={"name": "oracle"}, lookahead=setting))
        assert runner.director.lookahead == calls
    for bad in ("sometimes", -1):
        with pytest.raises(RobopolicyError, match=f"policy.lookahead={bad!r}"):
            BilevelConfig(planner={"name": "oracle"}, lookahead=bad)


@register_planner("test_first_skill_only")
class FirstSkillOnly(OraclePlanner):
    """The chain's first skill, then an invalid answer: the episode ends as planner_invalid."""

    def plan(self, instruction, observation, object_info):
        return super().plan(instruction, observation, object_info)[:1]

    def next_skill(self, history, observation):
        raise PlannerInvalid("planner 'test_first_skill_only': an invalid answer")


def test_an_episode_the_planner_ends_gets_its_video(tmp_path):
    """The expert executes the first skill (grasp), the planner then fails: the episode ends as
    planner_invalid and its video holds every frame up to there, like any recorded episode."""
    import imageio.v2 as imageio

    tasks = {**MOVE_TASKS, "classes": [3], "horizon": 120}  # grasp(handle), move(left)
    run = EvalConfig(BILEVEL, ENV_CONFIG, tasks, tmp_path, episodes=2, seed=0, videos=1,
                     executor=ExecutorConfig("process", 1, 2),
                     bilevel=BilevelConfig(planner={"name": "test_first_skill_only"}))
    evaluate_policy(run)
    recs = sorted((json.loads(x) for x in (tmp_path / "episodes.jsonl").read_text().splitlines()),
                  key=lambda r: r["episode"])
    assert [r["failure"] for r in recs] == ["planner_invalid"] * 2
    assert recs[0]["steps"] > 5 and len(recs[0]["skills"]) == 1  # it ran the grasp first
    assert "video" in recs[0] and "video" not in recs[1]  # videos=1: the first episode only
    with imageio.get_reader(tmp_path / recs[0]["video"]) as reader:
        frames = [f for f in reader]  # noqa: C416 (len(reader) is inf)
    assert len(frames) == recs[0]["steps"] + 1  # the reset frame, then one per step


@register_planner("test_wrong_first")
class WrongFirst(OraclePlanner):
    """Plans touch(handle) where the chain starts with grasp(handle); asked again, it answers
    the chain's skill after the history (the oracle's)."""

    def plan(self, instruction, observation, object_info):
        super().plan(instruction, observation, object_info)
        return [SkillCall("touch", {"part": "handle"})]


@pytest.mark.parametrize("replan_every", [0, 5])
def test_replan_every_replaces_a_wrong_running_skill(replan_every, tmp_path):
    """With the expert executing: a check after 5 steps replaces the planned touch by the grasp
    and the task succeeds; with no checks the touch runs to its end and the task fails."""
    tasks = {**MOVE_TASKS, "classes": [3], "instances": [0], "horizon": 120}  # grasp, move(left)
    run = EvalConfig(BILEVEL, ENV_CONFIG, tasks, tmp_path, episodes=1, seed=0, videos=0,
                     executor=ExecutorConfig("process", 1, 1),
                     bilevel=BilevelConfig(planner={"name": "test_wrong_first"},
                                           replan_every=replan_every))
    evaluate_policy(run)
    rec = json.loads((tmp_path / "episodes.jsonl").read_text())
    if replan_every:
        assert rec["success"], rec
        assert rec["skills"] == rec["task"]["chain"] and rec["skill_starts"][0] == 5
        assert rec["replaced"] == [{"step": 0, "skill": "touch", "params": {"part": "handle"}}]
    else:
        assert not rec["success"] and rec["replaced"] == []
        assert rec["skills"][0] == {"skill": "touch", "params": {"part": "handle"}}


def test_replan_every_must_be_a_whole_number():
    with pytest.raises(Exception, match="replan_every"):
        BilevelConfig(planner={"name": "oracle"}, replan_every=-1)
