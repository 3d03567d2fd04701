"""Rollout pools: K workers with M envs each, stepped in lock-step by the evaluation loop.

`ProcessRolloutPool` runs the workers as spawned processes talking over pipes;
`RayRolloutPool` runs the same `EnvWorker` as Ray actors (a local Ray, or a cluster at
`address`). Both address envs by a global slot (worker * envs_per_worker + local index),
send every worker its share of a request before gathering, so workers simulate in parallel,
and replace a worker that dies: its slots come back as `lost`, for the caller to rerun.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, field

from robopolicy.errors import RobopolicyError
from robopolicy.evaluation.worker import EnvWorker, worker_main


class WorkerError(RuntimeError):
    """A worker raised while resetting or stepping an env (its traceback is the message): a
    bug, not a dead worker, so it stops the run instead of being retried."""


KINDS = ("physics", "render", "reset", "policy")  # what a worker reports its seconds in


@dataclass
class PoolStats:
    """Where a pool's time went. `physics_s`/`render_s` sum over all workers; `*_critical_s`
    count only the slowest worker of each call (what the parent waited for); `transfer_s` is
    the rest of the wait: pickling, pipes or Ray, and scheduling."""

    calls: int = 0
    wait_s: float = 0.0
    physics_s: float = 0.0
    render_s: float = 0.0
    reset_s: float = 0.0  # worker start-up, scene building and settling at resets
    policy_s: float = 0.0  # a policy computed in the workers (the scripted expert)
    physics_critical_s: float = 0.0
    render_critical_s: float = 0.0
    reset_critical_s: float = 0.0
    policy_critical_s: float = 0.0
    restarts: int = 0
    lost_slots: list = field(default_factory=list)

    @property
    def transfer_s(self) -> float:
        busy = sum(getattr(self, f"{k}_critical_s") for k in KINDS)
        return max(0.0, self.wait_s - busy)

    def add(self, wait: float, timings: list[dict]) -> None:
        self.calls += 1
        self.wait_s += wait
        for k in KINDS:
            setattr(self, f"{k}_s", getattr(self, f"{k}_s") + sum(t[k] for t in timings))
        if timings:
            slowest = max(timings, key=lambda t: sum(t[k] for k in KINDS))
            for k in KINDS:
                name = f"{k}_critical_s"
                setattr(self, name, getattr(self, name) + slowest[k])


class _Pool:
    """Slot bookkeeping shared by both pools; subclasses send, gather and restart workers."""

    def __init__(self, workers: int, envs_per_worker: int):
        self.workers, self.envs_per_worker = workers, envs_per_worker
        self.stats = PoolStats()

    @property
    def n_slots(self) -> int:
        return self.workers * self.envs_per_worker

    def _split(self, items: list[tuple]) -> dict[int, list]:
        requests: dict[int, list] = {}
        for slot, *rest in items:
            w, local = divmod(slot, self.envs_per_worker)
            requests.setdefault(w, []).append((local, *rest))
        return requests

    def _call(self, cmd: str, items: list[tuple]) -> tuple[list, list[int]]:
        requests = self._split(items)
        t0 = time.perf_counter()
        answers, dead = self._exchange(cmd, requests)
        out, timings = [], []
        for w, (payload, timing) in answers.items():
            out += [(w * self.envs_per_worker + r[0], *r[1:]) for r in payload]
            timings.append(timing)
        self.stats.add(time.perf_counter() - t0, timings)
        lost = []
        for w in dead:
            self._restart(w)
            self.stats.restarts += 1
            lost += [w * self.envs_per_worker + r[0] for r in requests[w]]
        self.stats.lost_slots += lost
        return out, lost

    def reset(self, items: list[tuple]) -> tuple[list, list[int]]:
        """Reset slots to tasks: items of (slot, task_dict, record_video[, record_states]) ->
        ([(slot, obs, info)], lost slots)."""
        return self._call("reset", items)

    def step(self, items: list[tuple[int, object]]) -> tuple[list, list[int]]:
        """Step slots: items of (slot, action or None for the expert) -> ([(slot, obs, reward,
        terminated, truncated, info, extra)], lost slots)."""
        return self._call("step", items)

    def set_skill(self, items: list[tuple[int, dict | None, list, list]]) -> tuple[list, list[int]]:
        """Set a planner's skill: items of (slot, call dict or None, calls before, calls after)
        -> ([(slot, obs, info)], lost slots)."""
        return self._call("set_skill", items)

    def end(self, slots: list[int]) -> tuple[list, list[int]]:
        """Tell the workers the parent ended these slots' episodes -> ([(slot, extra with the
        recorded frames)], lost slots)."""
        return self._call("end", [(s,) for s in slots])

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProcessRolloutPool(_Pool):
    """Workers as spawned processes, each serving an EnvWorker over a pipe."""

    def __init__(self, env_config: dict, task_config: dict, workers: int = 2,
                 envs_per_worker: int = 4, expert_params: dict | None = None):
        super().__init__(workers, envs_per_worker)
        self._args = (env_config, task_config, envs_per_worker, expert_params)
        self._ctx = mp.get_context("spawn")
        self._conns: list = [None] * workers
        self._procs: list = [None] * workers
        for w in range(workers):
            self._start(w)

    def _start(self, w: int) -> None:
        parent, child = self._ctx.Pipe()
        p = self._ctx.Process(target=worker_main, args=(child, *self._args), daemon=True)
        p.start()
        child.close()  # so the parent's recv sees EOF when the worker dies
        self._conns[w], self._procs[w] = parent, p

    @property
    def pids(self) -> list[int]:
        """Worker process ids (for tests and debugging)."""
        return [p.pid for p in self._procs]

    def _exchange(self, cmd, requests):
        dead = []
        for w, reqs in requests.items():
            try:
                self._conns[w].send((cmd, reqs))
            except (BrokenPipeError, ConnectionResetError, OSError):
                dead.append(w)
        answers = {}
        for w in requests:
            if w in dead:
                continue
            try:
                status, payload = self._conns[w].recv()
            except (EOFError, ConnectionResetError, OSError):
                dead.append(w)
                continue
            if status != "ok":
                raise WorkerError(f"rollout worker {w} failed:\n{payload}")
            answers[w] = payload
        return answers, dead

    def _restart(self, w: int) -> None:
        self._conns[w].close()
        self._procs[w].join(timeout=5)
        if self._procs[w].is_alive():
            self._procs[w].kill()
        self._start(w)

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(("close", None))
            except (BrokenPipeError, OSError, AttributeError):
                pass
        for p in self._procs:
            if p is None:
                continue
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self._conns, self._procs = [], []


class _RayEnvWorker:
    """An EnvWorker as a Ray actor: each call answers (results, timings) like the pipe."""

    def __init__(self, env_config: dict, task_config: dict, n_envs: int,
                 expert_params: dict | None = None):
        self.worker = EnvWorker(env_config, task_config, n_envs, expert_params)

    def call(self, cmd: str, payload: list):
        return getattr(self.worker, cmd)(payload), self.worker.timings()

    def pid(self) -> int:
        import os

        return os.getpid()


class RayRolloutPool(_Pool):
    """Workers as Ray actors (one CPU each): a local Ray sized to the workers, or the cluster
    at `address` ("auto", "ray://host:10001"), so a cluster evaluates with the same loop."""

    def __init__(self, env_config: dict, task_config: dict, workers: int = 2,
                 envs_per_worker: int = 4, address: str | None = None,
                 expert_params: dict | None = None):
        super().__init__(workers, envs_per_worker)
        try:
            import ray
        except ImportError:
            raise RobopolicyError("executor=ray needs Ray: pip install 'ray>=2.9'") from None
        self.ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, num_cpus=workers if address is None else None,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        self._cls = ray.remote(num_cpus=1, max_restarts=0)(_RayEnvWorker)
        self._args = (env_config, task_config, envs_per_worker, expert_params)
        self._actors = [self._cls.remote(*self._args) for _ in range(workers)]

    @property
    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self._actors])

    def _exchange(self, cmd, requests):
        ray = self.ray
        refs = {w: self._actors[w].call.remote(cmd, reqs) for w, reqs in requests.items()}
        answers, dead = {}, []
        for w, ref in refs.items():
            try:
                answers[w] = ray.get(ref)
            except ray.exceptions.RayActorError:
                dead.append(w)
            except ray.exceptions.RayTaskError as e:
                raise WorkerError(f"rollout worker {w} failed:\n{e}") from None
        return answers, dead

    def _restart(self, w: int) -> None:
        self.ray.kill(self._actors[w])
        self._actors[w] = self._cls.remote(*self._args)

    def close(self) -> None:
        for a in self._actors:
            self.ray.kill(a)
        self._actors = []
        if self._started:
            self.ray.shutdown()


def make_pool(kind: str, env_config: dict, task_config: dict, workers: int, envs_per_worker: int,
              address: str | None = None, expert_params: dict | None = None) -> _Pool:
    """The rollout pool of an `executor` config's kind (process | ray); `expert_params` are the
    ExpertParams overrides of the workers' scripted experts."""
    if kind == "process":
        return ProcessRolloutPool(env_config, task_config, workers, envs_per_worker, expert_params)
    if kind == "ray":
        return RayRolloutPool(env_config, task_config, workers, envs_per_worker, address,
                              expert_params)
    raise RobopolicyError(f"unknown executor {kind!r} (known: process, ray)")
