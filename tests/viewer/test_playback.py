"""The native viewer's playback: its controls and its kept replay states (no window needed)."""

from __future__ import annotations

import numpy as np
import pytest

from robopolicy.viewer.playback import KEYS, Command, Playback


def test_playing_advances_one_step_per_tick_and_pauses_at_the_last_step():
    p = Playback(last=3)
    assert (p.t, p.paused) == (0, False)
    assert [p.tick() for _ in range(3)] == [True, True, True]
    assert (p.t, p.paused, p.at_end) == (3, True, True)
    assert not p.tick() and p.t == 3  # stays on the last step
    assert "step 3 / 3" in p.status() and "end" in p.status()


def test_space_pauses_and_resumes():
    p = Playback(last=10)
    p.tick()
    assert p.key("space") is Command.PLAY_PAUSE and p.paused
    assert not p.tick() and p.t == 1  # paused: time passing changes nothing
    assert "paused" in p.status()
    p.key("space")
    assert not p.paused and p.tick() and p.t == 2
    assert "playing" in p.status()


def test_space_at_the_end_plays_again_from_the_start():
    p = Playback(last=2)
    p.tick(), p.tick()
    p.key("space")
    assert (p.t, p.paused) == (0, False)


@pytest.mark.parametrize("key", ["right", "."])
def test_step_keys_pause_and_step_once_without_passing_the_end(key):
    p = Playback(last=2)
    p.key(key)
    assert (p.t, p.paused) == (1, True)
    p.key(key), p.key(key)
    assert p.t == 2


@pytest.mark.parametrize("key", ["left", ","])
def test_step_back_keys_pause_and_stop_at_step_0(key):
    p = Playback(last=5, t=2)
    p.key(key)
    assert (p.t, p.paused) == (1, True)
    p.key(key), p.key(key)
    assert p.t == 0


@pytest.mark.parametrize("key", ["backspace", "r", "R"])
def test_restart_keys_play_from_step_0(key):
    p = Playback(last=5, t=4, paused=True)
    assert p.key(key) is Command.RESTART
    assert (p.t, p.paused) == (0, False)


def test_unbound_keys_change_nothing():
    p = Playback(last=5, t=2)
    assert p.key("q") is None and p.key("up") is None
    assert (p.t, p.paused) == (2, False)


def test_an_episode_without_actions_shows_its_one_state_paused():
    p = Playback(last=0)
    assert p.paused and not p.tick()
    p.key("space"), p.key("r")
    assert (p.t, p.paused) == (0, True)
    with pytest.raises(ValueError):
        Playback(last=-1)


def test_every_command_has_a_key():
    assert set(KEYS.values()) == set(Command)


def test_replay_states_reach_any_step_in_any_order_with_the_straight_replays_state(eval_run):
    from robopolicy.viewer.native import ReplayStates
    from robopolicy.viewer.replay import replay_steps
    from robopolicy.viewer.sources import load_episode

    episode = load_episode(eval_run[0], 3)
    straight = [(env.get_state(), info["skill_index"]) for _, env, _, info in replay_steps(episode)]
    states = ReplayStates(episode)
    try:
        assert states.last == len(straight) - 1
        # forward, back (restored), forward past what was seen (replayed on), restart
        for t in (10, 3, 20, states.last, 0, 5):
            info = states.show(t)
            np.testing.assert_array_equal(states.env.get_state().sim, straight[t][0].sim, err_msg=f"t={t}")
            assert info["skill_index"] == straight[t][1]
        with pytest.raises(IndexError):
            states.show(states.last + 1)
    finally:
        states.close()
