"""Campaigns: many seeded runs, spread over worker processes, with one summary.

Run i of a campaign has the seed `derive(seed, i)`, so the runs — and the summary — are the
same whatever the number of workers.  A worker builds its own kernel from the spec file (a
kernel is never sent between processes); it sends back names (event JSON, fingerprints), not
ids.  Ctrl-C stops a campaign with the runs finished so far; workers ignore it (the parent
decides) and are killed with the parent, even one stuck in a handler that never returns.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel
from assay.kernel.trace import Trace, initial_json, with_changes
from assay.model.load import build
from assay.simulator.lasso import LassoMemo
from assay.simulator.rates import FaultRates
from assay.simulator.run import run_once
from assay.simulator.schedulers import begin_run, chunk_size
from assay.simulator.shrink import shrink


def derive(seed: int, index: int) -> int:
    """The seed of run `index` of a campaign started with `seed` (stable everywhere)."""
    d = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") >> 1


@dataclass(frozen=True)
class Options:
    steps: int = 1000
    rates: FaultRates = field(default_factory=FaultRates)
    scheduler: str = "random"
    pct_depth: int = 3
    shrink: bool = True


@dataclass
class RunReport:
    """What a worker returns for one run (names only, so it crosses processes)."""

    index: int
    seed: int
    events: int
    ended: str
    time: int
    fingerprints: set[str]
    violation: dict[str, Any] | None = None
    initial: dict[str, dict[str, Any]] | None = None
    trace: list[dict[str, Any]] | None = None       # the events of the failing run
    shrunk: list[dict[str, Any]] | None = None      # a minimal run with the same failure
    # the first lasso the run walked that breaks a liveness property (`lasso.Suspect`): the
    # violation's JSON, with "formula", "cycle_start", "fairness" and "events" (as a trace
    # lists them, from `initial`)
    suspected: dict[str, Any] | None = None


def kernel_for(system: Any, rates: FaultRates) -> Kernel:
    """A kernel that offers every fault the rates may inject (unlimited budget)."""
    return Kernel(system, Faults.unlimited() if rates.any else None)


def run_indices(kernel: Kernel, seed: int, indices: list[int], opts: Options,
                known: set[Any] | None = None,
                lassos: LassoMemo | None = None) -> list[RunReport]:
    """Run the campaign's runs `indices`.  `known` (states already fingerprinted in this
    process) and `lassos` (what liveness watching has learnt of this kernel's states) are
    shared across calls; neither changes a run's report, only its cost."""
    out = []
    known = set() if known is None else known
    if lassos is None and kernel.system.liveness:
        lassos = LassoMemo(kernel)
    for i in indices:
        s = derive(seed, i)
        if opts.scheduler == "coverage":
            begin_run(kernel, i)
        r = run_once(kernel, s, opts.steps, opts.rates, opts.scheduler, opts.pct_depth,
                     lassos if lassos is not None else False)
        new = r.states - known
        known |= new
        report = RunReport(i, s, len(r.events), r.ended, r.time,
                           {kernel.fingerprint(st) for st in new})
        if r.suspect is not None:
            sus = r.suspect
            report.initial = initial_json(kernel, r.initial)
            report.suspected = {
                **sus.violation.to_json(), "formula": sus.prop.formula,
                "cycle_start": sus.cycle_start, "fairness": kernel.fairness,
                "events": with_changes(kernel, r.initial,
                                       [kernel.event(e).to_json() for e in sus.events])}
        if r.violation is not None:
            report.violation = r.violation.to_json()
            report.initial = initial_json(kernel, r.initial)
            names = [kernel.event(e).to_json() for e in r.events]
            shrunk = shrink(kernel, r.initial, names, r.violation) if opts.shrink else names
            # as trace files list them: with what each step changed, for replay to compare
            report.trace = with_changes(kernel, r.initial, names)
            report.shrunk = with_changes(kernel, r.initial, shrunk) if opts.shrink \
                else report.trace
        out.append(report)
    return out


# per worker process: its kernel, the states it fingerprinted, what liveness watching learnt
_WORKER: dict[Any, tuple[Kernel, set[Any], LassoMemo | None]] = {}


def _worker_init() -> None:
    """In each worker: Ctrl-C at a terminal reaches the whole process group, and the parent
    alone decides what it means; on Linux the worker is also killed when its parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            pr_set_pdeathsig = 1
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
            if os.getppid() == 1:            # the parent died before prctl: nobody to serve
                os._exit(1)


_KILLED: list[ProcessPoolExecutor] = []


def killed_a_pool() -> bool:
    """Whether this process killed a pool's workers (`_kill_workers`): its management thread
    may then be stuck or report the broken pool when the interpreter joins it at exit, so the
    command leaves with `os._exit` once its output is flushed."""
    return bool(_KILLED)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop `pool` now: kill its workers (a run stuck in a handler would never end) and wait
    for them to be gone.  The pool then fails every pending future (BrokenProcessPool); none
    may have been cancelled (Python 3.11's pool trips over a cancelled one then)."""
    _KILLED.append(pool)
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(5)
    # not wait=True: a Ctrl-C that landed inside the pool's own locking (future.result) can
    # leave its management thread blocked for good, and waiting for it hung the parent (seen
    # once in CI); the caller ends the process (`exit_now`), so nothing waits for it either
    pool.shutdown(wait=False)


def _worker(job: tuple[str, str | None, dict[str, str], int, list[int], Options]
            ) -> list[RunReport]:
    spec, system_name, params, seed, indices, opts = job
    key = (spec, system_name, tuple(sorted(params.items())), opts.rates)
    if key not in _WORKER:
        system, _, _ = build(spec, system_name, params)
        _WORKER.clear()
        kernel = kernel_for(system, opts.rates)
        _WORKER[key] = (kernel, set(), LassoMemo(kernel) if system.liveness else None)
    kernel, known, lassos = _WORKER[key]
    return run_indices(kernel, seed, indices, opts, known, lassos)


def _chunks(n: int, jobs: int, scheduler: str = "random") -> Iterator[list[int]]:
    size = chunk_size(scheduler, max(1, min(32, n // (jobs * 4) or 1)))
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


@dataclass
class Campaign:
    """The summary of a campaign: of all its runs, or (Ctrl-C) of the first `runs` of the
    `requested`, those that had finished."""

    runs: int
    events: int
    distinct_states: int
    seconds: float
    reports: list[RunReport]
    trace_files: dict[int, str] = field(default_factory=dict)
    lasso_files: dict[int, str] = field(default_factory=dict)
    requested: int | None = None             # None: every run requested was run
    interrupted: bool = False
    # what was simulated (`assay.simulate` fills them in): the spec file ("" for a System
    # built in Python), the system function, its parameters, the options of every run
    spec: str = ""
    system_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    options: Options | None = None

    @property
    def ok(self) -> bool:
        """No run found a violation or walked a lasso that breaks a liveness property (a
        sample of the behaviours, not a proof)."""
        return not self.failures and not self.suspected and not self.interrupted

    def traces(self) -> list[Trace]:
        """The failing runs as trace files would hold them (shrunk), in run order;
        `trace.write(path)` saves one for `assay replay`."""
        opts = self.options or Options()
        return [trace_of(r, self.spec, self.system_name, self.params, opts)
                for r in self.failures]

    def text(self) -> str:
        """The report `assay simulate` prints, as plain text."""
        from assay.report import simulation_text

        return simulation_text(self)

    def __repr__(self) -> str:
        from assay.report import simulation_repr

        return simulation_repr(self)

    def _repr_html_(self) -> str:
        from assay.report import simulation_html

        return simulation_html(self)

    @property
    def failures(self) -> list[RunReport]:
        return [r for r in self.reports if r.violation is not None]

    @property
    def suspected(self) -> list[RunReport]:
        """The runs that walked a lasso breaking a liveness property."""
        return [r for r in self.reports if r.suspected is not None]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130                       # 128 + SIGINT, as a shell reports Ctrl-C
        return 1 if self.failures or self.suspected else 0

    def liveness(self, properties: list[str]) -> dict[str, str]:
        """What the campaign says of each liveness property: suspected (some run walked a
        lasso that breaks it), or not covered."""
        hit: dict[str, int] = {}
        for r in self.suspected:
            name = (r.suspected or {}).get("name")
            if isinstance(name, str):
                hit.setdefault(name, r.index)
        return {p: f"suspected (run {hit[p]}): confirm with assay check" if p in hit else
                "not covered: no run walked a lasso that breaks it, and a simulation cannot "
                "show that it holds; assay check decides it" for p in properties}

    def to_json(self, with_timing: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "verdict": "violation" if self.failures else "suspected" if self.suspected
            else "ok",
            "stopped": "interrupted" if self.interrupted else "completed",
            "runs": self.runs,
            "runs_requested": self.runs if self.requested is None else self.requested,
            "events": self.events,
            "distinct_states": self.distinct_states,
            "ended": _count(r.ended for r in self.reports),
            "violations": [{"run": r.index, "seed": r.seed, **(r.violation or {}),
                            "events": r.events, "shrunk_events": len(r.shrunk or []),
                            "trace_file": self.trace_files.get(r.index)}
                           for r in self.failures],
            "suspected": [{"run": r.index, "seed": r.seed,
                           **{k: v for k, v in (r.suspected or {}).items() if k != "events"},
                           "events": len((r.suspected or {}).get("events") or []),
                           "trace_file": self.lasso_files.get(r.index)}
                          for r in self.suspected]}
        if with_timing:
            doc["seconds"] = round(self.seconds, 6)
            doc["events_per_second"] = round(self.events / self.seconds, 1) \
                if self.seconds else None
        return doc


def _count(xs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def campaign(spec: str, system_name: str | None, params: dict[str, str], *, seed: int,
             runs: int, opts: Options, jobs: int | None = None,
             on_progress: Callable[[int, int, int], None] | None = None,
             system: Any = None) -> Campaign:
    """Run `runs` seeded runs of the system of `spec`, on `jobs` worker processes.  Given
    `system` (a `System` built already, which workers could not rebuild) the runs happen in
    this process, whatever `jobs`: the same runs, as `jobs` never changes them.

    `on_progress(runs done, runs, events)` is called as runs finish.  Ctrl-C
    (KeyboardInterrupt) stops the campaign: the result has the runs finished before it, in
    order from the first, and says `interrupted`."""
    jobs = jobs or os.cpu_count() or 1
    started = time.perf_counter()
    reports: list[RunReport] = []
    events = 0
    interrupted = False
    if system is not None or jobs == 1 or runs == 1:
        if system is None:
            system, _, _ = build(spec, system_name, params)
        kernel = kernel_for(system, opts.rates)
        known: set[Any] = set()
        lassos = LassoMemo(kernel) if system.liveness else None
        try:
            for chunk in _chunks(runs, 1):
                for i in chunk:
                    part = run_indices(kernel, seed, [i], opts, known, lassos)
                    reports += part
                    events += part[0].events
                if on_progress:
                    on_progress(len(reports), runs, events)
        except KeyboardInterrupt:
            interrupted = True
    else:
        build(spec, system_name, params)          # spec errors surface here, not in a worker
        work = [(spec, system_name, params, seed, chunk, opts)
                for chunk in _chunks(runs, jobs, opts.scheduler)]
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
        try:
            # not pool.map: on Ctrl-C it cancels the pending futures, see _kill_workers
            for future in [pool.submit(_worker, job) for job in work]:
                part = future.result()
                reports += part
                events += sum(r.events for r in part)
                if on_progress:
                    on_progress(len(reports), runs, events)
        except KeyboardInterrupt:
            interrupted = True
            _kill_workers(pool)
        except BaseException:                # a spec error in one run: the others are moot
            _kill_workers(pool)
            raise
        else:
            pool.shutdown(wait=True)
    reports.sort(key=lambda r: r.index)
    seen: set[str] = set()
    for r in reports:
        seen |= r.fingerprints
    return Campaign(len(reports), sum(r.events for r in reports), len(seen),
                    time.perf_counter() - started, reports,
                    requested=runs if interrupted else None, interrupted=interrupted)


def lasso_trace_of(report: RunReport, spec: str, system: str, params: dict[str, Any],
                   opts: Options) -> Trace:
    """The lasso a run walked (`report.suspected`) as a trace file: `assay replay` runs it
    through the checker's kernel and confirms the cycle closes, is fair and breaks the
    property (the verdict's `cycle_start` and `fairness`, as `check` writes them)."""
    sus = report.suspected or {}
    events = sus.get("events") or []
    return Trace(spec, system, params, events, engine="simulate", seed=report.seed,
                 faults=opts.rates.to_json() if opts.rates.any else None,
                 initial=report.initial,
                 verdict={"kind": "liveness", "name": sus.get("name"),
                          "blame": sus.get("blame"), "message": sus.get("message"),
                          "step": len(events), "cycle_start": sus.get("cycle_start"),
                          "fairness": sus.get("fairness"), "suspected": True},
                 extra={"run": report.index, "scheduler": opts.scheduler,
                        "original_events": report.events})


def trace_of(report: RunReport, spec: str, system: str, params: dict[str, Any],
             opts: Options, shrunk: bool = True) -> Trace:
    events = report.shrunk if shrunk and report.shrunk is not None else report.trace or []
    v = report.violation or {}
    return Trace(spec, system, params, events, engine="simulate", seed=report.seed,
                 faults=opts.rates.to_json() if opts.rates.any else None,
                 initial=report.initial,
                 verdict={"kind": v.get("kind"), "name": v.get("name"), "blame": v.get("blame"),
                          "message": v.get("message"), "step": len(events)},
                 extra={"run": report.index, "scheduler": opts.scheduler,
                        "original_events": report.events})
