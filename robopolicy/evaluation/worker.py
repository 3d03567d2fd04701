"""A rollout worker process: owns M envs, resets and steps them on the parent's command.

Runs in a spawned process, so its simulator and renderer are created here, never inherited.
Protocol (over a Pipe): ("reset", [(slot, task_dict, record)]) -> [(slot, obs, info)];
("step", [(slot, action)]) -> [(slot, obs, reward, terminated, truncated, info, frames)];
("close", None) -> exits. `frames` is the episode's video when it ended and was recorded.
"""

from __future__ import annotations

import traceback


def worker_main(conn, env_config: dict, task_config: dict, n_envs: int) -> None:
    from sims.partmanip.env import EnvConfig, PartManipEnv
    from sims.partmanip.task_source import task_source

    envs = [PartManipEnv(EnvConfig.from_config(env_config), task_source(task_config))
            for _ in range(n_envs)]
    frames: dict[int, list | None] = {i: None for i in range(n_envs)}
    try:
        while True:
            cmd, payload = conn.recv()
            if cmd == "close":
                break
            try:
                if cmd == "reset":
                    out = []
                    for slot, task, record in payload:
                        obs, info = envs[slot].reset(options={"task": task})
                        frames[slot] = [envs[slot].render()] if record else None
                        out.append((slot, obs, info))
                elif cmd == "step":
                    out = []
                    for slot, action in payload:
                        obs, reward, term, trunc, info = envs[slot].step(action)
                        if frames[slot] is not None:
                            frames[slot].append(envs[slot].render())
                        video = frames[slot] if (term or trunc) else None
                        out.append((slot, obs, reward, term, trunc, info, video))
                else:
                    raise ValueError(f"unknown command {cmd!r}")
                conn.send(("ok", out))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        for env in envs:
            env.close()
