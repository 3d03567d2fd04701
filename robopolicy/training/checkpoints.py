"""Periodic rollout evaluation during training, and the top-k checkpoints it ranks.

Every ``trainer.rollout_every`` steps the EMA policy is saved to ``checkpoints/step_<N>`` and
rolled out on the demos' own suite (catalog split ``trainer.rollout_split``, default ``val``)
through the evaluation rollout pool. ``checkpoints/top_k.json`` lists the best
``trainer.keep_top_k`` by success rate (later steps win ties); other step folders are deleted.
``checkpoints/latest`` is kept regardless.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
TOP_K_FILE = "top_k.json"


def rollout_suite(env_config: dict, split: str) -> tuple[dict, dict, int]:
    """(env, tasks, first seed) for rollouts on the suite a store was collected from: the catalog's
    `split`, or held-out seeds (from 100,000, like `robopolicy eval`) for a sampled task pool."""
    env, tasks = dict(env_config.get("env") or {}), dict(env_config.get("tasks") or {})
    if tasks.get("source") == "catalog":
        return env, {**tasks, "split": split}, 0
    return env, tasks, 100_000


class TopK:
    """The best `k` rollout-evaluated checkpoints of a run, by success rate."""

    def __init__(self, ckpt_root: Path, k: int) -> None:
        self.root, self.k = ckpt_root, k
        path = ckpt_root / TOP_K_FILE
        self.entries: list[dict] = json.loads(path.read_text()) if path.is_file() else []

    def add(self, step: int, success_rate: float, policy_dir: Path) -> None:
        """Record a checkpoint's success; delete the folders that fell out of the top k."""
        self.entries = [e for e in self.entries if e["step"] != step]
        self.entries.append({"step": step, "success_rate": success_rate, "path": policy_dir.name})
        self.entries.sort(key=lambda e: (-e["success_rate"], -e["step"]))
        kept, dropped = self.entries[: self.k], self.entries[self.k:]
        self.entries = kept
        tmp = self.root / f".{TOP_K_FILE}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(kept, indent=2))
        os.replace(tmp, self.root / TOP_K_FILE)
        for e in dropped:
            shutil.rmtree(self.root / e["path"], ignore_errors=True)
        log.info("top-%d checkpoints: %s", self.k,
                 ", ".join(f"step {e['step']} ({e['success_rate']:.0%})" for e in kept))

    @property
    def best(self) -> Path | None:
        return self.root / self.entries[0]["path"] if self.entries else None


def rollout_success(policy_dir: Path, env_config: dict, cfg: dict, out_dir: Path) -> float:
    """Roll the saved policy out on `cfg["rollout_episodes"]` episodes; returns its success rate."""
    from robopolicy.evaluation.config import EvalConfig, ExecutorConfig
    from robopolicy.evaluation.rollout import evaluate_policy

    env, tasks, seed = rollout_suite(env_config, cfg.get("rollout_split", "val"))
    executor = ExecutorConfig(workers=int(cfg.get("rollout_workers", 2)),
                              envs_per_worker=int(cfg.get("rollout_envs_per_worker", 4)))
    report = evaluate_policy(EvalConfig(policy_dir, env, tasks, out_dir,
                                        episodes=int(cfg["rollout_episodes"]), seed=seed,
                                        device=cfg.get("device", "auto"), executor=executor))
    return float(report["overall"]["success_rate"])
