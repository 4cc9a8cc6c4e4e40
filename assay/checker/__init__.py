"""Explicit-state model checking of a composed system: `check(system) -> CheckResult`."""
from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assay.checker.auto import AUTO, Handover, usable_cores, why_one_process
from assay.checker.bfs import bfs
from assay.checker.compact import compact_bfs
from assay.checker.constraints import Pruning
from assay.checker.dfs import dfs
from assay.checker.liveness import Lasso
from assay.checker.search import Found, Outcome, Progress, Search, violation_key
from assay.checker.symmetry import SPOT_EVERY, SPOT_FIRST, NotSymmetric, Symmetry
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel, State, read_nothing
from assay.kernel.trace import Step, Trace, explain, initial_json, recorded_event
from assay.kernel.violation import Violation
from assay.kernel.watchdog import SpecTimeLimit, SpecWatch
from assay.model.system import System

Verdict = Literal["ok", "violation", "incomplete"]

__all__ = ["CheckResult", "Finding", "Progress", "check"]


@dataclass(frozen=True)
class Finding:
    """One kind of violation a check that kept going found (`check(keep_going=True)`).

    `count` is how many distinct states break it (`unit` "states": a property, a deadlock),
    how many transitions do (`unit` "transitions": a contract, a protocol, a type error, an
    exception, an unhandled message; an instance's start counts as one), or 1 for a liveness
    property (`unit` "lasso").  The counterexample is the first the search met (with BFS, one
    of least length); it may pass through another violation the search went on past, and
    then `replay_stops_at` says where `assay replay` of its trace stops first."""

    violation: Violation
    count: int
    unit: str
    steps: tuple[Step, ...]
    trace: Trace
    initial: dict[str, dict[str, Any]]
    cycle_start: int | None = None
    replay_stops_at: tuple[int, Violation] | None = None     # (step, the other violation)

    def to_json(self) -> dict[str, Any]:
        stops = self.replay_stops_at
        return {**self.violation.to_json(), "count": self.count, "unit": self.unit,
                "length": len(self.steps), "cycle_start": self.cycle_start,
                "replay_stops_at": None if stops is None else {
                    "step": stops[0], "kind": stops[1].kind, "name": stops[1].name,
                    "blame": stops[1].blame},
                "trace": self.trace.to_json()}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of `check`: the verdict, why the search stopped, counts and a counterexample."""

    verdict: Verdict
    reason: str                      # exhausted | violation | max-states | max-depth |
                                     # max-time | max-memory | interrupted (see Outcome)
    strategy: str
    states: int
    transitions: int
    depth: int
    seconds: float
    violation: Violation | None
    steps: tuple[Step, ...]          # the counterexample, when there is one
    trace: Trace | None
    initial: dict[str, dict[str, Any]] | None = None   # its initial state, field values
    # a liveness counterexample is a lasso: steps[cycle_start:] repeat forever (none of them:
    # the run stops after its last step)
    cycle_start: int | None = None
    # each liveness property: "holds", "violated", or why it was not checked
    liveness: dict[str, str] = field(default_factory=dict)
    fairness: str = "none"
    # fairness declared on handlers, actions, instances or classes (`fair=`, `s.fair`)
    fairness_declared: bool = False
    # per `always` property: how often it ran, whether it was found false, what it read, and
    # a note when it held trivially (see `_property_report`)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()   # what a person should look at even when all holds
    # states expanded where nothing but faults is enabled: may be final, or deadlocked
    terminal: int = 0
    deadlocked: int = 0
    keep_going: bool = False
    # with keep_going: every kind of violation found, the first (`violation`) first
    findings: tuple[Finding, ...] = ()
    # symmetry reduction (`s.symmetric(...)`): the groups declared, whether it was applied
    # (then `states` counts orbits: one representative state each) and if not, why not
    symmetry: dict[str, Any] | None = None
    # what was checked, as the trace file names it: the spec file ("" for a System built in
    # Python), the system function, its parameters, and the fault budget
    spec: str = ""
    system_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    faults: Faults | None = None
    workers: int = 1                 # processes that searched (`check(workers=N)`)
    # how the visited states were kept: "compact" (packed ints, exact unless fingerprints were
    # spilled: then `collision_probability`), or "full" (`full_states=True`, or DFS)
    storage: dict[str, Any] = field(default_factory=lambda: {"mode": "full", "exact": True})
    # partial-order reduction (`check(por=True)`): whether it was applied (then `states` and
    # `transitions` are of the reduced graph; see `por.py`) and if not, why not
    por: dict[str, Any] | None = None
    # state constraints (`@s.constraint`): their names, and whether one cut the search
    # (`pruned`: True, False, or None when workers in other processes searched; see
    # `constraints.py`); None without constraints
    constraints: dict[str, Any] | None = None
    # whether a state where nothing is enabled (and not declared terminal) was reported as a
    # deadlock; False under `deadlock=False` (`--no-deadlock`): every such state was taken
    # as final, so "all properties hold" says nothing about deadlocks
    deadlocks_checked: bool = True

    def faults_text(self) -> str | None:
        """The fault budget as `--faults` takes it (`crash=1,drop=2`), or None."""
        return str(self.faults) if self.faults is not None else None

    @property
    def ok(self) -> bool:
        """Every state was explored and everything holds."""
        return self.verdict == "ok"

    def text(self) -> str:
        """The report `assay check` prints, as plain text (the counterexample included)."""
        from assay.report import check_text

        return check_text(self)

    def __repr__(self) -> str:
        from assay.report import check_repr

        return check_repr(self)

    def _repr_html_(self) -> str:
        from assay.report import check_html

        return check_html(self)

    @property
    def exit_code(self) -> int:
        """0 every state explored, all hold; 1 violation; 3 a bound stopped the search;
        130 (128 + SIGINT, the shell's convention) Ctrl-C stopped it."""
        if self.reason == "interrupted":
            return 130
        return {"ok": 0, "violation": 1, "incomplete": 3}[self.verdict]

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "reason": self.reason, "stopped": self.reason,
            "strategy": self.strategy,
            "states": self.states, "transitions": self.transitions, "depth": self.depth,
            "seconds": round(self.seconds, 6), "states_per_second": round(self.rate, 1),
            "violation": self.violation.to_json() if self.violation else None,
            "lasso": None if self.cycle_start is None else {"cycle_start": self.cycle_start},
            "liveness": self.liveness, "fairness": self.fairness,
            "trace": self.trace.to_json() if self.trace else None,
            "properties": self.properties,
            "warnings": list(self.warnings),
            "terminal": self.terminal, "deadlocked": self.deadlocked,
            "keep_going": self.keep_going,
            # without keep_going the search stopped at the first: nothing was counted
            "violations": [f.to_json() for f in self.findings] if self.keep_going else None,
            "symmetry": self.symmetry,
            "workers": self.workers,
            "storage": self.storage,
            "por": self.por,
            "constraints": self.constraints,
            "deadlocks_checked": self.deadlocks_checked,
        }


def declared_fairness(kernel: Kernel) -> bool:
    """Whether the spec declares fairness beyond the system's default (`fair=` on a handler
    or action, `s.fair(...)`)."""
    return bool(kernel.system.fair_rules) or any(
        h.fair is not None for inst in kernel.instances for h in inst.info.handlers.values()
    ) or any(a.fair is not None for inst in kernel.instances for a in inst.info.actions)


def check(system: System | Kernel, *, strategy: str = "bfs", max_states: int | None = None,
          max_depth: int | None = None, on_progress: Callable[[Progress], None] | None = None,
          spec: str = "", system_name: str = "", params: dict[str, Any] | None = None,
          faults: Faults | None = None, fairness: str | None = None,
          max_time: float | None = None, max_memory: int | None = None,
          progress_interval: float = 0.5, keep_going: bool = False,
          symmetry: bool = True, full_states: bool = False, workers: int | str = 1,
          ray: str | None = None, checkpoint: str | None = None,
          checkpoint_every: float = 300.0, por: bool = False) -> CheckResult:
    """Explore every reachable state of `system` and check its contracts and properties.

    With `faults`, every placement of at most that many faults of each kind is explored too.
    Liveness properties are decided on the explored graph once the search has finished
    without a safety violation, under the system's fairness (or `fairness`, which overrides
    its default).
    `max_time` (seconds) and `max_memory` (bytes of resident memory, this process's) stop the
    search incomplete, like `max_states`; `on_progress` is called every `progress_interval`
    seconds.  Ctrl-C (KeyboardInterrupt) during the search stops it too: the result says
    `interrupted`, with the counts so far.

    With `keep_going` (TLC's -continue) the search does not stop at a violation: it explores
    every reachable state — on from violating states and steps too — within the bounds, and
    the result's `findings` count each kind of violation, with its first counterexample;
    every liveness property is decided when the search was exhausted, whatever it found.

    Where the system declares interchangeable instances (`s.symmetric(...)`) the search
    explores one state per orbit (`symmetry=False`: every state); the result's `symmetry`
    says whether it was applied, and if not why (a property that tells the instances apart,
    a partition budget).  Liveness properties are decided on the orbits where they are
    symmetric (`symmetric_liveness.py`; `symmetry["liveness"]` says how each was decided).
    Counterexamples are concrete either way.

    BFS keeps states compactly (`compact.py`: packed ints, exact; past `max_memory` the
    visited set and the levels move to disk and the search goes on, rather than stopping);
    `full_states=True` keeps every full state with its parent in memory instead (`bfs.py`:
    the same counts and counterexamples, more memory; `max_memory` then stops the search).

    With `por` the breadth-first search expands, where it is sound, only an ample set of each
    state's events (`por.py`): the result's `por` says whether it was applied (then `states`
    counts the states of the reduced graph) and if not why; a counterexample is a real run,
    not necessarily a shortest one.

    `workers="auto"` (`check`'s command-line default): one process, handing the search over
    to one worker per usable core at the end of a level once it is large enough to pay
    (`auto.py`), with the counts, verdict and counterexample of one process; where it
    cannot (a mode `auto.why_one_process` names) it stays on one process and says nothing.
    """
    if isinstance(system, Kernel):
        if faults is not None and system.faults != faults:
            raise ValueError("give the fault budget to the Kernel, or a System to check()")
        if fairness is not None and system.fairness != fairness:
            raise ValueError("give the fairness to the Kernel, or a System to check()")
        kernel = system
    else:
        kernel = Kernel(system, faults, fairness)
    def new_search() -> Search:
        return Search(max_states=max_states, max_depth=max_depth, max_time=max_time,
                      max_memory=max_memory, on_progress=on_progress, interval=progress_interval)

    search = new_search()
    reduce, sym = _symmetry(kernel, symmetry)
    explore = {"bfs": bfs if full_states else compact_bfs, "dfs": dfs}.get(strategy)
    if explore is None:
        raise ValueError(f"unknown strategy {strategy!r}; use 'bfs' or 'dfs'")
    lasso = None
    liveness: dict[str, str] = {}
    handover = None
    if workers == AUTO:
        workers = 1
        cores = usable_cores()
        if why_one_process(kernel, strategy=strategy, keep_going=keep_going,
                           reduced=reduce is not None, full_states=full_states,
                           max_memory=max_memory, checkpoint=checkpoint is not None,
                           ray=ray is not None, por=por, cores=cores) is None:
            handover = Handover(cores)
    if not isinstance(workers, int):
        raise ValueError(f"workers={workers!r}: a number of processes, or 'auto'")
    if ray is not None:
        workers = _ray_workers(ray, workers, spec, system_name)
    serial = _serial_only(kernel, strategy, keep_going, reduce) if workers > 1 else None
    checkpoints = None
    if checkpoint is not None:
        checkpoints = _checkpoints(kernel, strategy, keep_going,
                                   None if sym is None else symmetry, checkpoint,
                                   checkpoint_every, spec, system_name, params,
                                   workers if serial is None else 1)
    unchanged: set[int] | None = None
    por_info: dict[str, Any] | None = None
    if por:
        from assay.checker.por import refusal

        why = refusal(kernel, strategy, keep_going, reduce is not None,
                      workers if serial is None else 1) or (
            "not with --checkpoint" if checkpoints is not None else None)
        por_info = {"applied": why is None, "why": why}
    # whether a constraint cut the search: noted where the search runs in this process (or
    # forks from it); a worker built from a pickled system (spawn, Ray) gets the plain ones
    apart = ray is not None or workers > 1 and serial is None
    pruning = Pruning(kernel.system) if kernel.system.constraints and not apart else None
    watch = SpecWatch(max_time, "the check", "A time limit (--max-time) stops it")
    # States are tuples of ints: they form no reference cycles, and the cyclic collector's
    # passes over millions of them cost a fifth of the run.  Pause it during the search
    # (only here, where `finally` turns it back on: a refusal above, of a checkpoint
    # directory or of `workers`, must not leave the caller's process without a collector).
    was_enabled = gc.isenabled()
    gc.disable()
    resumed = False
    try:
        # a resumed search does not meet again the states met before its checkpoint: whether
        # a constraint cut those is not known (`Pruning.report`)
        resumed = checkpoints is not None and checkpoints.found() is not None
        watch.start()
        if por_info is not None and por_info["applied"]:
            from assay.checker.por import NotReducible, por_check

            try:
                out, por_info = por_check(kernel, new_search)
            except NotReducible as e:
                por_info = {"applied": False, "why": e.why}
                search = new_search()
                out = explore(kernel, search, keep_going)
        elif workers > 1 and serial is None or checkpoints is not None:
            make = None
            if ray is not None and serial is None:
                from assay.checker.ray_search import RayWorkers

                n, name, typed = workers, system_name, params or {}
                make = lambda opts: RayWorkers(kernel, n, opts, spec, name, typed)  # noqa: E731
            out, extra, search = _apart(kernel, search, new_search, strategy,
                                        workers if serial is None else 1, make,
                                        checkpoints, reduce, sym, keep_going)
            unchanged = extra.unchanged
        elif reduce is not None:
            try:
                out = explore(kernel, search, keep_going, reduce)
                out = _concrete(reduce, out)
                assert sym is not None
                sym["orbits"] = out.states
            except NotSymmetric as e:
                assert sym is not None
                sym.update(applied=False, why=f"{e.what} is not symmetric: {e.why}")
                search = new_search()
                out = explore(kernel, search, keep_going)
        elif handover is not None:
            out = compact_bfs(kernel, search, keep_going, handover=handover)
            unchanged = handover.unchanged
        else:
            out = explore(kernel, search, keep_going)
        if kernel.system.liveness:
            applied = reduce if sym is not None and sym["applied"] else None
            out, lasso, liveness, how = _liveness(kernel, search, out, keep_going, applied)
            if sym is not None and how is not None:
                sym.update(how)
    except SpecTimeLimit:
        # stopped in spec code outside a search loop (which would have caught it): a
        # sample before the workers start, the liveness phase
        out = Outcome("interrupted", search.states, search.transitions, search.depth,
                      time.perf_counter() - search.started)
    finally:
        watch.stop()
        if pruning is not None:
            pruning.restore()
        if checkpoints is not None:
            checkpoints.close()
        if was_enabled:
            # the objects made during the search went to the youngest generation (the
            # collector was off): its first pass after this would walk them all.  Move them
            # to the oldest at once, where a full collection finds them when one is due
            # (not when the caller froze objects of its own: unfreezing would move them too)
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
    result = _result(kernel, out, strategy, spec, system_name, params or {}, lasso, liveness,
                     keep_going, unchanged)
    if out.storage is not None:
        result = replace(result, storage=out.storage)
    stuck = watch.fired or search.overdue
    if stuck is not None and result.reason == "interrupted":
        # not Ctrl-C: spec code that kept the search from its time bound was stopped
        result = replace(result, reason="max-time", warnings=(*result.warnings, stuck))
    if handover is not None:
        result = replace(result, workers=handover.workers)
    if workers > 1:
        note = () if serial is None else (f"--workers {workers}: {serial}, so one worker "
                                          "searched",)
        result = replace(result, workers=1 if serial else workers,
                         warnings=(*result.warnings, *note))
    if kernel.system.constraints:
        info = (pruning.report(known=not resumed and (handover is None
                                                      or handover.workers <= 1))
                if pruning is not None else Pruning.unknown(kernel.system))
        result = replace(result, constraints=info)
    if por_info is not None:
        result = replace(result, por=por_info, warnings=result.warnings if por_info["applied"]
                         else (*result.warnings, f"partial-order reduction not applied: "
                               f"{por_info['why']}; every state was explored"))
    if sym is not None:
        warnings = result.warnings
        if not sym["applied"] and symmetry:
            warnings = (*warnings, f"symmetry reduction not applied: {sym['why']}; every "
                                   "state was explored")
        if sym["applied"] and sym.get("properties", "").startswith("the transpositions"):
            warnings = (*warnings, "symmetry: the properties were compared on each state with "
                        "some permutations of the members (transpositions, rotation, "
                        "reversal), not every one (more than 24): a property that tells "
                        "members apart only under another may go unseen; --no-symmetry "
                        "checks every state")
        for name, how in (sym.get("liveness") or {}).items():
            if how != "on orbits":
                warnings = (*warnings, f"liveness property {name!r} {how}")
        result = replace(result, symmetry=sym, warnings=warnings)
    return result


def _ray_workers(address: str, workers: int, spec: str, system_name: str) -> int:
    """Connect to Ray; how many actors to search with."""
    from assay.checker.ray_search import cluster_cpus, connect

    if not spec or not system_name:
        raise ValueError("check(ray=...) needs spec= and system_name= (each actor loads the "
                         "spec file)")
    connect(address, workers if workers > 1 else None)
    return workers if workers > 1 else max(2, cluster_cpus())


def _checkpoints(kernel: Kernel, strategy: str, keep_going: bool, symmetry: Any,
                 path: str, every: float, spec: str, system_name: str,
                 params: dict[str, Any] | None, workers: int) -> Any:
    """The checkpoint directory of this check.  `symmetry`: whether reduction was asked for,
    None when the system declares none."""
    from assay.checker.checkpoint import Checkpoints, identity

    if not spec or not system_name:
        raise ValueError("check(checkpoint=...) needs spec= and system_name=")
    return Checkpoints(path, identity(spec, system_name, params or {}, kernel.faults,
                                      kernel.fairness, kernel.check_deadlock, workers,
                                      symmetry=None if symmetry is None else bool(symmetry),
                                      keep_going=keep_going, strategy=strategy), every)


def _apart(kernel: Kernel, search: Search, new_search: Callable[[], Search], strategy: str,
           n: int, make: Any, checkpoints: Any, reduce: Symmetry | None,
           sym: dict[str, Any] | None, keep_going: bool) -> tuple[Outcome, Any, Search]:
    """A search spread over workers or saved in checkpoints: the level-by-level search of
    `parallel.py` (`--workers`, `--checkpoint`), or with `--dfs --checkpoint` the depth-first
    one of `dfs_checkpoint.py`.  With symmetry reduction over representatives that every
    worker and every resumed search picks alike (`StableSymmetry`), back to every state when
    a property is not symmetric (a checkpoint notes it: the search it resumes is unreduced
    too); the outcome's counterexamples concrete.  The search that ran is returned with the
    outcome."""
    from assay.checker.parallel import check_parallel
    from assay.checker.symmetry import StableSymmetry

    def run(search: Search, stable: StableSymmetry | None) -> tuple[Outcome, Any]:
        if strategy == "dfs":
            from assay.checker.dfs_checkpoint import checkpointed_dfs

            return checkpointed_dfs(kernel, search, keep_going, stable, checkpoints)
        return check_parallel(kernel, search, n, make, checkpoints, stable, keep_going)

    stable = None
    if reduce is not None:
        assert sym is not None
        why = checkpoints.unreduced() if checkpoints is not None else None
        if why is None:
            stable = StableSymmetry(kernel)
        else:
            sym.update(applied=False, why=why)
    try:
        out, extra = run(search, stable)
    except NotSymmetric as e:
        assert sym is not None
        why = f"{e.what} is not symmetric: {e.why}"
        sym.update(applied=False, why=why)
        if checkpoints is not None:
            checkpoints.restart(unreduced=why)
        search = new_search()
        out, extra = run(search, None)
        return out, extra, search
    if stable is not None:
        assert sym is not None
        out = _concrete(stable, out)
        sym["orbits"] = out.states
    return out, extra, search


def _serial_only(kernel: Kernel, strategy: str, keep_going: bool,
                 reduce: Symmetry | None) -> str | None:
    """Why a check cannot be spread over workers (they search breadth-first, for safety
    only, without symmetry), or None."""
    if strategy != "bfs":
        return "the parallel search is breadth-first (not --dfs)"
    if keep_going:
        return "--keep-going is not supported by the parallel search"
    if reduce is not None:
        return "symmetry reduction is not supported by the parallel search (--no-symmetry " \
               "explores every state in parallel)"
    if kernel.system.liveness:
        return "liveness properties are decided on the whole graph by one process"
    return None


def _symmetry(kernel: Kernel, wanted: bool) -> tuple[Symmetry | None, dict[str, Any] | None]:
    """The symmetry reduction to apply, if any, and what the result says of it."""
    groups = kernel.system.symmetries
    if not groups:
        return None, None
    sym: dict[str, Any] = {"groups": [list(g) for g, _ in groups], "applied": False,
                           "why": None, "orbits": None}
    if not wanted:
        sym["why"] = "turned off (--no-symmetry)"
        return None, sym
    reduce = Symmetry(kernel)           # validates the declaration: a SpecError if wrong
    reduce.check_initial()
    if kernel.faults is not None and kernel.faults.partition:
        sym["why"] = "partitions are not renamed (a partition never holds instance 0)"
        return None, sym
    sym["applied"] = True
    # how the properties were compared on each orbit's other states (`Symmetry.judged`)
    sym["properties"] = ("every permutation, every state" if reduce.judged_exactly else
                         "the transpositions, rotation and reversal, every state")
    # the members' own code is compared less often (`Symmetry.spot_check`): the reduction
    # assumes it does not tell them apart, as TLC's SYMMETRY does; say so
    sym["code"] = (f"assumed; spot-checked on the first {SPOT_FIRST} states expanded, then "
                   f"one in {SPOT_EVERY:,}")
    return reduce, sym


def _concrete(reduce: Symmetry, out: Outcome) -> Outcome:
    """The outcome with its counterexamples concrete (the search's paths join orbits)."""
    if out.start is not None:
        start, path, v = reduce.concretise(out.start, out.path, out.violation)
        out = replace(out, start=start, path=path, violation=v)
    if out.found:
        found = []
        for f in out.found:
            start, path, v = reduce.concretise(f.start, f.path, f.violation)
            found.append(replace(f, start=start, path=path, violation=v or f.violation))
        out = replace(out, found=tuple(found))
        if out.violation is not None:
            out = replace(out, violation=out.found[0].violation)
    return out


def _liveness(kernel: Kernel, search: Search, out: Outcome, keep_going: bool = False,
              reduce: Symmetry | None = None
              ) -> tuple[Outcome, Lasso | None, dict[str, str], dict[str, Any] | None]:
    """Decide the liveness properties once the safety search is done: on the whole graph when
    it was exhausted — on the graph of orbits with `reduce`, where that is sound
    (`symmetric_liveness.py`; the last item returned says how each was decided) —;
    otherwise they are not checked (and the verdict says why).  Without
    `keep_going` the first that fails is the counterexample and the rest are not checked;
    with it every one is decided, and each that fails is a finding (a lasso)."""
    from assay.checker.symmetric_liveness import Decider

    props = kernel.system.liveness
    if out.reason != "exhausted":
        why = {"violation": "not checked: a safety violation was found first",
               "interrupted": "not checked: the search was interrupted"}.get(
            out.reason, f"not checked: the search stopped at the {out.reason} bound")
        return out, None, {p.name: why for p in props}, None
    try:
        decider = Decider(kernel, search, reduce)
        out, lasso, verdicts = _decide(kernel, search, out, keep_going, decider)
    except KeyboardInterrupt:       # Ctrl-C after the safety search: it stands, liveness not
        return (replace(out, reason="interrupted"), None,
                {p.name: "not checked: interrupted" for p in props}, None)
    return out, lasso, verdicts, decider.summary() if reduce is not None else None


def _decide(kernel: Kernel, search: Search, out: Outcome, keep_going: bool, decider: Any
            ) -> tuple[Outcome, Lasso | None, dict[str, str]]:
    props = kernel.system.liveness
    verdicts: dict[str, str] = {}
    if keep_going:
        lassos = []
        for p in props:
            lasso = decider.check(p)
            verdicts[p.name] = "holds" if lasso is None else "violated"
            if lasso is not None:
                lassos.append(Found(lasso.violation, 1, "lasso", lasso.start, lasso.events,
                                    lasso.cycle_start))
        seconds = time.perf_counter() - search.started
        out = replace(out, seconds=seconds, found=out.found + tuple(lassos))
        if out.violation is None and lassos:    # no safety violation: the first lasso leads
            out = replace(out, violation=lassos[0].violation, start=lassos[0].start,
                          path=lassos[0].path)
        return out, None, verdicts
    for i, p in enumerate(props):
        lasso = decider.check(p)
        if lasso is not None:
            verdicts[p.name] = "violated"
            verdicts.update({q.name: "not checked: another liveness property failed first"
                             for q in props[i + 1:]})
            seconds = time.perf_counter() - search.started
            return (Outcome("violation", out.states, out.transitions, out.depth, seconds,
                            lasso.violation, lasso.start, lasso.events,
                            storage=out.storage), lasso, verdicts)
        verdicts[p.name] = "holds"
    seconds = time.perf_counter() - search.started
    return replace(out, seconds=seconds), None, verdicts


def _result(kernel: Kernel, out: Outcome, strategy: str, spec: str, system_name: str,
            params: dict[str, Any], lasso: Lasso | None = None,
            liveness: dict[str, str] | None = None, keep_going: bool = False,
            unchanged: set[int] | None = None) -> CheckResult:
    verdict: Verdict = {"exhausted": "ok", "violation": "violation"}.get(  # type: ignore
        out.reason, "incomplete")
    if out.found:
        verdict = "violation"
    name = system_name or kernel.system.name
    # first: the counterexamples below evaluate properties again, which it would count
    properties = _property_report(kernel, out, keep_going, unchanged)

    def counterexample(v: Violation, start: State, path: tuple[int, ...],
                       cycle_start: int | None) -> tuple[tuple[Step, ...], Trace]:
        steps: list[Step] = []
        state = start
        for i, ev in enumerate(path, 1):
            step, state = explain(kernel, state, ev, i)
            steps.append(step)
        trace = Trace(spec, name, params, [recorded_event(s) for s in steps], engine="check",
                      faults=kernel.faults.to_json() if kernel.faults else None,
                      initial=initial_json(kernel, start),
                      verdict={"kind": v.kind, "name": v.name, "blame": v.blame,
                               "message": v.message, "step": len(steps),
                               **({"cycle_start": cycle_start, "fairness": kernel.fairness}
                                  if cycle_start is not None else {}),
                               **({} if kernel.check_deadlock else {"deadlock": False})})
        return tuple(steps), trace

    def values(state: State) -> dict[str, dict[str, Any]]:
        return {inst.name: kernel.local_values(state, inst.name) for inst in kernel.instances}

    findings = tuple(_finding(kernel, f, *counterexample(f.violation, f.start, f.path,
                                                          f.cycle_start), values(f.start))
                     for f in out.found)
    steps: tuple[Step, ...] = ()
    trace = None
    initial = None
    cycle_start = lasso.cycle_start if lasso else None
    if findings:                                # the first found leads (out.violation)
        steps, trace, initial = findings[0].steps, findings[0].trace, findings[0].initial
        cycle_start = findings[0].cycle_start
    elif out.violation is not None and out.start is not None:
        steps, trace = counterexample(out.violation, out.start, out.path, cycle_start)
    if out.start is not None and initial is None:
        initial = values(out.start)
    warnings = [p["note"] for p in properties.values() if p["note"]]
    deadlock = out.violation is not None and out.violation.kind == "deadlock"
    if out.transitions == 0 and (out.reason in ("exhausted", "max-depth") or deadlock):
        warnings.insert(0, NOTHING_ENABLED)
    return CheckResult(verdict, out.reason, strategy, out.states, out.transitions, out.depth,
                       out.seconds, out.violation, steps, trace, initial,
                       cycle_start=cycle_start,
                       liveness=liveness or {}, fairness=kernel.fairness,
                       fairness_declared=declared_fairness(kernel),
                       properties=properties, warnings=tuple(warnings),
                       terminal=out.terminal, deadlocked=out.deadlocked,
                       keep_going=keep_going, findings=findings, spec=spec,
                       system_name=name, params=dict(params), faults=kernel.faults,
                       deadlocks_checked=kernel.check_deadlock)


def _finding(kernel: Kernel, f: Found, steps: tuple[Step, ...], trace: Trace,
             initial: dict[str, dict[str, Any]]) -> Finding:
    return Finding(f.violation, f.count, f.unit, steps, trace, initial, f.cycle_start,
                   _replay_stops_at(kernel, f, steps))


def _replay_stops_at(kernel: Kernel, f: Found, steps: tuple[Step, ...]
                     ) -> tuple[int, Violation] | None:
    """Where a replay of `f`'s counterexample meets another violation first (the search went
    on past it), in replay's order: the start's properties, then each step's violations and
    its state's properties (as `replay_checked` meets them).  None when the first it meets is
    `f`'s own."""
    own = violation_key(f.violation)
    met: list[tuple[int, Violation]] = [(0, v) for v in kernel.property_violations(f.start)]
    state = f.start
    for step in steps:
        if met:
            break
        state = kernel.apply(state, step.event)[0]
        met += [(step.index, v) for v in step.violations]
        met += [(step.index, v) for v in kernel.property_violations(state)]
    if not met or met[0][0] == len(steps) and violation_key(met[0][1]) == own:
        return None                             # its own, at its own step
    return met[0]


NOTHING_ENABLED = ("0 transitions: is anything enabled? Nothing can happen in the initial "
                   "state, so nothing beyond it was checked")


def _property_report(kernel: Kernel, out: Outcome, keep_going: bool = False,
                     unchanged: set[int] | None = None) -> dict[str, dict[str, Any]]:
    """For each `always` property: `evaluated` (how often it ran: once per distinct
    combination of local states — with the compact BFS, of the local states the evaluation
    read —, or per state when some property reads the network),
    `ever_false`, `reads` (the instances, and "network" for messages in flight or crashes, as
    noted in its first evaluations), and a `note` when it was never evaluated or held
    trivially: it read nothing, or only instances whose state never changed (a property that
    is constantly true may be vacuous).  Computed after the search, from what the kernel
    noted as the properties ran (by the workers of a parallel search: `unchanged` is then
    what they found)."""
    if not kernel.properties:
        return {}
    names = [inst.name for inst in kernel.instances]
    report = {}
    v = out.violation
    broken = {f.violation.name for f in out.found if f.violation.kind == "property"}
    if v is not None and v.kind == "property":
        broken.add(v.name)
    # a search that stopped at a violation did not see enough to call a property vacuous;
    # one that kept going did
    whole = v is None or keep_going
    for j, p in enumerate(kernel.properties):
        reads = sorted(kernel.property_reads[j])
        beyond = kernel.property_beyond[j]
        false = p.name in broken
        note = None
        if kernel.property_evaluations == 0:
            note = f"property {p.name!r} was never evaluated"
        elif not false and not beyond and whole:
            if not reads:
                note = read_nothing(p.name)
            else:
                if unchanged is None:
                    unchanged = kernel.unchanged_instances()
                if all(i in unchanged for i in reads):
                    which = ", ".join(names[i] for i in reads)
                    note = (f"property {p.name!r} read only {which}, whose state never changed "
                            f"in the {out.states:,} states explored: it held trivially "
                            "(vacuous?)")
        report[p.name] = {"evaluated": kernel.property_evaluations, "ever_false": false,
                          "reads": [names[i] for i in reads] + (["network"] if beyond else []),
                          "note": note}
    return report
