"""Training windows over concatenated episodes (diffusion_policy's SequenceSampler, numpy only).

A window is ``horizon`` consecutive steps of one episode; it may start before the episode
(``pad_before``) or run past its end (``pad_after``), and indices outside the episode are
clamped to it, i.e. the first/last frame is repeated. A sample is the window's first
``n_obs_steps`` observation frames and all ``horizon`` actions.

With ``skills`` (one ``SkillChain`` per episode) each window is conditioned on the skill active
at its first observed step instead of the whole task, and carries a skill-done label (see
``SequenceSampler``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from robopolicy.errors import RobopolicyError

if TYPE_CHECKING:
    from robopolicy.data.skills import SkillChain
    from robopolicy.data.store import EpisodeStore


def split_episodes(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split episode indices ``0..n_episodes-1`` into sorted (train, val) int64 arrays.

    Deterministic in ``seed``. ``val_ratio`` 0 gives an empty val set; otherwise val holds
    ``round(n * val_ratio)`` episodes, at least 1 and at most ``n - 1`` (train is never empty
    when ``n >= 1``).
    """
    if n_episodes < 0:
        raise RobopolicyError(f"split_episodes: n_episodes must be >= 0, got {n_episodes}")
    if not 0.0 <= val_ratio <= 1.0:
        raise RobopolicyError(f"split_episodes: val_ratio must be in [0, 1], got {val_ratio}")
    n_val = 0
    if val_ratio > 0 and n_episodes > 1:
        n_val = min(max(1, round(n_episodes * val_ratio)), n_episodes - 1)
    perm = np.random.default_rng(seed).permutation(n_episodes)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


class SequenceSampler:
    """Fixed-length windows over episodes stored as concatenated arrays.

    Args:
        data: ``{key: array (n_steps, ...)}``, all episodes concatenated on axis 0.
        episode_ends: cumulative end index of each episode (as in EpisodeStore).
        horizon: window length; the number of actions per sample.
        n_obs_steps: observation frames per sample (the window's first ones), 1..horizon.
        obs_keys: keys of ``data`` returned under ``"obs"``.
        action_key: key of ``data`` returned as ``"action"``.
        pad_before: how far a window may start before its episode (default n_obs_steps - 1).
        pad_after: how far a window may end past its episode; pass n_action_steps - 1
            (default 0).
        episode_indices: episodes to draw windows from (default all), e.g. from split_episodes.
        episode_text: one string per episode (e.g. its instruction); samples then carry
            ``"text"``, the string of each window's episode.
        skills: one SkillChain per episode (``robopolicy.data.skills.skill_chains``): skill
            conditioning. A window's skill k is the one active at its first observed step t0;
            samples carry ``"text"`` (skill k's instruction, replacing ``episode_text``),
            ``"skill_index"`` (k, int64), ``"done"`` (float32: 1 when skill k's goal holds at
            the last observed step t1, i.e. t1 >= the next skill's start; the store records
            the first observation after the goal held as that start, and the episode's last
            skill is never done within its recorded observations), ``"action_weight"``
            (float32, see ``done_lag_steps``) and, when every chain has structured params,
            ``"skill_params"`` (SKILL_PARAMS_DIM float32, skill k's encoding).
        done_lag_steps: with ``skills``: every window whose first observed step lies fewer
            than this many steps after a skill boundary appears once more, conditioned on the
            skill before it, with done 1 and action_weight 0. A bi-level controller that
            advances when p(done) crosses a threshold still conditions on the finished skill
            for a few steps after its goal holds; these windows teach the done head that state,
            while their actions (the next skill's) are kept out of the action loss.
            0 (default): no extra windows, every action_weight is 1.
        hold_keys: with ``skills``: obs keys of skill-level fields (target part, goal), which the
            recorder computed for the skill active at each step. In a window conditioned on a
            skill that ended before its last observed frames, those frames show the next
            skill's fields, a cue a controller never sees (its skill source keeps the current
            skill's fields until it advances); these keys are held at the conditioning skill's
            last step instead.
        next_skill: with ``skills``: ``"skill_params"`` also holds the next skill's encoding
            (``robopolicy.data.skills.with_next``), width 2P.

    Windows start at s in [-pad_before, L - horizon + pad_after] for an episode of length L;
    an episode too short to have any (L + pad_before + pad_after < horizon) yields one window,
    starting at -pad_before and padded with its last frame.
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray],
        episode_ends: np.ndarray,
        horizon: int,
        n_obs_steps: int,
        obs_keys: Sequence[str],
        action_key: str = "action",
        pad_before: int | None = None,
        pad_after: int | None = None,
        episode_indices: np.ndarray | None = None,
        episode_text: Sequence[str] | None = None,
        skills: Sequence[SkillChain] | None = None,
        done_lag_steps: int = 0,
        hold_keys: Sequence[str] = (),
        next_skill: bool = False,
    ) -> None:
        if horizon < 1 or not 1 <= n_obs_steps <= horizon:
            raise RobopolicyError(
                f"sampler: need horizon >= 1 and 1 <= n_obs_steps <= horizon, got {horizon=} {n_obs_steps=}"
            )
        pad_before = n_obs_steps - 1 if pad_before is None else int(pad_before)
        pad_after = 0 if pad_after is None else int(pad_after)
        for name, pad in (("pad_before", pad_before), ("pad_after", pad_after)):
            if not 0 <= pad <= horizon - 1:
                raise RobopolicyError(
                    f"sampler: {name} must be in [0, horizon-1={horizon - 1}], got {pad}"
                )
        missing = [k for k in [*obs_keys, action_key] if k not in data]
        if missing:
            raise RobopolicyError(f"sampler: key(s) {missing} not in data (has {sorted(data)})")

        ends = np.asarray(episode_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        lengths = ends - starts
        if ends.ndim != 1 or (lengths < 0).any():
            raise RobopolicyError("sampler: episode_ends must be a non-decreasing 1-D array")
        n_steps = int(ends[-1]) if len(ends) else 0
        short = [k for k in [*obs_keys, action_key] if len(data[k]) < n_steps]
        if short:
            raise RobopolicyError(
                f"sampler: key(s) {short} have fewer than episode_ends[-1]={n_steps} steps"
            )
        if episode_indices is None:
            episodes = np.arange(len(ends), dtype=np.int64)
        else:
            episodes = np.asarray(episode_indices, dtype=np.int64).reshape(-1)
            bad = episodes[(episodes < 0) | (episodes >= len(ends))]
            if len(bad):
                raise RobopolicyError(
                    f"sampler: episode_indices {bad.tolist()} out of range for {len(ends)} episodes"
                )
        episodes = episodes[lengths[episodes] > 0]
        if episode_text is not None and len(episode_text) != len(ends):
            raise RobopolicyError(f"sampler: episode_text has {len(episode_text)} strings for "
                                  f"{len(ends)} episodes")

        # Index table: one row per window (episode start, episode length, window start s).
        ep_len = lengths[episodes]
        first = np.full(len(episodes), -pad_before, dtype=np.int64)
        last = np.maximum(ep_len - horizon + pad_after, first)
        counts = last - first + 1
        row_episode = np.repeat(np.arange(len(episodes)), counts)
        offset_in_episode = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        self._ep_start = starts[episodes][row_episode]
        self._ep_last = ep_len[row_episode] - 1
        self._win_start = first[row_episode] + offset_in_episode
        self._episode = episodes[row_episode]
        self._text = None if episode_text is None else np.asarray(list(episode_text), dtype=object)
        self._skills = None
        self.hold_keys = list(hold_keys)
        if self.hold_keys and skills is None:
            raise RobopolicyError("sampler: hold_keys needs skills")
        unknown = [k for k in self.hold_keys if k not in obs_keys]
        if unknown:
            raise RobopolicyError(f"sampler: hold_keys {unknown} are not among obs_keys {list(obs_keys)}")
        if skills is not None:
            self._add_skill_rows(skills, starts, lengths, n_obs_steps, done_lag_steps, next_skill)
        self._steps = np.arange(horizon, dtype=np.int64)

        self.data = data
        self.horizon = horizon
        self.n_obs_steps = n_obs_steps
        self.obs_keys = list(obs_keys)
        self.action_key = action_key
        self.pad_before = pad_before
        self.pad_after = pad_after
        self.episode_indices = episodes

    def _add_skill_rows(self, skills: Sequence[SkillChain], ep_starts: np.ndarray,
                        lengths: np.ndarray, n_obs_steps: int, lag: int, next_skill: bool) -> None:
        """Label every window with its skill and done flag; add the lagged windows."""
        if len(skills) != len(lengths):
            raise RobopolicyError(f"sampler: skills has {len(skills)} chains for {len(lengths)} episodes")
        if lag < 0:
            raise RobopolicyError(f"sampler: done_lag_steps must be >= 0, got {lag}")
        bad = [e for e, c in enumerate(skills) if c.length != lengths[e]]
        if bad:
            raise RobopolicyError(f"sampler: skill chain of episode {bad[0]} covers "
                                  f"{skills[bad[0]].length} steps, the episode has {lengths[bad[0]]}")
        # Flat tables over every episode's skills: instruction, start and goal step (in-episode;
        # a skill never begun starts, and is done, never), and params.
        counts = np.array([len(c.instructions) for c in skills], np.int64)
        base = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        never = np.iinfo(np.int64).max
        text = np.asarray([s for c in skills for s in c.instructions], dtype=object)
        start = np.full(counts.sum(), never, np.int64)
        goal = np.full(counts.sum(), never, np.int64)
        for e, c in enumerate(skills):
            start[base[e]: base[e] + len(c.starts)] = c.starts
            goal[base[e]: base[e] + len(c.starts)] = c.goal_steps
        from robopolicy.data.skills import with_next

        params = None
        if all(c.params is not None for c in skills):
            params = np.concatenate([with_next(c.params) if next_skill else c.params
                                     for c in skills]).astype(np.float32)
        elif next_skill:
            raise RobopolicyError("sampler: next_skill needs every episode's structured chain "
                                  "(a store collected with chain metadata)")

        step_skill = np.zeros(int(lengths.sum()), np.int64)  # per global step
        for e, c in enumerate(skills):
            step_skill[ep_starts[e]: ep_starts[e] + lengths[e]] = c.active(np.arange(lengths[e]))
        ep = self._episode
        t0 = np.clip(self._win_start, 0, self._ep_last)
        local = step_skill[self._ep_start + t0]
        flat = base[ep] + local
        # Lagged windows: the same window, conditioned on the skill that just ended.
        late = np.flatnonzero((local >= 1) & (t0 - start[flat] < lag))
        rows = np.concatenate([np.arange(len(ep)), late])
        self._ep_start, self._ep_last = self._ep_start[rows], self._ep_last[rows]
        self._win_start, self._episode = self._win_start[rows], ep[rows]
        flat = np.concatenate([flat, flat[late] - 1])
        t1 = np.clip(self._win_start + n_obs_steps - 1, 0, self._ep_last)
        # the conditioning skill's last step (global index), where hold_keys stop
        self._hold_until = self._ep_start + np.minimum(goal[flat], self._ep_last + 1) - 1
        self._skills = {
            "text": text[flat],
            "skill_index": flat - base[self._episode],
            "done": (t1 >= goal[flat]).astype(np.float32),
            "action_weight": np.concatenate([np.ones(len(ep)), np.zeros(len(late))]).astype(np.float32),
        }
        if params is not None:
            self._skills["skill_params"] = params[flat]

    @classmethod
    def from_store(
        cls,
        store: EpisodeStore,
        horizon: int,
        n_obs_steps: int,
        obs_keys: Sequence[str],
        action_key: str = "action",
        pad_before: int | None = None,
        pad_after: int | None = None,
        episode_indices: np.ndarray | None = None,
    ) -> SequenceSampler:
        """A sampler over ``store``'s committed episodes, with the needed keys loaded into RAM."""
        data = store.load([*obs_keys, action_key])
        return cls(
            data,
            store.episode_ends,
            horizon,
            n_obs_steps,
            obs_keys,
            action_key=action_key,
            pad_before=pad_before,
            pad_after=pad_after,
            episode_indices=episode_indices,
        )

    def __len__(self) -> int:
        return len(self._win_start)

    def window_indices(self, i: int) -> np.ndarray:
        """Global step indices (horizon,) of window ``i``, clamped to its episode."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sampler: index {i} out of range for {n} windows")
        t = np.clip(self._win_start[i] + self._steps, 0, self._ep_last[i])
        return self._ep_start[i] + t

    def sample_batch(self, indices: np.ndarray) -> dict:
        """Windows ``indices`` stacked: ``{"obs": {key: (B, n_obs_steps, ...)}, "action": (B, horizon, ...)}``
        (+ ``"text"``: B strings, with ``episode_text`` or ``skills``; with ``skills`` also
        ``"skill_index"``, ``"done"``, ``"action_weight"`` (B,) and ``"skill_params"`` (B, P)).

        One fancy-indexing gather per key, so a training batch costs no Python loop.
        """
        i = np.asarray(indices, dtype=np.int64)
        t = np.clip(self._win_start[i, None] + self._steps, 0, self._ep_last[i, None])
        idx = self._ep_start[i, None] + t
        obs_idx = idx[:, : self.n_obs_steps]
        held = np.minimum(obs_idx, self._hold_until[i, None]) if self.hold_keys else obs_idx
        batch = {
            "obs": {k: self.data[k][held if k in self.hold_keys else obs_idx] for k in self.obs_keys},
            "action": self.data[self.action_key][idx],
        }
        if self._text is not None:
            batch["text"] = self._text[self._episode[i]].tolist()
        if self._skills is not None:
            batch |= {k: v[i] for k, v in self._skills.items()}
            batch["text"] = batch["text"].tolist()
        return batch

    def __getitem__(self, i: int) -> dict:
        """``{"obs": {key: (n_obs_steps, *shape)}, "action": (horizon, *action_shape)}`` (+ ``"text"``,
        and the skill keys of ``sample_batch`` with ``skills``)."""
        idx = self.window_indices(i)
        obs_idx = idx[: self.n_obs_steps]
        held = np.minimum(obs_idx, self._hold_until[i]) if self.hold_keys else obs_idx
        sample = {
            "obs": {k: np.asarray(self.data[k][held if k in self.hold_keys else obs_idx])
                    for k in self.obs_keys},
            "action": np.asarray(self.data[self.action_key][idx]),
        }
        if self._text is not None:
            sample["text"] = str(self._text[self._episode[i]])
        if self._skills is not None:
            sample |= {k: v[i] for k, v in self._skills.items()}
            sample["text"] = str(sample["text"])
        return sample
