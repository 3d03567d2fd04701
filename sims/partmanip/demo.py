"""One scripted-expert episode on a PartManipEnv: the demonstration collection stores, and the
calibration that measures which part-level skills the expert can do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sims.partmanip.env import PartManipEnv
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.tasks import TaskSpec


def run_expert_episode(env: PartManipEnv, expert: ScriptedExpert, task: TaskSpec,
                       state: dict | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Run ``task`` on ``env`` with ``expert`` from reset to success, failure or the horizon;
    from ``state`` (an EnvState dict of that task) instead of the task's initial state when
    given: the expert takes over there, at the skill the chain tracker is at.

    Returns the stacked observations and actions (obs_t paired with action_t, each with a
    leading time axis) and the final info, with ``skill_starts``: the step at which each skill
    began (skills done before ``state`` began at step 0, with no steps). An ExpertFailure ends the episode as a failure (``info["failure"]`` says why).
    """
    from sims.partmanip.expert import ExpertFailure

    obs, info = env.reset(options={"task": task, "state": state})
    expert.reset(env)
    steps: dict[str, list] = {k: [] for k in obs}
    steps["action"] = []
    skill_starts = [0] * (min(info["skill_index"], len(task.chain) - 1) + 1)
    for t in range(task.horizon):
        try:
            action = expert.act(env)
        except ExpertFailure as e:
            info = {**info, "success": False, "failure": str(e)}
            break
        for k, v in obs.items():
            steps[k].append(v)
        steps["action"].append(action)
        if info["skill_index"] >= len(skill_starts) and info["skill_index"] < len(task.chain):
            skill_starts.append(t)  # obs_t is the first observation of the new skill
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    data = {k: np.stack(v) if v else np.zeros((0,)) for k, v in steps.items()}
    return data, {**info, "skill_starts": skill_starts}
