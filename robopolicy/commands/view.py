"""`robopolicy view`: render one stored episode to an mp4."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app, output_dir


@hydra_app("view")
def main(cfg: DictConfig) -> None:
    from robopolicy.data.store import EpisodeStore
    from robopolicy.errors import RobopolicyError
    from robopolicy.viewer.replay import episode_frames
    from robopolicy.viewer.video import write_mp4

    store = EpisodeStore.open(cfg.path)
    if not 0 <= cfg.episode < store.n_episodes:
        raise RobopolicyError(f"dataset {store.path}: no episode {cfg.episode} "
                              f"(it has {store.n_episodes})")
    meta = store.episode_meta(cfg.episode)
    frames = episode_frames(store, cfg.episode, cfg.camera, tuple(cfg.size))
    out = Path(cfg.video) if cfg.video else output_dir() / f"episode_{cfg.episode:04d}.mp4"
    write_mp4(frames, out, cfg.fps)
    print(f"episode: {cfg.episode} {meta['task_id']} seed {meta['seed']} "
          f"success={meta['success']} ({meta['length']} steps): {meta['instruction']}\n"
          f"video:   {out} ({len(frames)} frames)")
