"""Frames of a stored episode: the recorded camera images if the store has them, otherwise a
replay of the recorded actions in the simulator (the env is deterministic for a task + seed)."""

from __future__ import annotations

import numpy as np

from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError


def replay_frames(store: EpisodeStore, episode: int, camera: str = "agentview",
                  size: tuple[int, int] = (256, 256)) -> tuple[list[np.ndarray], dict]:
    """(frames, info): one frame per step (+ the final state) and the replay's final info."""
    from sims.partmanip.env import EnvConfig, PartManipEnv
    from sims.partmanip.task_source import task_source

    meta = store.episode_meta(episode)
    cfg = store.env_config
    if "env" not in cfg or "tasks" not in cfg:
        raise RobopolicyError(f"dataset {store.path}: no env config recorded, cannot replay")
    env_cfg = EnvConfig.from_config({**cfg["env"], "obs_keys": [], "render_size": list(size)})
    pool = task_source(cfg["tasks"])
    task = pool.task(meta["seed"])
    if task.task_id != meta["task_id"]:
        raise RobopolicyError(f"dataset {store.path}: episode {episode} ({meta['task_id']}) does not "
                              f"match the recorded task pool (seed {meta['seed']} gives {task.task_id})")
    env = PartManipEnv(env_cfg, pool)
    try:
        env.reset(options={"task": task})
        frames = [env.backend.render(camera, size=size).rgb]
        info: dict = {}
        for action in store.get_episode(episode, ["action"])["action"]:
            *_, info = env.step(action)
            frames.append(env.backend.render(camera, size=size).rgb)
    finally:
        env.close()
    return frames, info


def episode_frames(store: EpisodeStore, episode: int, camera: str = "agentview",
                   size: tuple[int, int] = (256, 256)) -> list[np.ndarray]:
    """The episode as video frames (recorded images if present, else replayed)."""
    key = f"rgb.{camera}"
    if key in store.keys:
        return list(store.get_episode(episode, [key])[key])
    return replay_frames(store, episode, camera, size)[0]
