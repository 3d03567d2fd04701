"""`robopolicy view`: show one episode of a dataset store or an evaluation run: in rerun
(spawned viewer, `--save out.rrd`, `--web`), as an mp4 (`--video out.mp4`) or in MuJoCo's own
viewer (`--native`). The episode is replayed in the simulator from its recorded actions."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app, output_dir
from robopolicy.errors import RobopolicyError

NO_DISPLAY = ("view: no display to open the rerun viewer on (DISPLAY is unset); use --save "
              "out.rrd, --video out.mp4 or --web")


@hydra_app("view")
def main(cfg: DictConfig) -> None:
    from robopolicy.viewer.native import NO_DISPLAY as NATIVE_NO_DISPLAY
    from robopolicy.viewer.native import has_display, play_native
    from robopolicy.viewer.rerun_log import CAMERAS
    from robopolicy.viewer.sources import load_episode

    if cfg.camera not in (*CAMERAS, "both"):
        raise RobopolicyError(f"view: unknown camera {cfg.camera!r} "
                              f"(known: {', '.join(CAMERAS)}, both)")
    if cfg.save and cfg.web:
        raise RobopolicyError("view: --save and --web both given; pick one")
    episode = load_episode(cfg.path, int(cfg.episode), cfg.split)  # cheap: replays nothing
    spawn = not (cfg.save or cfg.web or cfg.video or cfg.native)  # no flag: the rerun viewer
    if cfg.native and not has_display():
        raise RobopolicyError(NATIVE_NO_DISPLAY)
    if spawn and not has_display():
        raise RobopolicyError(NO_DISPLAY)
    print(episode.describe())
    if cfg.video:
        _write_video(episode, cfg)
    if cfg.save or cfg.web or spawn:
        _show_in_rerun(episode, cfg)
    if cfg.native:
        play_native(episode, cfg.fps)


def _write_video(episode, cfg: DictConfig) -> None:
    from robopolicy.viewer.replay import captioned_frames
    from robopolicy.viewer.rerun_log import CAMERAS
    from robopolicy.viewer.video import write_mp4

    cameras = CAMERAS if cfg.camera == "both" else (cfg.camera,)
    frames = captioned_frames(episode, cameras, tuple(cfg.size), mask=bool(cfg.mask))
    out = write_mp4(frames, Path(cfg.video), cfg.fps)
    print(f"video:   {out} ({len(frames)} frames)")


def _show_in_rerun(episode, cfg: DictConfig) -> None:
    import rerun as rr

    from robopolicy.viewer.rerun_log import blueprint
    from robopolicy.viewer.web import WebViewer

    rec = rr.RecordingStream("robopolicy_view")
    layout = blueprint()
    if cfg.save:
        Path(cfg.save).parent.mkdir(parents=True, exist_ok=True)
        rec.save(cfg.save, default_blueprint=layout)
        _log(episode, rec)
        rec.disconnect()
        print(f"rerun:   {cfg.save} (open with `rerun {cfg.save}`)")
    elif cfg.web:
        log_path = output_dir() / "rerun_server.log"
        with WebViewer(cfg.host, cfg.grpc_port, cfg.web_port, log_path) as server:
            rec.connect_grpc(server.grpc_url, default_blueprint=layout)
            print(f"web viewer: {server.page_url}")
            _log(episode, rec)
            print(f"serving on {cfg.host}; Ctrl-C to stop")
            try:
                while True:
                    time.sleep(1.0)
            except KeyboardInterrupt:
                rec.disconnect()
    else:
        rec.spawn(port=cfg.grpc_port, default_blueprint=layout)
        _log(episode, rec)


def _log(episode, rec) -> None:
    """Log `episode` to `rec` and make sure it was delivered."""
    from robopolicy.viewer.rerun_log import log_episode

    rec.send_recording_name(f"{episode.task['task_id']} episode {episode.index}")
    t0 = time.perf_counter()
    info = log_episode(episode, rec)
    try:
        rec.flush()
    except RuntimeError as e:  # e.g. a spawned viewer that could not start (no usable GPU)
        raise RobopolicyError(f"view: rerun could not deliver the recording "
                              f"({str(e).splitlines()[0]}); try --save out.rrd or --web") from None
    print(f"logged {episode.steps + 1} steps in {time.perf_counter() - t0:.1f} s "
          f"(replay success={info.get('success')})")
