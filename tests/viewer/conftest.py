"""Fixtures of the viewer tests: an evaluation run folder written from a real expert episode."""

from __future__ import annotations

import json

import numpy as np
import pytest

# the fake policy predicts a 16-step chunk every 8 steps, whose entry 1 is the current step
# (as diffusion policy's chunks with 2 observation steps)
CHUNK_EVERY, HORIZON, OFFSET = 8, 16, 1


def write_eval_run(root, env_config: dict, task: dict, actions: np.ndarray, episode: int = 3,
                   split: str = "test1", with_chunks: bool = True, **fields) -> dict:
    """An eval run folder as `robopolicy eval` writes it: `<root>/run.json` (env config) and
    `<root>/<split>/episodes.jsonl` + `rollouts/episode_<i>.npz`; `fields` join the record
    (e.g. a bi-level episode's skills). Returns the record."""
    folder = root / split
    (folder / "rollouts").mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps({"env": env_config, "policy": "test"}))
    arrays = {"action": actions.astype(np.float32)}
    if with_chunks:  # the chunk made at t0: the executed actions t0 - OFFSET.., 1 cm higher
        t = np.arange(len(actions))
        pred_step = (t - t % CHUNK_EVERY).astype(np.int32)
        idx = np.clip(pred_step[:, None] - OFFSET + np.arange(HORIZON), 0, len(actions) - 1)
        chunk = actions[idx].astype(np.float32)
        chunk[..., 2] += 0.01
        arrays.update(pred_chunk=chunk, pred_step=pred_step, pred_offset=np.int32(OFFSET))
    rollout = f"rollouts/episode_{episode:04d}.npz"
    np.savez(folder / rollout, **arrays)
    record = {"episode": episode, "task_id": task["task_id"], "task_class": task["task_class"],
              "category": task["category"], "instance_id": task["instance_id"],
              "seed": task["init_seed"], "split": split, "success": True, "completion": 1.0,
              "steps": len(actions), "instruction": task["instruction"], "task": task,
              "rollout": rollout, **fields}
    with open(folder / "episodes.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory):
    """(run folder, record): one real scripted-expert episode of the default TaskPool's task 0,
    stored as episode 3 of split test1 with fake predicted chunks (the policy's)."""
    from robopolicy.data.collect import run_expert_episode
    from sims.partmanip.expert import ScriptedExpert
    from sims.partmanip.factory import make_env
    from sims.partmanip.tasks import TaskPool

    pool = TaskPool()
    env = make_env(None, pool)
    try:
        task = pool.task(0)
        data, info = run_expert_episode(env, ScriptedExpert(), task)
    finally:
        env.close()
    assert info["success"]
    root = tmp_path_factory.mktemp("eval") / "run"
    record = write_eval_run(root, env.config.to_config(), task.to_dict(), data["action"])
    return root, record
