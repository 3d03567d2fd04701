"""`robopolicy view`: show one episode of a dataset store or an evaluation run: in rerun
(spawned viewer, `--save out.rrd`, `--web`), as an mp4 (`--video out.mp4`) or in MuJoCo's own
viewer (`--native`). The episode is replayed in the simulator from its recorded actions."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from omegaconf import DictConfig

from robopolicy.commands.app import hydra_app
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
    frames = captioned_frames(episode, cameras, tuple(cfg.size))
    out = write_mp4(frames, Path(cfg.video), cfg.fps)
    print(f"video:   {out} ({len(frames)} frames)")


def _show_in_rerun(episode, cfg: DictConfig) -> None:
    import rerun as rr

    from robopolicy.viewer.rerun_log import blueprint, log_episode

    rec = rr.RecordingStream("robopolicy_view")
    layout = blueprint()
    if cfg.save:
        Path(cfg.save).parent.mkdir(parents=True, exist_ok=True)
        rec.save(cfg.save, default_blueprint=layout)
    elif cfg.web:
        uri = rec.serve_grpc(grpc_port=cfg.grpc_port, default_blueprint=layout)
        rr.serve_web_viewer(web_port=cfg.web_port, open_browser=False, connect_to=uri)
        print(f"web viewer: http://localhost:{cfg.web_port}/?url={quote(uri, safe='')}")
    else:
        rec.spawn(port=cfg.grpc_port, default_blueprint=layout)
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
    if cfg.save:
        rec.disconnect()
        print(f"rerun:   {cfg.save} (open with `rerun {cfg.save}`)")
    elif cfg.web:
        print("serving; Ctrl-C to stop")
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            rec.disconnect()  # stop serving now: nothing is left to deliver
