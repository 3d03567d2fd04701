"""Replaying an episode in the simulator from its recorded actions (the env is deterministic for a
task + seed, and for an augmented or recovery episode its placement or start state), and the
episode's video frames (recorded images if stored, else replayed).

Step convention: step 0 is the state after reset, step t+1 the state after executing action t,
so an episode of T actions has T + 1 states (and video frames).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from robopolicy.data.store import EpisodeStore
from robopolicy.viewer.sources import Episode, from_store


def replay_steps(episode: Episode,
                 obs_keys: Sequence[str] = ()) -> Iterator[tuple[int, Any, dict, dict]]:
    """Replay `episode`: yields (t, env, obs, info) for t = 0..T, the env after reset and after
    each action. `obs_keys` chooses the observations rendered (whatever the episode recorded).
    The env (a PartManipEnv) is closed when the iteration ends."""
    # the backend is loaded at the first reset (it picks its GL before its simulator loads)
    from sims.partmanip.factory import make_env

    env = make_env({**episode.env_config, "obs_keys": list(obs_keys)})
    try:
        obs, info = env.reset(options=episode.reset_options)
        yield 0, env, obs, info
        for t, action in enumerate(episode.actions):
            obs, _, _, _, info = env.step(action)
            yield t + 1, env, obs, info
    finally:
        env.close()


def replay_frames(store: EpisodeStore, episode: int, camera: str = "agentview",
                  size: tuple[int, int] = (256, 256)) -> tuple[list[np.ndarray], dict]:
    """(frames, info) of a stored episode's replay: one frame per state, and the final info."""
    return _render_replay(from_store(store, episode), camera, size)


def _render_replay(episode: Episode, camera: str,
                   size: tuple[int, int]) -> tuple[list[np.ndarray], dict]:
    frames, info = [], {}
    for _, env, _, step_info in replay_steps(episode):
        frames.append(env.backend.render(camera, size=size).rgb)
        info = step_info
    return frames, info


def captioned_frames(episode: Episode, cameras: Sequence[str] = ("agentview", "wrist"),
                     size: tuple[int, int] = (256, 256), mask: bool = False) -> np.ndarray:
    """The episode as an evaluation video shows it: the `cameras` side by side at `size` each,
    the instruction in a bar above and the running skill below, one frame per state; with
    `mask`, the current skill's target part is overlaid in red."""
    from robopolicy.viewer.captions import caption_frames, skill_caption
    from robopolicy.viewer.overlay import overlay_mask

    frames, skills = [], []
    keys = [f"part_mask.{cam}" for cam in cameras] if mask else []
    for _, env, obs, info in replay_steps(episode, keys):
        views = [env.backend.render(cam, size=size).rgb for cam in cameras]
        if mask:
            views = [overlay_mask(v, obs[f"part_mask.{cam}"]) for v, cam in zip(views, cameras,
                                                                                strict=True)]
        frames.append(np.concatenate(views, axis=1))
        skills.append(skill_caption(info))
    return caption_frames(frames, episode.task["instruction"], skills)


def episode_frames(episode: Episode, camera: str = "agentview",
                   size: tuple[int, int] = (256, 256)) -> list[np.ndarray]:
    """The episode as video frames (recorded images if present, else replayed at `size`)."""
    key = f"rgb.{camera}"
    if key in episode.recorded:
        return list(episode.recorded[key])
    return _render_replay(episode, camera, size)[0]
