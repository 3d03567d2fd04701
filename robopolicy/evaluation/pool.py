"""ProcessRolloutPool: K spawned worker processes with M envs each, stepped in lock-step."""

from __future__ import annotations

import multiprocessing as mp

from robopolicy.evaluation.worker import worker_main


class WorkerError(RuntimeError):
    """A worker raised while resetting or stepping an env (its traceback is the message)."""


class ProcessRolloutPool:
    """Envs addressed by a global slot index: slot = worker * envs_per_worker + local index.

    `reset`/`step` take per-slot requests, send every worker its share first and then gather,
    so workers simulate in parallel while the parent waits.
    """

    def __init__(self, env_config: dict, task_config: dict, workers: int = 2,
                 envs_per_worker: int = 4):
        self.workers, self.envs_per_worker = workers, envs_per_worker
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, env_config, task_config,
                                                      envs_per_worker), daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)

    @property
    def n_slots(self) -> int:
        return self.workers * self.envs_per_worker

    def _call(self, cmd: str, requests: dict[int, list]) -> list:
        for w, reqs in requests.items():
            self._conns[w].send((cmd, reqs))
        out = []
        for w in requests:
            status, payload = self._conns[w].recv()
            if status != "ok":
                raise WorkerError(f"rollout worker {w} failed:\n{payload}")
            out += [(w * self.envs_per_worker + r[0], *r[1:]) for r in payload]
        return out

    def _split(self, items: list[tuple]) -> dict[int, list]:
        requests: dict[int, list] = {}
        for slot, *rest in items:
            w, local = divmod(slot, self.envs_per_worker)
            requests.setdefault(w, []).append((local, *rest))
        return requests

    def reset(self, items: list[tuple[int, dict, bool]]) -> list:
        """Reset slots to tasks: items of (slot, task_dict, record_video) -> (slot, obs, info)."""
        return self._call("reset", self._split(items))

    def step(self, items: list[tuple[int, object]]) -> list:
        """Step slots: items of (slot, action) -> (slot, obs, reward, term, trunc, info, frames)."""
        return self._call("step", self._split(items))

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self._conns, self._procs = [], []

    def __enter__(self) -> ProcessRolloutPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
