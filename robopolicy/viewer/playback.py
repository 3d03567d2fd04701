"""The native viewer's playback controls, free of any window: which step of an episode is shown,
whether it plays or is paused, and what each key does. Steps run 0..last (the state after reset,
then after each action); playing advances one step per control period and pauses at the last
step, so the episode's end stays on screen until the window is closed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Command(Enum):
    PLAY_PAUSE = "play/pause"
    STEP = "step"
    STEP_BACK = "step back"
    RESTART = "restart"


# Key names as the backend's interactive viewer reports them (`Backend.interactive_viewer`).
KEYS: dict[str, Command] = {
    "space": Command.PLAY_PAUSE,
    "right": Command.STEP, ".": Command.STEP,
    "left": Command.STEP_BACK, ",": Command.STEP_BACK,
    "backspace": Command.RESTART, "r": Command.RESTART,
}

HELP = "Space play/pause   Right/. step   Left/, back   Backspace/R restart"


@dataclass
class Playback:
    """Step `t` of an episode whose last step is `last`, playing or paused."""

    last: int
    t: int = 0
    paused: bool = False

    def __post_init__(self) -> None:
        if self.last < 0:
            raise ValueError(f"last step {self.last} < 0")
        if self.last == 0:  # nothing to play: the one state stays on screen
            self.paused = True

    @property
    def at_end(self) -> bool:
        return self.t >= self.last

    def key(self, name: str) -> Command | None:
        """Apply the command bound to key `name`; returns it (None for an unbound key)."""
        command = KEYS.get(name.lower())
        if command is not None:
            self.apply(command)
        return command

    def apply(self, command: Command) -> None:
        if command is Command.PLAY_PAUSE:
            if self.paused and self.at_end:  # play again from the start, as a video player does
                self.t = 0
            self.paused = not self.paused or self.last == 0
        elif command is Command.STEP:  # one step, paused: stepping while playing would race it
            self.paused = True
            self.t = min(self.t + 1, self.last)
        elif command is Command.STEP_BACK:
            self.paused = True
            self.t = max(self.t - 1, 0)
        elif command is Command.RESTART:
            self.t, self.paused = 0, self.last == 0

    def tick(self) -> bool:
        """One control period passed: the next step if playing (pausing at the last step).
        Returns whether the shown step changed."""
        if self.paused:
            return False
        self.t += 1
        if self.at_end:
            self.t, self.paused = self.last, True
        return True

    def status(self) -> str:
        """`step t / last  playing|paused` for the overlay."""
        mode = "paused" if self.paused else "playing"
        if self.paused and self.at_end:
            mode = "end (Space replays)"
        return f"step {self.t} / {self.last}   {mode}"
