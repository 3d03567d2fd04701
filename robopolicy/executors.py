"""Parallel sim workers for embarrassingly parallel jobs (demo collection): a function mapped
over items, results in item order, by spawned local processes (`process`) or Ray actors
(`ray`: a local Ray, or a cluster at `address`, e.g. after `ray start --head`).

Each worker runs `init(*init_args)` once (building its simulator inside the worker, never
before a fork), then `fn(item)` for the items it is given. A process worker whose parent is gone
(killed by a signal, which skips the pool's shutdown) exits within a second
(`sims.core.workers`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from robopolicy.errors import RobopolicyError
from sims.core.workers import watch_parent

EXECUTORS = ("process", "ray")


class WorkerDied(RobopolicyError):
    """A worker process or actor died (or its set-up failed)."""


class _Actor:
    """A Ray actor holding one worker's state."""

    def __init__(self, init: Callable, init_args: tuple):
        init(*init_args)

    def run(self, fn: Callable, item):
        return fn(item)


def ordered_map(fn: Callable, items: Iterable, *, init: Callable, init_args: tuple = (),
                workers: int = 2, kind: str = "process", address: str | None = None) -> Iterator:
    """Yield fn(item) for each item, in order, computed by `workers` parallel workers."""
    if kind not in EXECUTORS:
        raise RobopolicyError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
    if kind == "ray":
        yield from _ray_map(fn, items, init, init_args, workers, address)
        return
    # A process pool that fails loudly: a worker that dies (or whose set-up raises) breaks the
    # pool instead of being respawned forever.
    executor = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_process_worker,
                                   initargs=(os.getpid(), init, init_args))
    with executor:
        try:
            yield from executor.map(fn, items)
        except BrokenProcessPool as e:
            raise WorkerDied(f"a sim worker process died ({e})") from e


def _init_process_worker(parent_pid: int, init: Callable, init_args: tuple) -> None:
    """Watch the parent (`sims.core.workers`), then run the worker's own set-up."""
    watch_parent(parent_pid)
    init(*init_args)


def _ray_map(fn, items, init, init_args, workers, address):
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise RobopolicyError("executor=ray needs Ray: pip install 'ray>=2.9'") from None
    started = not ray.is_initialized()
    if started:
        # a local Ray sized to the workers, or a running cluster
        ray.init(address=address, num_cpus=workers if address is None else None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    actor_cls = ray.remote(num_cpus=1)(_Actor)
    actors = [actor_cls.remote(init, init_args) for _ in range(workers)]
    try:
        yield from ActorPool(actors).map(lambda a, item: a.run.remote(fn, item), items)
    except ray.exceptions.RayActorError as e:
        raise WorkerDied(f"a Ray sim worker died ({str(e).splitlines()[0]})") from e
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
