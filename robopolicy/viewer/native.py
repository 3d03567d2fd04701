"""Replay an episode in the simulator's own interactive window (`Backend.interactive_viewer`;
MuJoCo's passive viewer) at the env's control rate, with keys to pause, step, step back and
restart (`robopolicy.viewer.playback`) and the instruction, the running skill and the step shown
over the scene. Every state is kept once replayed, so stepping back or restarting is instant.
After the last step the window stays open, paused, until it is closed or Ctrl-C. Needs a
display."""

from __future__ import annotations

import os
import queue
import sys
import time

from robopolicy.errors import RobopolicyError
from robopolicy.viewer.playback import HELP, Playback
from robopolicy.viewer.sources import Episode
from sims.core.control import CONTROL_HZ

NO_DISPLAY = ("view --native: no display (DISPLAY is unset) for MuJoCo's viewer; use --save "
              "out.rrd, --video out.mp4 or --web instead")


def has_display() -> bool:
    """Whether a window can be opened (an X11/Wayland display, or macOS)."""
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or
                                            os.environ.get("WAYLAND_DISPLAY"))


class ReplayStates:
    """An episode's replay whose simulator states are kept as they are first reached, so that
    `show(t)` puts the simulation in any step's state: a step already seen is restored at once,
    a later one replayed from the latest state. `env` is the replaying env."""

    def __init__(self, episode: Episode) -> None:
        from robopolicy.viewer.replay import replay_steps

        self._replay = replay_steps(episode)
        _, self.env, _, info = next(self._replay)
        self._states, self.infos = [self.env.get_state()], [info]
        self._shown, self.last = 0, episode.steps

    def show(self, t: int) -> dict:
        """Put the simulation in step `t`'s state (0..T); returns that step's env info."""
        if not 0 <= t <= self.last:
            raise IndexError(f"step {t} outside 0..{self.last}")
        if t >= len(self._states):
            if self._shown != len(self._states) - 1:  # the replay goes on from its latest state
                self.env.set_state(self._states[-1])
            while len(self._states) <= t:
                _, _, _, info = next(self._replay)
                self._states.append(self.env.get_state())
                self.infos.append(info)
        elif t != self._shown:
            self.env.set_state(self._states[t])
        self._shown = t
        return self.infos[t]

    def close(self) -> None:
        self._replay.close()  # closes the env


def overlay(instruction: str, info: dict, playback: Playback) -> dict[str, tuple[str, str]]:
    """The text over the scene: task, running skill and step top left, the keys bottom left."""
    from robopolicy.viewer.captions import skill_caption

    skill = (f"all done (last: {info['skill_instruction']})" if info.get("success")
             else skill_caption(info))
    return {"top left": ("task\nskill\nstep", f"{instruction}\n{skill}\n{playback.status()}"),
            "bottom left": ("keys", HELP)}


def play_native(episode: Episode, fps: float = CONTROL_HZ) -> None:
    """Show `episode`'s replay in the simulator's window until it is closed or Ctrl-C."""
    if not has_display():
        raise RobopolicyError(NO_DISPLAY)
    if not fps > 0:
        raise RobopolicyError(f"view --native: fps={fps}; the playback rate must be > 0")
    _use_glfw()
    try:
        _play(episode, fps)
    except KeyboardInterrupt:  # Ctrl-C is how a terminal user closes it: no traceback
        pass
    print("native viewer closed")


def _use_glfw() -> None:
    """Make the simulator load GLFW's GL: a window's drawing needs it, and with a headless GL
    (MUJOCO_GL=egl or osmesa, e.g. exported for training) MuJoCo's window hangs at "loading"."""
    if "mujoco" in sys.modules:  # its GL is chosen as it is imported: too late to change
        if os.environ.get("MUJOCO_GL") != "glfw":
            raise RobopolicyError(f"view --native: mujoco was loaded with MUJOCO_GL="
                                  f"{os.environ.get('MUJOCO_GL')}; its window needs glfw")
        return
    os.environ["MUJOCO_GL"] = "glfw"
    if os.environ.get("PYOPENGL_PLATFORM") in ("egl", "osmesa"):
        del os.environ["PYOPENGL_PLATFORM"]


def _play(episode: Episode, fps: float) -> None:
    keys: queue.SimpleQueue[str] = queue.SimpleQueue()
    states, viewer = ReplayStates(episode), None
    try:
        try:  # the window's thread only queues keys: the playback state lives on this thread
            viewer = states.env.backend.interactive_viewer(keys.put)
        except RuntimeError as e:
            raise RobopolicyError(f"view --native: cannot open a window on DISPLAY="
                                  f"{os.environ.get('DISPLAY')}: {e}") from None
        _loop(viewer, states, Playback(last=episode.steps), episode.task["instruction"],
              keys, 1.0 / fps)
    finally:
        if viewer is not None:
            viewer.close()
        states.close()


def _loop(viewer, states: ReplayStates, playback: Playback, instruction: str,
          keys: queue.SimpleQueue, period: float) -> None:
    shown, due = None, time.perf_counter() + period
    while viewer.is_running():
        while not keys.empty():
            playback.key(keys.get())
        now = time.perf_counter()
        if playback.paused:  # playing resumes one control period after the key
            due = now + period
        elif now >= due:
            playback.tick()
            due = max(due + period, now)
        if (playback.t, playback.paused) != shown:
            info = states.show(playback.t)
            viewer.set_overlay(overlay(instruction, info, playback))
            viewer.sync()
            shown = (playback.t, playback.paused)
        time.sleep(min(0.01, max(0.0, due - time.perf_counter())))
