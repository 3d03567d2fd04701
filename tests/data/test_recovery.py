"""Recovery demos: an evaluation run records each step's env state; the expert takes over from
those states and the collection writes its successes with provenance."""

import json

import numpy as np
import pytest

from robopolicy.data.collect import CollectConfig, collect
from robopolicy.data.recovery import RECOVERY_SEEDS, RecoverySettings, recovery_starts
from robopolicy.data.skills import chain_from_meta
from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
from robopolicy.evaluation.rollout import evaluate_policy
from robopolicy.viewer.replay import replay_steps
from robopolicy.viewer.sources import from_store
from tests.conftest import ENV_CONFIG, TASKS


@pytest.fixture(scope="module")
def state_run(tmp_path_factory):
    """Two expert episodes evaluated with record_states=true."""
    out = tmp_path_factory.mktemp("eval") / "run"
    evaluate_policy(EvalConfig("expert", ENV_CONFIG, TASKS, out, episodes=2, seed=500,
                               executor=ExecutorConfig("process", 1, 1), record_states=True))
    return out


def test_a_recorded_state_restores_the_step_exactly(state_run, mug_env):
    """Restoring step t's state and taking action t reproduces step t+1's recorded state."""
    from sims.partmanip.env_state import EnvState

    rec = json.loads((state_run / "episodes.jsonl").read_text().splitlines()[0])
    r = np.load(state_run / rec["rollout"])
    n = len(r["action"])
    assert len(r["state_sim"]) == n and (np.diff(r["state_steps"]) == 1).all()
    assert r["state_steps"][0] == 0
    for t in (5, n // 2):
        state = EnvState(rec["task"], r["state_sim"][t], int(r["state_skill_index"][t]),
                         r["state_skill_start"][t], int(r["state_steps"][t]), r["state_target"][t])
        mug_env.reset(options={"state": state.to_dict()})
        mug_env.step(r["action"][t])
        np.testing.assert_allclose(mug_env.get_state().sim, r["state_sim"][t + 1], atol=1e-9)
        assert mug_env.tracker.index == r["state_skill_index"][t + 1]


def test_recovery_demos_start_where_the_run_was_and_resume(state_run, mug_env, tmp_path):
    settings = RecoverySettings(state_run, every=15, failed_only=False)
    starts = recovery_starts(settings)
    steps = [s["provenance"]["step"] for s in starts]
    assert steps[0] == 15 and all(t % 15 == 0 for t in steps)
    # both episodes succeeded: none of them gives a start with failed_only
    assert recovery_starts(RecoverySettings(state_run, every=15)) == []
    out = tmp_path / "recovery.zarr"
    config = CollectConfig(ENV_CONFIG, TASKS, out, episodes=3, seed=0, workers=1,
                           recovery=settings)
    s = collect(config)
    assert s.episodes == 3 and s.kept >= 2
    store = EpisodeStore.open(out)
    metas = store.episodes()
    assert {m["source"] for m in metas} == {"recovery"}
    for m in metas:
        i = int(m["seed"]) - RECOVERY_SEEDS
        start = starts[i]
        assert json.loads(m["provenance"])["step"] == start["provenance"]["step"]
        # the demo's first observation is the recorded state's, and it skips the steps before
        first = store.get_episode(metas.index(m))["proprio"][0]
        obs, _ = mug_env.reset(options={"state": start["state"]})
        np.testing.assert_allclose(first, obs["proprio"], atol=1e-6)
        assert m["length"] <= start["state"]["task"]["horizon"] - start["provenance"]["step"]
        chain = chain_from_meta(m, "test")
        assert chain.active(np.array([0]))[0] == start["state"]["skill_index"]
    assert collect(config).kept == s.kept  # a rerun adds nothing
    # the viewer replays a recovery episode from its start state, to the same success
    episode = from_store(store, 0)
    assert episode.reset_options["state"]["sim"] == starts[int(metas[0]["seed"]) -
                                                          RECOVERY_SEEDS]["state"]["sim"]
    recorded = store.get_episode(0, ["proprio"])["proprio"]
    for t, _, obs, info in replay_steps(episode, ["proprio"]):
        if t < len(recorded):
            np.testing.assert_allclose(obs["proprio"], recorded[t], atol=1e-6)
        final = info
    assert final["success"] == metas[0]["success"]


def test_a_recovery_episode_without_its_start_state_is_a_one_line_error(state_run, tmp_path):
    out = tmp_path / "recovery.zarr"
    collect(CollectConfig(ENV_CONFIG, TASKS, out, episodes=1, seed=0, workers=1,
                          recovery=RecoverySettings(state_run, every=15, failed_only=False)))
    import zarr

    # a recovery episode as the first version of `collect recovery.run=...` wrote it
    field = zarr.open_group(out, mode="a")["meta/episodes/provenance"]
    provenance = json.loads(field[0].item())
    del provenance["state"]
    field[0] = json.dumps(provenance)
    with pytest.raises(RobopolicyError, match="without its start state") as e:
        from_store(EpisodeStore.open(out), 0)
    assert "\n" not in str(e.value)


def test_a_later_run_adds_new_recovery_episodes_to_the_same_store(state_run, tmp_path):
    """DAgger's next round: another run's starts are new episodes with new seeds, whatever
    their index in their run; rerunning either round adds nothing."""
    other = tmp_path / "round2"
    evaluate_policy(EvalConfig("expert", ENV_CONFIG, TASKS, other, episodes=1, seed=600,
                               executor=ExecutorConfig("process", 1, 1), record_states=True))
    out = tmp_path / "store.zarr"
    rounds = [CollectConfig(ENV_CONFIG, TASKS, out, episodes=2, workers=1,
                            recovery=RecoverySettings(run, every=25, failed_only=False))
              for run in (state_run, other)]
    first = collect(rounds[0]).kept  # the store's episodes after each round
    second = collect(rounds[1]).kept - first
    assert first >= 1 and second >= 1
    metas = EpisodeStore.open(out).episodes()
    assert len(metas) == first + second
    assert len({int(m["seed"]) for m in metas}) == len(metas)
    runs = [json.loads(m["provenance"])["run"] for m in metas]
    assert runs.count(str(other)) == second
    for config in rounds:
        collect(config)
    assert EpisodeStore.open(out).n_episodes == first + second


def test_a_run_without_states_is_a_one_line_error(tmp_path):
    out = tmp_path / "plain"
    evaluate_policy(EvalConfig("expert", ENV_CONFIG, TASKS, out, episodes=1, seed=500,
                               executor=ExecutorConfig("process", 1, 1)))
    with pytest.raises(RobopolicyError, match="no recorded env states; evaluate with record_states"):
        recovery_starts(RecoverySettings(out, failed_only=False))
    with pytest.raises(RobopolicyError, match="no episodes.jsonl found"):
        recovery_starts(RecoverySettings(tmp_path / "nothing"))
    with pytest.raises(RobopolicyError, match="unknown recovery key"):
        RecoverySettings.from_dict({"run": str(out), "evry": 3})
