"""The parallel search and simulation campaigns on a Ray cluster (`assay[ray]`).

`check --ray ADDRESS` runs the shards of `parallel.py` as Ray actors: each actor loads the
spec from its path and builds its own kernel, and a level's batches go from the actor that
made them to the one that owns them through Ray's object store (the driver passes refs, never
the data).  `simulate --ray` runs a campaign's chunks of seeds as Ray tasks, the same chunks
`--jobs` gives worker processes, so the results are the same.

`ADDRESS` is what `ray.init` takes: `auto` (a cluster started with `ray start` on this
machine), `ray://host:10001` (a remote cluster's client server), or `local` (a Ray instance
started here, with the machine's CPUs).  Every node needs assay installed and the spec file
(and the modules beside it) at the same path as on the driver.
"""
from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any

from assay.checker.parallel import Options, Shard, Workers
from assay.errors import AssayError, UsageError
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel


def ray_module() -> Any:
    """`ray`, or a usage error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed",
                         notes=["install it with: pip install 'assay[ray]' (or pip install ray)"]
                         ) from None
    return ray


def connect(address: str, cpus: int | None = None) -> Any:
    """Connect to (or, for "local", start) a Ray cluster, unless this process already is."""
    ray = ray_module()
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UsageError(f"cannot connect to the Ray cluster at {address!r}: {e}",
                             notes=["start one with 'ray start --head', then use --ray auto, "
                                    "or use --ray local"]) from None
    return ray


def cluster_cpus() -> int:
    ray = ray_module()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def build_system(spec: str, system_name: str, params: dict[str, Any]) -> Any:
    """The system of `spec` built with typed `params` (as `load.build` returned them)."""
    from assay.model.load import load_module, system_functions

    return system_functions(load_module(spec))[system_name](**params)


class _Actor:
    """One shard of the search, in a Ray actor."""

    def __init__(self, spec: str, system_name: str, params: dict[str, Any],
                 faults: Faults | None, fairness: str, deadlock: bool, index: int,
                 n: int, opts: Options) -> None:
        system = build_system(spec, system_name, params)
        kernel = Kernel(system, faults, fairness, deadlock)
        self.shard = Shard(kernel, index, n, opts)

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.shard, method)(*args)

    def expand(self, last: bool) -> tuple[Any, ...]:
        rep, blobs = self.shard.expand(last)
        return (rep, *blobs)

    def merge(self, last: bool, *blobs: bytes | None) -> dict[str, Any]:
        return self.shard.merge(blobs, last)


class RayWorkers(Workers):
    """`n` Ray actors, each a shard."""

    def __init__(self, kernel: Kernel, n: int, opts: Options, spec: str, system_name: str,
                 params: dict[str, Any]) -> None:
        ray = ray_module()
        self.ray = ray
        self.n = n
        # one CPU each, or a share when there are more actors than CPUs (else they would wait)
        actor = ray.remote(num_cpus=min(1.0, cluster_cpus() / n))(_Actor)
        self.actors = [actor.remote(os.path.abspath(spec), system_name, params, kernel.faults,
                                    kernel.fairness, kernel.check_deadlock, i, n, opts)
                       for i in range(n)]
        self._refs: list[Any] = []

    def _get(self, refs: list[Any]) -> list[Any]:
        ray = self.ray
        try:
            waiting = list(refs)
            while waiting and self.heartbeat is not None:      # progress while they work
                _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0.2)
                if waiting:
                    self.heartbeat()
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, AssayError):          # a spec error in an actor
                raise e.cause from None
            raise

    def call(self, method: str, *args: Any) -> list[Any]:
        return self._get([a.call.remote(method, *args) for a in self.actors])

    def one(self, worker: int, method: str, *args: Any) -> Any:
        return self._get([self.actors[worker].call.remote(method, *args)])[0]

    def expand(self, last: bool) -> list[dict[str, Any]]:
        self._refs = [a.expand.options(num_returns=self.n + 1).remote(last)
                      for a in self.actors]
        return self._get([r[0] for r in self._refs])

    def merge(self, last: bool) -> list[dict[str, Any]]:
        refs, self._refs = self._refs, []
        return self._get([a.merge.remote(last, *[refs[i][1 + j] for i in range(self.n)])
                          for j, a in enumerate(self.actors)])

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):       # already gone
                self.ray.kill(a)
        self.actors = []


def run_chunks(jobs: list[Any], on_result: Any, deadline: float | None = None,
               ahead: int = 64) -> None:
    """Run a campaign's jobs (`campaign._worker`'s arguments) as Ray tasks, handing each
    result to `on_result` in the order of `jobs`; `ahead` tasks submitted before the one
    awaited (not all: 10^6 runs are 31,250 tasks).  At `deadline` (a `time.perf_counter()`)
    the tasks left are cancelled and `campaign.TimeLimit` raised."""
    import collections
    import time

    from assay.simulator.campaign import TimeLimit, _worker

    ray = ray_module()
    task = ray.remote(num_cpus=1)(_worker)
    todo = iter(jobs)
    refs = collections.deque(task.remote(job) for job in itertools.islice(todo, ahead))
    try:
        while refs:
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            try:
                got = ray.get(refs[0], timeout=left)
            except ray.exceptions.GetTimeoutError:
                raise TimeLimit from None
            refs.popleft()
            refs.extend(task.remote(job) for job in itertools.islice(todo, 1))
            on_result(got)
    except BaseException:
        for ref in refs:
            with contextlib.suppress(Exception):       # done already
                ray.cancel(ref, force=True)
        raise
