"""EnvState: everything PartManipEnv needs to continue an episode exactly from a saved point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnvState:
    """A snapshot of a PartManipEnv episode (`env.get_state()`, `env.set_state(s)`,
    `env.reset(options={"state": s})`).

    `task`: the TaskSpec's dict (its instance is rebuilt if another is loaded); `sim`: the
    simulator state (robot, object pose, articulation, velocities); `skill_index` and
    `skill_start`: the chain tracker's position (the skill it is at, and where the object was
    when that skill began); `steps`: control steps taken; `target`: the last commanded action
    (10,); `skill`: the planner skill source (None: the oracle)."""

    task: dict
    sim: np.ndarray
    skill_index: int
    skill_start: np.ndarray
    steps: int
    target: np.ndarray
    skill: dict | None = None

    def to_dict(self) -> dict:
        """JSON-able."""
        return {"task": self.task, "sim": self.sim.tolist(), "skill_index": self.skill_index,
                "skill_start": self.skill_start.tolist(), "steps": self.steps,
                "target": self.target.tolist(), "skill": self.skill}

    @classmethod
    def from_dict(cls, d: dict | EnvState) -> EnvState:
        if isinstance(d, EnvState):
            return d
        return cls(dict(d["task"]), np.asarray(d["sim"], float), int(d["skill_index"]),
                   np.asarray(d["skill_start"], float), int(d.get("steps", 0)),
                   np.asarray(d["target"], float), d.get("skill"))
