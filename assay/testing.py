"""Hypothesis as a search engine over schedules.

A run of the simulator is a sequence of choices (which initial state, which enabled event,
whether to inject a fault); here Hypothesis makes them.  So a Hypothesis test gets its
shrinker (a failing run is cut down to a short one), its example database (a failure found
once is tried first the next time) and its reporting:

    from hypothesis import given
    from assay.testing import runs

    @given(runs(system()))
    def test_no_violation(run):
        assert run.violation is None, run.text()

or, inside a test that draws other things too, `run_schedule(data, kernel)` with
`st.data()`.  `search` is the engine of `assay simulate --engine hypothesis`: it returns a
`Campaign` whose failing run (shrunk by Hypothesis) is written as a trace file that
`assay replay` accepts.  Hypothesis shrinks the choices, and a choice it cannot delete
without changing the events after it stays: the simulator's shrinker then makes the run
1-minimal over its events.

The run itself is the simulator's (`assay.simulator.run.run_once`: the same timers, fault
injection and checks at every step); only its random generator is replaced by draws.  An
event is drawn by its index among the enabled events in their canonical order, so Hypothesis
shrinks toward the first event in that order and toward no fault.  Liveness is not watched.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, note, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from assay.kernel.kernel import Kernel
from assay.kernel.trace import Trace, initial_json, with_changes
from assay.kernel.violation import Violation
from assay.simulator.campaign import Campaign, Options, RunReport, Shrinking, kernel_for
from assay.simulator.rates import FaultRates
from assay.simulator.run import RunResult, run_once
from assay.simulator.shrink import Signature, fault_kinds, shrink, signature

FAULT_GRAIN = 1 << 16      # a fault draw is an integer in [0, FAULT_GRAIN)


class Draws:
    """A stand-in for the run's `random.Random` whose choices Hypothesis makes: `randrange(n)`
    draws an index (shrinking toward 0, the first event in canonical order) and `random()`
    the uniform number a step compares with the fault rates (shrinking toward 1: no fault).
    A run that cannot inject a fault draws nothing for it."""

    def __init__(self, draw: Callable[[Any], Any], faults: bool) -> None:
        self.draw = draw
        self.faults = faults

    def randrange(self, n: int) -> int:
        return 0 if n <= 1 else int(self.draw(st.integers(0, n - 1)))

    def random(self) -> float:
        if not self.faults:
            return 1.0
        return 1.0 - int(self.draw(st.integers(0, FAULT_GRAIN - 1))) / FAULT_GRAIN


@dataclass
class Run:
    """A run Hypothesis drew: the simulator's `RunResult` and the kernel it ran on."""

    kernel: Kernel
    result: RunResult

    @property
    def violation(self) -> Violation | None:
        return self.result.violation

    @property
    def events(self) -> list[dict[str, Any]]:
        """The run's events by name, as a trace file lists them."""
        return [self.kernel.event(e).to_json() for e in self.result.events]

    def trace(self, spec: str, system_name: str = "system",
              params: dict[str, Any] | None = None) -> Trace:
        """The run as a trace file holds it (`.write(path)`; `assay replay` reads it):
        `spec` is the spec file the system comes from, `system_name` its system function."""
        v = self.result.violation
        start = self.result.initial
        return Trace(spec, system_name, dict(params or {}),
                     with_changes(self.kernel, start, self.events), engine="simulate",
                     initial=initial_json(self.kernel, start),
                     verdict={"kind": v.kind, "name": v.name, "blame": v.blame,
                              "message": v.message, "step": len(self.result.events)}
                     if v is not None else None,
                     extra={"scheduler": "hypothesis"})

    def text(self) -> str:
        """The run, one event a line, and how it ended."""
        lines = [f"{i}. {self.kernel.describe(e)}" for i, e in enumerate(self.result.events, 1)]
        v = self.result.violation
        lines.append(f"violation: {v.kind} {v.name or ''}: {v.message}" if v is not None
                     else f"ended: {self.result.ended}")
        return "\n".join(lines)


def _can_fault(kernel: Kernel, rates: FaultRates) -> bool:
    return rates.any or bool(rates.lose and kernel.lossy)


def run_schedule(data: Any, kernel: Kernel, steps: int = 200,
                 rates: FaultRates | None = None) -> Run:
    """One run of `kernel` of at most `steps` events whose choices are drawn from `data`
    (Hypothesis's `st.data()`); a violating run's events are noted for Hypothesis's report.
    `kernel` must offer the faults `rates` injects (`campaign.kernel_for`)."""
    rates = rates or FaultRates()
    run = _run(data.draw, kernel, steps, rates)
    if run.violation is not None:
        note(run.text())
    return run


def _run(draw: Callable[[Any], Any], kernel: Kernel, steps: int, rates: FaultRates) -> Run:
    return Run(kernel, run_once(kernel, 0, steps, rates, lassos=False,
                                rng=Draws(draw, _can_fault(kernel, rates))))  # type: ignore[arg-type]


def runs(system: Any, steps: int = 200, faults: FaultRates | None = None
         ) -> st.SearchStrategy[Run]:
    """A strategy of runs of `system` (a `System`), at most `steps` events each, with faults
    injected at `faults` rates (none by default)."""
    rates = faults or FaultRates()
    kernel = kernel_for(system, rates)

    @st.composite
    def strategy(draw: Callable[[Any], Any]) -> Run:
        return _run(draw, kernel, steps, rates)

    return strategy()


class _Found(Exception):
    """A run hit the violation the search is after (raised for Hypothesis to shrink)."""


@dataclass
class SearchStats:
    """What the Hypothesis engine did: runs until the first failure (None: none failed) and
    the seconds it took, the length of the run Hypothesis shrank it to, runs in all (with
    shrinking's), and whether the example database held a failure of this search."""

    first_failure: int | None = None
    hypothesis_shrunk: int | None = None     # events in the run Hypothesis shrank it to
    first_seconds: float | None = None
    calls: int = 0
    from_database: bool = False


def database_key(spec: str, system_name: str, params: dict[str, Any], opts: Options) -> bytes:
    """The key of a search's examples in the database: what was searched (the spec file's
    text, system, parameters, steps and fault rates), so that a stored failure is only tried
    again on the same search."""
    try:
        text = Path(spec).read_bytes() if spec else b""
    except OSError:
        text = b""
    h = hashlib.blake2b(digest_size=16)
    for part in (spec.encode(), text, system_name.encode(),
                 repr(sorted((k, str(v)) for k, v in params.items())).encode(),
                 str(opts.steps).encode(), repr(opts.rates).encode()):
        h.update(len(part).to_bytes(8, "big") + part)
    return b"assay:" + h.hexdigest().encode()


def search(system: Any, *, spec: str = "", system_name: str = "",
           params: dict[str, Any] | None = None, seed: int = 0, runs: int = 100,
           opts: Options | None = None, database: str | ExampleDatabase | None = None,
           stats: SearchStats | None = None) -> Campaign:
    """Search the runs of `system` with Hypothesis for a violation: at most `runs` generated
    runs (examples), seeded by `seed`, the first one found shrunk by Hypothesis.  With
    `database` (a directory, or a Hypothesis `ExampleDatabase`) a failure found is stored
    there and tried first by the next search of the same spec, system, parameters and
    options.  Returns a `Campaign` as `simulate` does (at most one failing run; its trace
    is the run as found, its shrunk trace Hypothesis's minimal run, shrunk further by the
    simulator's `shrink`)."""
    opts = opts or Options()
    params = params or {}
    stats = stats if stats is not None else SearchStats()
    kernel = kernel_for(system, opts.rates)
    db: ExampleDatabase | None = DirectoryBasedExampleDatabase(database) \
        if isinstance(database, str) else database
    want: list[Signature] = []
    reports: list[RunReport] = []     # the runs up to the first failure
    failing: list[Run] = []
    states: set[Any] = set()
    events = 0
    started = time.perf_counter()

    def probe(data: Any) -> None:
        nonlocal events
        stats.calls += 1
        run = _run(data.draw, kernel, opts.steps, opts.rates)
        v = run.violation
        if stats.first_failure is None:
            events += len(run.result.events)
            states.update(run.result.states)
            if v is None:
                reports.append(RunReport(len(reports) + 1, seed, len(run.result.events),
                                         run.result.ended, run.result.time, set()))
        if v is None or (want and signature(v) != want[0]):
            return                       # shrinking keeps the failure it started from
        if not want:
            want.append(signature(v))
            stats.first_failure = len(reports) + 1
            stats.first_seconds = time.perf_counter() - started
        failing.append(run)
        raise _Found

    # seeded first: `seed` turns the database off, the settings after it turn it back on
    test = hypothesis_seed(seed)(given(st.data())(probe))
    test = settings(max_examples=runs, database=db, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                    report_multiple_bugs=False, print_blob=False,
                    phases=(Phase.reuse, Phase.generate, Phase.shrink) if opts.shrink
                    else (Phase.reuse, Phase.generate))(test)
    key = database_key(spec, system_name, params, opts)
    test._hypothesis_internal_database_key = key  # type: ignore[attr-defined]
    # the key of this search's examples (Hypothesis's own `find` sets it the same way);
    # without it the key is the digest of `probe`, the same for every spec
    stats.from_database = db is not None and any(True for _ in db.fetch(key))
    interrupted = False
    try:
        test()
    except _Found:
        pass
    except KeyboardInterrupt:           # Ctrl-C: the runs so far, a failure as shrunk so far
        interrupted = True
    if failing:
        first, last = failing[0], failing[-1]
        v = last.violation
        assert v is not None
        start = first.result.initial
        report = RunReport(stats.first_failure or 1, seed, len(first.result.events), "violation",
                           first.result.time, set())
        report.violation = v.to_json()
        # the run found and the shrunk one may start from different initial states: the
        # trace file holds the shrunk run, so its initial state
        report.initial = initial_json(kernel, last.result.initial)
        report.trace = with_changes(kernel, start, first.events) \
            if first.result.initial == last.result.initial else None
        # Hypothesis shrinks the choices, not the events: a choice it cannot delete without
        # changing the events after it stays; the simulator's shrinker (1-minimal over the
        # events) finishes the job
        stats.hypothesis_shrunk = len(last.events)
        polished = last.events
        halfway = interrupted
        if opts.shrink and not interrupted:
            try:
                polished = shrink(kernel, last.result.initial, last.events, v,
                                  fault_kinds(opts.rates))
            except KeyboardInterrupt as e:  # Ctrl-C while polishing: the shortest so far
                interrupted = halfway = True
                polished = getattr(e, "shrunk_events", None) or last.events
        report.shrunk = with_changes(kernel, last.result.initial, polished)
        if halfway and opts.shrink:
            report.shrinking = Shrinking(report.index, report.initial, report.shrunk, 0.0, {},
                                         0, False, 0, interrupted=True)
        if report.trace is None:
            report.trace = report.shrunk
        reports.append(report)
    ran = stats.first_failure or len(reports)
    result = Campaign(ran, events, len(states), time.perf_counter() - started, reports,
                      requested=runs if interrupted else None, interrupted=interrupted)
    result.spec, result.system_name, result.params, result.options = \
        spec, system_name, params, opts
    return result
