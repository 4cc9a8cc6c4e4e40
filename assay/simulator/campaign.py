"""Campaigns: many seeded runs, spread over worker processes, with one summary.

Run i of a campaign has the seed `derive(seed, i)`, so the runs — and the summary — are the
same whatever the number of workers.  A worker builds its own kernel from the spec file (a
kernel is never sent between processes); it sends back names (event JSON, fingerprints), not
ids.  Ctrl-C stops a campaign with the runs finished so far; workers ignore it (the parent
decides) and are killed with the parent, even one stuck in a handler that never returns.  A
shrink cut short (Ctrl-C, the time limit) keeps the shortest failing run it had found; one in
a worker is first asked to stop (SIGUSR1) and hands that run back.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from assay.errors import AssayError, SpecError, TraceError, exit_error
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel, State
from assay.kernel.trace import Trace, explain, initial_json, recorded_event, with_changes
from assay.kernel.violation import Violation
from assay.kernel.watchdog import SpecWatch, long_calls
from assay.model.load import build
from assay.simulator.lasso import LassoMemo
from assay.simulator.packed import packed_moves, plain, walks
from assay.simulator.rates import FaultRates
from assay.simulator.run import moves_of, run_once
from assay.simulator.schedulers import begin_run, chunk_size, rerun_recorded
from assay.simulator.shrink import (
    OutOfTime,
    Search,
    budget_for,
    fault_kinds,
    proved_earlier,
    shrink_run,
)


def derive(seed: int, index: int) -> int:
    """The seed of run `index` of a campaign started with `seed` (stable everywhere)."""
    d = hashlib.blake2b(b"%d:%d" % (seed, index), digest_size=8).digest()   # f"{seed}:{index}"
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
    fingerprints: set[str]           # of states new to its process (when they were asked for)
    new_states: int = 0              # states new to its process
    violation: dict[str, Any] | None = None
    initial: dict[str, dict[str, Any]] | None = None
    trace: list[dict[str, Any]] | None = None       # the events of the failing run
    shrunk: list[dict[str, Any]] | None = None      # a short run with the same failure
    shrunk_initial: dict[str, dict[str, Any]] | None = None   # where it starts, if elsewhere
    shrinking: Shrinking | None = None
    # the first lasso the run walked that breaks a liveness property (`lasso.Suspect`): the
    # violation's JSON, with "formula", "cycle_start", "fairness" and "events" (as a trace
    # lists them, from `initial`)
    suspected: dict[str, Any] | None = None


def recorded(kernel: Kernel, start: State, events: list[int],
             enabled: bool = False) -> list[dict[str, Any]]:
    """Events (ids of `kernel`, enabled in turn from `start`) as a trace file lists them:
    with what each step changed, for replay to compare.  `enabled`: a replay that checked
    each event's enabledness took them (`trace.explain`)."""
    memo = _RECORDED.get(kernel)
    if memo is None:
        memo = _RECORDED[kernel] = {}
    out = []
    state = start
    for i, ev in enumerate(events, 1):
        got = memo.get((state, ev))              # runs take the same steps again and again
        if got is None:
            step, nxt = explain(kernel, state, ev, i, enabled)
            got = (recorded_event(step), nxt)
            if len(memo) < 100_000:
                memo[(state, ev)] = got
        out.append(dict(got[0]))
        state = got[1]
    return out


_RECORDED: WeakKeyDictionary[Kernel, dict[tuple[State, int], tuple[dict[str, Any], State]]] = \
    WeakKeyDictionary()


@contextlib.contextmanager
def few_full_collections(every: int = 1000, young: int = 10_000) -> Iterator[None]:
    """Python's cyclic garbage collector, while runs go: young objects once `young` more were
    made than freed (not 700), the oldest generation once per `every` collections of the
    middle one (not 10).  The per-state memo (`run.Moves`) grows old and large, and scanning
    it again and again cost a campaign at 7 RMs of TwoPhase a sixth of its time (4 full
    collections, 0.3 s of 2.8 s, measured with `gc.callbacks`); the young ones, passes over
    every 700 new rows, took 0.11 s of a packed campaign's walk at 7 RMs (0.04 s at 10,000;
    `gc.callbacks`, load 10).  The thresholds are restored after."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], young), before[1], max(before[2], every))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def kernel_for(system: Any, rates: FaultRates) -> Kernel:
    """A kernel that offers every fault the rates may inject (unlimited budget)."""
    return Kernel(system, Faults.unlimited() if rates.any else None)


def run_indices(kernel: Kernel, seed: int, indices: list[int], opts: Options,
                known: set[Any] | None = None,
                lassos: LassoMemo | None = None,
                fingerprints: bool = True) -> list[RunReport]:
    """Run the campaign's runs `indices`.  `known` (states already seen in this process)
    and `lassos` (what liveness watching has learnt of this kernel's states) are shared
    across calls.  A report counts the states new to `known` (`new_states`) and, with
    `fingerprints`, lists their fingerprints (for a union across processes)."""
    return list(run_reports(kernel, seed, indices, opts, known, lassos, fingerprints))


def run_reports(kernel: Kernel, seed: int, indices: Iterable[int], opts: Options,
                known: set[Any] | None = None,
                lassos: LassoMemo | None = None,
                fingerprints: bool = True) -> Iterator[RunReport]:
    """`run_indices`, each report as its run ends (what the runs share is set up once)."""
    known = set() if known is None else known
    if lassos is None and kernel.system.liveness:
        lassos = LassoMemo(kernel)
    if plain(kernel, opts.scheduler, True):
        yield from _run_packed(kernel, seed, indices, opts, known, fingerprints)
        return
    memo = moves_of(kernel)
    for i in indices:
        s = derive(seed, i)
        if opts.scheduler == "coverage":
            begin_run(kernel, i)
        try:
            r = run_once(kernel, s, opts.steps, opts.rates, opts.scheduler, opts.pct_depth,
                         lassos if lassos is not None else False)
        except AssayError as e:
            raise in_run(e, kernel, i, seed) from None
        new: list[State] = []
        if memo.kept_all():                  # a stored row stands for its state
            fresh = set(r.path)
            fresh.difference_update(known)
            if fresh:
                known |= fresh
                new = [row.state for row in fresh]
        else:
            for row in r.path:
                k = row if row.stored else row.state
                if k not in known:
                    known.add(k)
                    new.append(row.state)
        report = RunReport(i, s, len(r.events), r.ended, r.time,
                           {kernel.fingerprint(st) for st in new} if fingerprints else set(),
                           len(new))
        if r.suspect is not None:
            sus = r.suspect
            report.initial = initial_json(kernel, r.initial)
            report.suspected = {
                **sus.violation.to_json(), "formula": sus.prop.formula,
                "cycle_start": sus.cycle_start, "fairness": kernel.fairness,
                "events": with_changes(kernel, r.initial,
                                       [kernel.event(e).to_json() for e in sus.events])}
        if r.violation is not None:
            if opts.shrink:
                _remember(kernel, _run_key(s, opts), r.initial, r.events, r.violation)
            report.violation = r.violation.to_json()
            report.initial = initial_json(kernel, r.initial)
            # as trace files list them: with what each step changed, for replay to compare
            report.trace = recorded(kernel, r.initial, r.events)
            if not opts.shrink:
                report.shrunk = report.trace
        yield report


def _run_packed(kernel: Kernel, seed: int, indices: Iterable[int], opts: Options,
                known: set[Any], fingerprints: bool) -> Iterator[RunReport]:
    """`run_reports` where the runs are plain (`packed.plain`): the same runs and reports,
    walked on packed states (`known` then holds packed ints)."""
    memo = packed_moves(kernel)
    order, again = itertools.tee(indices)
    at = [-1]                                   # the run being walked

    def seeds() -> Iterator[int]:
        for i in again:
            at[0] = i
            yield derive(seed, i)
    try:
        yield from _packed_reports(kernel, opts, order, walks(kernel, seeds(), opts.steps,
                                                              known), memo, fingerprints)
    except AssayError as e:
        raise in_run(e, kernel, at[0], seed) from None


def _packed_reports(kernel: Kernel, opts: Options, order: Iterable[int], ws: Any, memo: Any,
                    fingerprints: bool) -> Iterator[RunReport]:
    for i, w in zip(order, ws):
        s = w.seed
        new = w.new
        n = len(w.events)
        report = RunReport(i, s, n, w.ended, n,
                           {kernel.fingerprint(memo.state(x)) for x in new} if fingerprints
                           else set(), len(new))
        if w.violation is not None:
            start = memo.state(w.start)
            if opts.shrink:
                _remember(kernel, _run_key(s, opts), start, w.events, w.violation)
            report.violation = w.violation.to_json()
            report.initial = initial_json(kernel, start)
            report.trace = recorded(kernel, start, w.events)
            if not opts.shrink:
                report.shrunk = report.trace
        yield report


def in_run(err: AssayError, kernel: Kernel, index: int, seed: int) -> AssayError:
    """`err`, met by run `index` of a campaign of `seed` (`run.ran_into` kept the run's
    seed and the events it had taken), with a note that names the run and its step and
    says how to run it again."""
    events = getattr(err, "run_events", None)
    if events is None or getattr(err, "run_index", None) is not None:
        return err
    err.run_index = index                        # type: ignore[attr-defined]
    shown = []
    for ev in events[-5:]:
        try:
            shown.append(str(kernel.event(ev)))
        except Exception:                        # (an id of another kernel: say nothing)
            shown = []
            break
    n = len(events)
    path = ("" if not n else ": " + ("... " if n > len(shown) else "")
            + ", ".join(shown) if shown else "")
    err.notes = (*err.notes,
                 f"met by run {index} (seed {getattr(err, 'run_seed', '?')}) "
                 + (f"in the state its first {n} event{'' if n == 1 else 's'} lead to{path}"
                    if n else "in its initial state"),
                 f"`assay simulate` with --seed {seed} --runs {index + 1} --jobs 1 (and the "
                 "same options) runs it again, in one process")
    return err


# the failing runs of each kernel in this process, by seed (start, event ids, violation):
# shrinking a run this process took needs not take it again (a report crosses processes by
# name only; another process's kernel runs it again from its seed)
_FAILED: WeakKeyDictionary[Kernel, dict[Any, tuple[State, list[int], Violation]]] = \
    WeakKeyDictionary()
FAILED_KEPT = 1000                   # failing runs remembered per kernel


def _run_key(seed: int, opts: Options) -> Any:
    """What makes a run: its seed and the options it ran with."""
    return seed, opts.steps, opts.scheduler, opts.pct_depth, repr(opts.rates)


def _remember(kernel: Kernel, key: Any, start: State, events: list[int],
              violation: Violation) -> None:
    runs = _FAILED.get(kernel)
    if runs is None:
        runs = _FAILED[kernel] = {}
    if len(runs) < FAILED_KEPT:
        runs[key] = (start, events, violation)


@dataclass
class Shrinking:
    """What shrinking a failing run gave (names only, so it crosses processes)."""

    index: int
    initial: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    seconds: float
    removed: dict[str, int]
    radius: int                 # the final search's neighbourhood (0: it did not complete)
    everything: bool            # ... and it left nothing out: a shortest failing run
    cost: int = 0               # states shrinking came to off the run (`shrink.Walker.cost`)
    interrupted: bool = False   # stopped halfway (Ctrl-C, the time limit): the shortest so far


def shrink_report(kernel: Kernel, report: RunReport, opts: Options, searched: int = 0,
                  earlier: Shrinking | None = None, deadline: float | None = None
                  ) -> Shrinking:
    """Shrink the failing run of `report`: run it again from its seed (the same run, in this
    kernel's ids), then `shrink_run`, with the budget the `searched` events that found it
    allow (`budget_for`); `earlier` is how the first failing run with the same violation
    shrank (`shrink_run`'s `earlier`)."""
    started = time.perf_counter()
    v = report.violation or {}
    proved = proved_earlier(kernel, (str(v.get("kind")), v.get("name"), str(v.get("blame"))),
                            _earlier(kernel, earlier), fault_kinds(opts.rates))
    if proved is not None:                    # a shortest of all: no need to run it again
        assert earlier is not None
        return Shrinking(report.index, earlier.initial, earlier.events,
                         time.perf_counter() - started, {"earlier": report.events -
                                                         len(earlier.events)},
                         earlier.radius, True, proved.cost)
    took = _FAILED.get(kernel, {}).pop(_run_key(report.seed, opts), None)
    if took is None:                          # not a run of this process: run it again
        if opts.scheduler == "coverage":
            try:
                r = rerun_recorded(kernel, report)
            except TraceError as e:
                raise _changed(report, e.message) from None
        else:
            r = run_once(kernel, report.seed, opts.steps, opts.rates, opts.scheduler,
                         opts.pct_depth, False)
        got = r.violation
        if got is None or len(r.events) != report.events or \
                (got.kind, got.name, got.blame) != (v.get("kind"), v.get("name"), v.get("blame")):
            raise _changed(report, "it ended without a violation" if got is None else
                           f"it broke {_what(got.to_json())} at step {len(r.events)}")
        took = (r.initial, r.events, got)
    try:
        small = shrink_run(kernel, took[0], took[1], took[2], budget=budget_for(searched),
                           faults=fault_kinds(opts.rates), earlier=_earlier(kernel, earlier),
                           deadline=deadline)
    except SpecError as e:
        # in a state shrinking came to, off the run (`assay check` reaches it too)
        e.notes = (*e.notes, f"met while shrinking run {report.index} (seed {report.seed}), "
                   "in a state the run did not visit; --no-shrink writes the run as it "
                   "happened")
        raise
    except (KeyboardInterrupt, OutOfTime) as e:
        # stopped halfway: the shortest failing run shrinking had found, for the caller to
        # keep (as `e.shrinking`) rather than the run as it happened
        part = getattr(e, "shrunk", None)
        if part is not None:
            e.shrinking = Shrinking(  # type: ignore[union-attr]
                report.index, initial_json(kernel, part.start.state),
                recorded(kernel, part.start.state, part.events, True),
                time.perf_counter() - started, part.removed, 0, False, part.cost, True)
        raise
    start = small.start.state
    events = recorded(kernel, start, small.events, True)     # (shrinking replayed them)
    return Shrinking(report.index, initial_json(kernel, start), events,
                     time.perf_counter() - started, small.removed, small.search.radius,
                     small.search.everything, small.cost)


def _what(v: dict[str, Any]) -> str:
    """A violation (as a report holds it) in a few words: its kind and property or blame."""
    return f"{v.get('kind')} {v.get('name') or v.get('blame')}"


def _changed(report: RunReport, then: str) -> SpecError:
    """The error for a failing run that, run again from its seed in another process (to
    shrink it), did not fail the same way: the spec's outcome depends on the process."""
    v = report.violation or {}
    return SpecError(
        f"run {report.index} (seed {report.seed}) broke {_what(v)} at step {report.events}; "
        f"run again from its seed in another process, to shrink it, {then}",
        notes=["a handler, guard or property depends on something outside the state and the "
               "event that differs from process to process (os.getpid(), id(), hash() of a "
               "str, the clock, random numbers, a global it changes): its runs do not replay, "
               "and no trace of them can be trusted to reproduce",
               "make it a function of the state and the event; --jobs 1 runs and shrinks in "
               "one process, which hides it but does not make the runs replay"])


def _earlier(kernel: Kernel, sh: Shrinking | None) -> tuple[State, list[int], Search] | None:
    """A shrunk run (names) in `kernel`'s ids, for `shrink_run`; None if it does not replay.
    Many failing runs get the same one: it is looked up once per process."""
    if sh is None:
        return None
    memo = _EARLIER.get(kernel)
    if memo is None:
        memo = _EARLIER[kernel] = {}
    key = repr((sh.initial, sh.events, sh.radius, sh.everything))
    if key not in memo:
        from assay.kernel.trace import RECORDED, find_initial, replay_checked

        try:
            start = find_initial(kernel, sh.initial)
            names = [{k: v for k, v in e.items() if k not in RECORDED} for e in sh.events]
            done = replay_checked(kernel, names, start)
            memo[key] = (start, [st.event for st in done.steps],
                         Search(radius=sh.radius, complete=True, everything=sh.everything))
        except AssayError:
            memo[key] = None
    got = memo[key]
    return None if got is None else (got[0], list(got[1]), got[2])


_EARLIER: WeakKeyDictionary[Kernel, dict[str, tuple[State, list[int], Search] | None]] = \
    WeakKeyDictionary()


def _signature(r: RunReport) -> tuple[Any, ...]:
    v = r.violation or {}
    return v.get("kind"), v.get("name"), v.get("blame")


# per worker process: its kernel, the states it fingerprinted, what liveness watching learnt
_WORKER: dict[Any, tuple[Kernel, set[Any], LassoMemo | None]] = {}


def _worker_init(calls: str | None = None, hint: str = "") -> None:
    """In each worker: Ctrl-C at a terminal reaches the whole process group, and the parent
    alone decides what it means; on Linux the worker is also killed when its parent dies.
    Its watch says so when a run's spec code never returns (`hint`: how to bound it), and
    keeps that call in the directory `calls`, for the parent to name (`_stuck`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGUSR1"):            # the campaign stops a shrink with it
        signal.signal(signal.SIGUSR1, _stop_shrinking)
    SpecWatch(None, "the campaign", hint, keep_in=calls).start()
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
    with _spec_interrupts():
        kernel, known, lassos = _worker_kernel(spec, system_name, params, opts)
        with few_full_collections():
            return run_indices(kernel, seed, indices, opts, known, lassos)


@contextlib.contextmanager
def _spec_interrupts() -> Iterator[None]:
    """In a worker that ignores SIGINT (`_worker_init`), a KeyboardInterrupt can only come
    from spec code that raised it: a spec error, not Ctrl-C (handed back to the parent as it
    was, it read as the user's Ctrl-C: "interrupted", exit 130)."""
    try:
        yield
    except KeyboardInterrupt as e:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            raise
        raise exit_error(e, "code in the spec") from None


def _worker_kernel(spec: str, system_name: str | None, params: dict[str, str], opts: Options
                   ) -> tuple[Kernel, set[Any], LassoMemo | None]:
    key = (spec, system_name, tuple(sorted(params.items())), opts.rates)
    if key not in _WORKER:
        system, _, _ = build(spec, system_name, params)
        _WORKER.clear()
        kernel = kernel_for(system, opts.rates)
        _WORKER[key] = (kernel, set(), LassoMemo(kernel) if system.liveness else None)
    return _WORKER[key]


class ShrinkStopped(KeyboardInterrupt):
    """In a worker: the campaign asked it to stop shrinking (`_stop_shrinks`)."""


_STOPPABLE = [False]        # a worker is inside `shrink_report`: SIGUSR1 stops it


def _stop_shrinking(signum: int, frame: Any) -> None:
    if _STOPPABLE[0]:
        _STOPPABLE[0] = False
        raise ShrinkStopped


def _shrink_worker(job: tuple[str, str | None, dict[str, str], Options, RunReport, int,
                               Shrinking | None]) -> Shrinking | None:
    """Shrink a failing run in a worker.  Asked to stop (SIGUSR1: the campaign was
    interrupted or ran out of time), it hands back the shortest failing run found by then
    (`Shrinking.interrupted`), or None when it had none shorter than the run."""
    spec, system_name, params, opts, report, searched, earlier = job
    with _spec_interrupts():
        kernel, _, _ = _worker_kernel(spec, system_name, params, opts)
        result = None
        try:
            _STOPPABLE[0] = True
            try:
                result = shrink_report(kernel, report, opts, searched, earlier)
            finally:
                _STOPPABLE[0] = False
        except ShrinkStopped as e:           # (after `result` was set: it stands)
            result = result or getattr(e, "shrinking", None)
        return result


def _stop_shrinks(pool: ProcessPoolExecutor, pending: list[tuple[RunReport, Any]],
                  wait: float = 2.0) -> list[tuple[RunReport, Shrinking]]:
    """Ask `pool`'s workers to stop shrinking (SIGUSR1, `_stop_shrinking`) and take what
    the `pending` shrinks hand back within `wait` seconds: the shortest failing run each had
    found (or its whole result, if it was done).  Ctrl-C again stops the wait."""
    if not pending or not hasattr(signal, "SIGUSR1"):
        return []
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            os.kill(p.pid, signal.SIGUSR1)
    out = []
    end = time.monotonic() + wait
    try:
        for r, job in pending:
            try:
                sh = job.result(timeout=max(0.0, end - time.monotonic()))
            except Exception:                # not back in time, or the worker failed
                continue
            if sh is not None:
                out.append((r, sh))
    except KeyboardInterrupt:
        pass
    return out


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
    # stopped by the time limit (`max_time`): the runs before it, in order from the first;
    # `stuck` says which call of spec code that never returned was stopped there, if one was
    max_time: float | None = None
    timed_out: bool = False
    stuck: str | None = None
    # what was simulated (`assay.simulate` fills them in): the spec file ("" for a System
    # built in Python), the system function, its parameters, the options of every run
    spec: str = ""
    system_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    options: Options | None = None
    # what a person should look at even when no run failed (`assay.api.spec_warnings`)
    warnings: tuple[str, ...] = ()
    # the system's liveness properties, by name: what the report says of each (`liveness`)
    liveness_properties: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No run found a violation or walked a lasso that breaks a liveness property (a
        sample of the behaviours, not a proof)."""
        return not self.failures and not self.suspected and not self.interrupted \
            and not self.timed_out

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
    shrink_seconds: float = 0.0              # of `seconds`: shrinking the failing runs

    @property
    def run_seconds(self) -> float:
        """The time of the runs (the campaign's, less shrinking)."""
        return max(0.0, self.seconds - self.shrink_seconds)

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
        if self.failures or self.suspected:
            return 1
        return 3 if self.timed_out else 0    # 3: incomplete, as `check --max-time`

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
            else "incomplete" if self.timed_out or self.interrupted else "ok",
            "stopped": "interrupted" if self.interrupted else "max-time" if self.timed_out
            else "completed",
            "runs": self.runs,
            "runs_requested": self.runs if self.requested is None else self.requested,
            "events": self.events,
            "distinct_states": self.distinct_states,
            "ended": _count(r.ended for r in self.reports),
            "violations": [{"run": r.index, "seed": r.seed, **(r.violation or {}),
                            "events": r.events,
                            "shrunk_events": None if r.shrunk is None else len(r.shrunk),
                            # the final search left nothing out: no shorter run (of the
                            # simulator's kernel, with the faults injected) fails so
                            "shrunk_shortest": bool(r.shrinking and r.shrinking.everything),
                            # shrinking was stopped (Ctrl-C, the time limit): the shortest
                            # failing run found by then
                            "shrink_interrupted": bool(r.shrinking and
                                                       r.shrinking.interrupted),
                            "trace_file": self.trace_files.get(r.index)}
                           for r in self.failures],
            "suspected": [{"run": r.index, "seed": r.seed,
                           **{k: v for k, v in (r.suspected or {}).items() if k != "events"},
                           "events": len((r.suspected or {}).get("events") or []),
                           "trace_file": self.lasso_files.get(r.index)}
                          for r in self.suspected],
            "warnings": list(self.warnings)}
        if self.timed_out:
            doc["max_time"] = self.max_time
            if self.stuck:
                doc["stuck"] = self.stuck
        if with_timing:
            doc["seconds"] = round(self.seconds, 6)
            doc["shrink_seconds"] = round(self.shrink_seconds, 6)
            doc["events_per_second"] = round(self.events / self.run_seconds, 1) \
                if self.run_seconds else None
        return doc


def _count(xs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def campaign(spec: str, system_name: str | None, params: dict[str, str], *, seed: int,
             runs: int, opts: Options, jobs: int | None = None,
             on_progress: Callable[[int, int, int], None] | None = None,
             system: Any = None, ray: str | None = None,
             on_failure: Callable[[RunReport], None] | None = None,
             on_shrunk: Callable[[RunReport], None] | None = None,
             max_time: float | None = None) -> Campaign:
    """Run `runs` seeded runs of the system of `spec`, on `jobs` worker processes (with
    `ray`, an address for `ray.init` or "local": as Ray tasks, the same chunks of runs as
    `jobs` workers would take, or one worker per CPU of the cluster), then shrink the failing
    ones.  Given `system` (a `System` built already, which workers could not rebuild) the runs
    happen in this process, whatever `jobs`: the same runs, as `jobs` never changes them.

    `on_progress(runs done, runs, events)` is called as runs finish, `on_failure(report)` as
    soon as a failing run is known (before it is shrunk: its `trace` is the run as it
    happened), `on_shrunk(report)` when its `shrunk` trace is there.  Ctrl-C
    (KeyboardInterrupt) stops the campaign: the result has the runs finished before it, in
    order from the first, and says `interrupted`; a failing run whose shrinking was cut short
    has the shortest failing run found by then (`shrinking.interrupted`), the others not
    shrunk yet stay as they happened (`shrunk` None).

    `max_time` (seconds) stops it the same way, past the limit, and it says `timed_out`: the
    runs finished by then (in one process: the limit is looked at as each run ends; with
    workers: the chunks of runs they handed back, in order from the first), their failures
    shrunk while time is left.  Spec code that does not return is stopped there too
    (`SpecWatch`), in this process or a worker."""
    watch = SpecWatch(max_time, "the campaign", "A time limit (--max-time) stops it")
    watch.start()
    made: list[str] = []                       # directories to remove
    try:
        result = _campaign(spec, system_name, params, seed, runs, opts, jobs, on_progress,
                           system, ray, on_failure, on_shrunk, max_time, made)
    finally:
        watch.stop()
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
    result.max_time = max_time
    if result.interrupted and watch.fired is not None:     # not Ctrl-C: the watch stopped it
        result.interrupted, result.timed_out = False, True
    if result.timed_out:
        result.stuck = watch.fired or result.stuck
    return result


def _campaign(spec: str, system_name: str | None, params: dict[str, str], seed: int,
              runs: int, opts: Options, jobs: int | None,
              on_progress: Callable[[int, int, int], None] | None, system: Any,
              ray: str | None, on_failure: Callable[[RunReport], None] | None,
              on_shrunk: Callable[[RunReport], None] | None,
              max_time: float | None, made: list[str]) -> Campaign:
    workers = jobs or os.cpu_count() or 1
    started = time.perf_counter()
    deadline = None if max_time is None else started + max_time
    reports: list[RunReport] = []
    interrupted = False
    timed_out = False

    def left() -> float | None:
        """Seconds until the time limit (None: no limit)."""
        return None if deadline is None else max(0.0, deadline - time.perf_counter())

    def over() -> bool:
        return deadline is not None and time.perf_counter() >= deadline
    shrink_seconds = 0.0
    kernel: Kernel | None = None
    pool: ProcessPoolExecutor | None = None
    calls: str | None = None           # where the workers keep their long calls (`_stuck`)
    stuck: str | None = None

    def got(part: list[RunReport]) -> None:
        reports.extend(part)
        if on_failure:
            for r in part:
                if r.violation is not None:
                    on_failure(r)
        if on_progress:
            on_progress(len(reports), runs, sum(r.events for r in reports))

    def shrunk(r: RunReport, sh: Shrinking) -> None:
        r.shrinking = sh
        r.shrunk = sh.events
        r.shrunk_initial = sh.initial if sh.initial != r.initial else None
        if on_shrunk:
            on_shrunk(r)

    local = ray is None and (system is not None or workers == 1 or runs == 1)
    if ray is not None:
        stop = _on_ray(ray, spec, system_name, params, seed, runs, opts, jobs, got, deadline)
        interrupted, timed_out = stop == "interrupted", stop == "max-time"
    elif local:
        if system is None:
            system, _, _ = build(spec, system_name, params)
        kernel = kernel_for(system, opts.rates)
        known: set[Any] = set()
        lassos = LassoMemo(kernel) if system.liveness else None
        try:
            with few_full_collections():
                for report in run_reports(kernel, seed, range(runs), opts, known, lassos,
                                          fingerprints=False):
                    got([report])
                    if len(reports) < runs and over():
                        timed_out = True
                        break
        except KeyboardInterrupt:
            interrupted = True
    else:
        build(spec, system_name, params)          # spec errors surface here, not in a worker
        work = ((spec, system_name, params, seed, chunk, opts)
                for chunk in _chunks(runs, workers, opts.scheduler))
        # no more processes than runs: the pool forks all of them at once (`-j 100000
        # --runs 3` forked 100,000); the chunks, and so the results, are those of `workers`
        calls = tempfile.mkdtemp(prefix="assay-calls-")
        made.append(calls)
        pool = ProcessPoolExecutor(
            max_workers=min(workers, runs), initializer=_worker_init,
            initargs=(calls, "A time limit (--max-time) stops it" if max_time is None else
                      f"It is stopped when the time limit ({max_time:g} s) passes"))
        try:
            # not pool.map: on Ctrl-C it cancels the pending futures, see _kill_workers.  A
            # few chunks per worker submitted ahead, not all: submitting the 300,000 chunks
            # of 10^7 runs at once took the parent a minute before the first result
            ahead = collections.deque(pool.submit(_worker, job)
                                      for job in itertools.islice(work, 4 * workers))
            while ahead:
                if over():        # (not only while waiting: the workers may stay ahead of
                    raise TimeLimit   # this process, which writes each failure's trace)
                part = _within(ahead.popleft(), left())
                ahead.extend(pool.submit(_worker, job) for job in itertools.islice(work, 1))
                got(part)
        except TimeLimit:                     # the time limit, while a worker runs
            timed_out = True
            stuck = _stuck(calls, max_time)
            _kill_workers(pool)
            pool = None
        except KeyboardInterrupt:
            interrupted = True
            _kill_workers(pool)
            pool = None
        except BaseException:                # a spec error in one run: the others are moot
            _kill_workers(pool)
            raise
    reports.sort(key=lambda r: r.index)
    todo = [r for r in reports if r.violation is not None and r.shrunk is None] \
        if opts.shrink and not interrupted and not timed_out else []
    # the events the runs took to find each failure (since the one before it, in run order):
    # what its shrinking may spend, the same whatever the number of workers
    searched: dict[int, int] = {}
    since = 0
    for r in reports:
        since += r.events
        if r.violation is not None:
            searched[r.index] = since
            since = 0
    shrink_started = time.perf_counter()
    # the first failing run of each violation (in run order) first; each other one then gets
    # what the first of its violation shrank to (`shrink_run`'s `earlier`): the same whatever
    # the number of workers
    firsts: dict[tuple[Any, ...], RunReport] = {}
    for r in todo:
        firsts.setdefault(_signature(r), r)
    stages = [list(firsts.values()), [r for r in todo if firsts[_signature(r)] is not r]]
    # the first of a violation has the budget of the runs that found every failure of it
    budget = dict(searched)
    for r in todo:
        first = firsts[_signature(r)]
        if first is not r:
            budget[first.index] += searched[r.index]
    pending: list[tuple[RunReport, Any]] = []      # shrinks in workers not taken yet
    current: RunReport | None = None                # the run this process is shrinking
    try:
        for stage in stages:
            earlier = [firsts[_signature(r)].shrinking if r is not firsts[_signature(r)]
                       else None for r in stage]
            if stage and pool is not None:
                pending = [(r, pool.submit(_shrink_worker, (spec, system_name, params, opts,
                                                            r, budget[r.index], e)))
                           for r, e in zip(stage, earlier)]
                while pending:
                    sh = _within(pending[0][1], left())
                    r, _ = pending.pop(0)
                    if sh is not None:
                        shrunk(r, sh)
            elif stage:
                if kernel is None:
                    if system is None:
                        system, _, _ = build(spec, system_name, params)
                    kernel = kernel_for(system, opts.rates)
                for r, e in zip(stage, earlier):
                    if over():
                        raise TimeLimit
                    current = r
                    shrunk(r, shrink_report(kernel, r, opts, budget[r.index], e, deadline))
                    current = None
    except (TimeLimit, OutOfTime, KeyboardInterrupt) as stop:   # the time limit, or Ctrl-C
        if isinstance(stop, TimeLimit | OutOfTime):
            timed_out = True
        else:
            interrupted = True
        # what shrinking had found by then: the shortest failing run so far, not the run as
        # it happened (`shrink_report`; in workers, `_stop_shrinks`)
        part = getattr(stop, "shrinking", None)
        if current is not None and part is not None:
            shrunk(current, part)
        if pool is not None:
            if timed_out and calls is not None:
                stuck = _stuck(calls, max_time)
            for r, sh in _stop_shrinks(pool, pending):
                shrunk(r, sh)
            _kill_workers(pool)
            pool = None
    except BaseException:
        if pool is not None:
            _kill_workers(pool)
        raise
    if todo:
        shrink_seconds = time.perf_counter() - shrink_started
    if pool is not None:
        pool.shutdown(wait=True)
    if local:                                 # one process: its new states are distinct
        distinct = sum(r.new_states for r in reports)
    else:
        seen: set[str] = set()
        for r in reports:
            seen |= r.fingerprints
        distinct = len(seen)
    return Campaign(len(reports), sum(r.events for r in reports), distinct,
                    time.perf_counter() - started, reports,
                    requested=runs if (interrupted or timed_out) and len(reports) < runs
                    else None, interrupted=interrupted, shrink_seconds=shrink_seconds,
                    timed_out=timed_out, stuck=stuck)


def _stuck(calls: str, max_time: float | None) -> str | None:
    """What the workers were in when the time limit stopped them: the call of spec code
    one had been in the longest (`watchdog.long_calls`), if one had been in it a while."""
    found = long_calls(calls)
    if not found or max_time is None:
        return None
    call, took = found[0]
    more = f" (and {len(found) - 1} more worker{'s' if len(found) > 2 else ''} in one call)" \
        if len(found) > 1 else ""
    return (f"the time limit ({max_time:g} s) passed while {call} was running in a worker "
            f"({took:.0f} s in one call){more}: the workers were stopped there")


class TimeLimit(Exception):
    """A campaign's time limit passed while it waited for a worker (or before a shrink)."""


def _within(future: Any, seconds: float | None) -> Any:
    """The result of `future`, or `TimeLimit` if it is not there within `seconds` (None: no
    limit).  Only the wait is timed: a TimeoutError the work itself raised stays one."""
    import concurrent.futures
    import threading

    if seconds is not None and seconds > threading.TIMEOUT_MAX / 2:
        seconds = None              # (`--max-time inf`, 1e308: past what a wait can take)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        if future.done():                 # the work's own error, or done just in time
            return future.result()
        raise TimeLimit from None


def _on_ray(address: str, spec: str, system_name: str | None, params: dict[str, str],
            seed: int, runs: int, opts: Options, jobs: int | None,
            got: Callable[[list[RunReport]], None], deadline: float | None) -> str | None:
    """A campaign's chunks of runs as Ray tasks (the same chunks as `jobs` workers take; by
    default one per CPU of the cluster), each chunk's reports given to `got`; what stopped it
    early ("interrupted": Ctrl-C, "max-time": `deadline`, a `time.perf_counter()`), if
    anything did."""
    from assay.checker.ray_search import cluster_cpus, connect, run_chunks

    build(spec, system_name, params)          # spec errors surface here, not in a task
    connect(address, jobs)
    jobs = jobs or cluster_cpus()
    where = os.path.abspath(spec)               # a task's process may be elsewhere
    work = [(where, system_name, params, seed, chunk, opts) for chunk in _chunks(runs, jobs,
                                                                 opts.scheduler)]
    try:
        run_chunks(work, got, deadline, ahead=4 * jobs)
    except TimeLimit:
        return "max-time"
    except KeyboardInterrupt:
        return "interrupted"
    return None


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
    """The failing run of `report` as a trace file: shrunk if it was (and `shrunk`), else
    as it happened."""
    shrunk = shrunk and report.shrunk is not None
    events = report.shrunk if shrunk else report.trace
    events = events or []
    initial = report.shrunk_initial if shrunk and report.shrunk_initial else report.initial
    v = report.violation or {}
    return Trace(spec, system, params, events, engine="simulate", seed=report.seed,
                 faults=opts.rates.to_json() if opts.rates.any else None,
                 initial=initial,
                 verdict={"kind": v.get("kind"), "name": v.get("name"), "blame": v.get("blame"),
                          "message": v.get("message"), "step": len(events)},
                 extra={"run": report.index, "scheduler": opts.scheduler,
                        "original_events": report.events, "shrunk": shrunk,
                        **({"shrink_interrupted": True} if shrunk and report.shrinking
                           and report.shrinking.interrupted else {})})
