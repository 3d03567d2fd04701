"""A rollout worker: owns M envs and resets and steps them on the parent's command.

`EnvWorker` is the worker itself, built inside its own process (a spawned process or a Ray
actor), so its simulator and renderer are never inherited. `worker_main` serves one over a
Pipe. Requests and answers:

- reset [(slot, task_dict, record[, states])] -> [(slot, obs, info)]
- step  [(slot, action)]            -> [(slot, obs, reward, terminated, truncated, info, extra)]
- set_skill [(slot, call, before, after)] -> [(slot, obs, info)]
- end   [(slot,)]                   -> [(slot, extra)]: the parent ended the episode (a
  planner's failure); `extra` holds its recorded frames, as a step that ends it would

An action of None asks the worker's scripted expert for it (the `policy=expert` oracle, or the
expert executing a planner's skills). `set_skill` makes a planner's call (a dict, or None for
the chain tracker) the env's current skill, with the calls done `before` it and those planned
`after` it; the expert, if it acts, executes that call from here on. While a planner's skill
runs, `extra["skill_done"]` says whether it is done: the expert's own judgement when it acts,
else the skill's goal predicates (privileged: the oracle's advancing).
`extra` carries the executed action, and, when the episode ended and was recorded, its video
frames (agentview | wrist side by side) with the skill instruction shown at every frame. An
episode reset with `states` true also carries, at every step, the env's state before the action
(`extra["env_state"]`: sim, skill index, skill start, steps, target; the task is the parent's),
so any step can be restored exactly (recovery demos start from them).
Every answer also reports the seconds spent in physics and in rendering since the last one.
"""

from __future__ import annotations

import time
import traceback

import numpy as np

from robopolicy.viewer.captions import skill_caption

VIDEO_CAMERAS = ("agentview", "wrist")


class EnvWorker:
    """M PartManipEnvs (and an expert for each, built on first use)."""

    def __init__(self, env_config: dict, task_config: dict, n_envs: int,
                 expert_params: dict | None = None):
        from sims.partmanip.factory import make_env

        self.envs = [make_env(env_config, task_config) for _ in range(n_envs)]
        self.expert_params = expert_params  # ExpertParams overrides (policy=expert)
        self.experts: list = [None] * n_envs
        self.frames: list[list | None] = [None] * n_envs
        self.skills: list[list | None] = [None] * n_envs
        self.failed: list[str | None] = [None] * n_envs
        self.states: list[bool] = [False] * n_envs  # record each step's env state
        self._reset_s = 0.0  # resets: scene building and settling
        self._policy_s = 0.0  # the expert's planning, when it is the policy

    def _record(self, slot: int, info: dict) -> None:
        env = self.envs[slot]
        w, h = env.config.render_size
        t0 = time.perf_counter()
        views = [env.backend.render(cam, size=(w, h)).rgb for cam in VIDEO_CAMERAS]
        env.timings["render"] += time.perf_counter() - t0
        self.frames[slot].append(np.concatenate(views, axis=1))
        self.skills[slot].append(skill_caption(info))

    def reset(self, items: list[tuple]) -> list[tuple]:
        out = []
        for slot, task, record, *states in items:
            env = self.envs[slot]
            self.states[slot] = bool(states and states[0])
            t0 = time.perf_counter()
            obs, info = env.reset(options={"task": task})
            self._reset_s += time.perf_counter() - t0
            self.failed[slot] = None
            if self.experts[slot] is not None:
                self.experts[slot].reset(env)
            self.frames[slot] = [] if record else None
            self.skills[slot] = [] if record else None
            if record:
                self._record(slot, info)
            # what a planner may name: this instance's parts (an optional part may be missing)
            out.append((slot, obs, {**info, "object_parts": sorted(env.asset.parts)}))
        return out

    def _expert_action(self, slot: int) -> np.ndarray | None:
        from sims.partmanip.expert import ExpertFailure, ExpertParams, ScriptedExpert

        env = self.envs[slot]
        if self.experts[slot] is None:
            self.experts[slot] = ScriptedExpert(params=ExpertParams.from_overrides(self.expert_params))
            self.experts[slot].reset(env)  # built mid-episode only on its first step
        try:
            return self.experts[slot].act(env)
        except ExpertFailure as e:  # no plan for this skill: the episode ends as a failure
            self.failed[slot] = str(e)
            return None

    def set_skill(self, items: list[tuple]) -> list[tuple]:
        from sims.partmanip.expert import ExpertParams, ScriptedExpert
        from sims.partmanip.expert.state import SkillContext
        from sims.partmanip.skill_source import call_from_dict

        out = []
        for slot, call, before, after in items:
            env = self.envs[slot]
            env.set_skill(call, before)
            if call is not None and self.expert_params is not None:
                if self.experts[slot] is None:
                    self.experts[slot] = ScriptedExpert(
                        params=ExpertParams.from_overrides(self.expert_params))
                    self.experts[slot].reset(env, follow_chain=False)
                call = call_from_dict(call)
                context = SkillContext.starting(
                    call, env.snapshot(), tuple(map(call_from_dict, before)),
                    tuple(map(call_from_dict, after)))
                self.experts[slot].start_skill(call, context)
            out.append((slot, *env.observe()))
        return out

    def _skill_done(self, slot: int) -> bool:
        from sims.partmanip.expert.state import SkillContext, goal_predicates

        env, expert = self.envs[slot], self.experts[slot]
        if expert is not None:
            return expert.skill_done(env)
        skill = env.current_skill()
        if skill.call is None:
            return False
        context = SkillContext(before=skill.history, goal=skill.goal)
        return all(goal_predicates(env.snapshot(), skill.call, context, skill.goal).values())

    def step(self, items: list[tuple]) -> list[tuple]:
        out = []
        for slot, action in items:
            env = self.envs[slot]
            if action is None:
                t0 = time.perf_counter()
                action = self._expert_action(slot)
                self._policy_s += time.perf_counter() - t0
            state = _env_state(env) if self.states[slot] and action is not None else None
            if action is None:
                obs, reward, term, trunc = {}, 0.0, False, True
                info = {**env._info(), "success": False, "failure": self.failed[slot]}
            else:
                obs, reward, term, trunc, info = env.step(action)
                if self.frames[slot] is not None:
                    self._record(slot, info)
            extra = {"action": None if action is None else np.asarray(action, np.float32)}
            if state is not None:
                extra["env_state"] = state
            if info.get("skill_source") == "planner":
                extra["skill_done"] = self._skill_done(slot)
            if term or trunc:
                extra |= self._take_frames(slot)
            out.append((slot, obs, reward, term, trunc, info, extra))
        return out

    def end(self, items: list[tuple]) -> list[tuple]:
        """Episodes the parent ended: each one's recorded frames (nothing if unrecorded)."""
        return [(slot, self._take_frames(slot)) for slot, in items]

    def _take_frames(self, slot: int) -> dict:
        """The ended episode's video frames and their skill captions, handed over once."""
        if self.frames[slot] is None:
            return {}
        extra = {"frames": self.frames[slot], "skills": self.skills[slot]}
        self.frames[slot] = self.skills[slot] = None
        return extra

    def timings(self) -> dict[str, float]:
        """Seconds in physics, rendering, resets and the expert since the last call (then
        restarted)."""
        total = {"physics": 0.0, "render": 0.0, "reset": self._reset_s, "policy": self._policy_s}
        self._reset_s = self._policy_s = 0.0
        for env in self.envs:
            for k in ("physics", "render"):
                total[k] += env.timings[k]
                env.timings[k] = 0.0
        return total

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _env_state(env) -> dict[str, np.ndarray]:
    """The env's state now, without its task (EnvState's fields as arrays; `env.get_state()`
    would also copy the task at every step, which the parent already has)."""
    return {"sim": env.backend.get_state(), "skill_index": np.int32(env.tracker.index),
            "skill_start": np.asarray(env.tracker.move_start, float),
            "steps": np.int32(env.elapsed_steps), "target": env.commanded_target}


def worker_main(conn, env_config: dict, task_config: dict, n_envs: int,
                expert_params: dict | None = None) -> None:
    """Serve an EnvWorker over `conn` until "close" (or the parent goes away)."""
    t0 = time.perf_counter()
    worker = EnvWorker(env_config, task_config, n_envs, expert_params)
    worker._reset_s = time.perf_counter() - t0  # start-up counts as set-up work, like resets
    try:
        while True:
            cmd, payload = conn.recv()
            if cmd == "close":
                break
            try:
                if cmd not in ("reset", "step", "set_skill", "end"):
                    raise ValueError(f"unknown command {cmd!r}")
                out = getattr(worker, cmd)(payload)
                conn.send(("ok", (out, worker.timings())))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        worker.close()
