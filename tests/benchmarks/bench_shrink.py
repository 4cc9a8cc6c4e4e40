"""Benchmark: how close shrinking gets to `check`'s shortest counterexample, and what it costs.

The corpus: the shipped bug specs (`specs/*_bug_*.py`) and three of our own in
`tests/benchmarks/shrink_specs/` (a lock server that grants twice after a release, one that
forgets its lock on a crash — found only with crash and restart faults — and a bounded
bakery whose equal tickets both enter, with crashes on).  Not in it: the liveness bugs
(`lock_server_bug_priority`, `ring_election_bug_swallow`): a suspected lasso is not shrunk.

For each spec and each seed 0..S-1, on a fresh kernel: the runs `run_once(kernel,
derive(seed, i), ...)` for i = 0, 1, ... until the first that fails (the search; its wall time
is "search ms"), then `shrink_run` on that run (its wall time is "shrink ms").  The shrunk
length is compared with `check`'s (BFS, with the smallest fault budget that exposes the bug)
shortest counterexample for the same violation; "ddmin only" is what the old shrinker
(truncate, then ddmin) gave on the same runs.  Runs whose violation differs from the one
`check` reports are counted apart ("other violation"), and compared with the shortest
counterexample of theirs that `check --keep-going` finds (when it has one that stops there).

`--walk campaign` takes the runs as a campaign does (`run_indices`: the packed walk where it
applies, the failing run's trace recorded) and shrinks as a campaign does (`shrink_report`:
`shrink_run` on the run's event ids, or on the run taken again from its seed where this
process did not take it, then the shrunk trace recorded); `--walk row` (the default) times
`run_once` and `shrink_run` alone.  `--clock cpu` times with `time.process_time` (not the
time spent waiting for a core on a loaded machine), `--repeat N` takes each seed's search and
shrinking N times on fresh kernels (the same runs and results) and compares the medians.

"search states" are the distinct states the search came to (a fresh kernel per seed), "shrink
states" the states shrinking came to off the failing run (`Shrunk.cost`, what its budget
counts): a measure of the work that is the same on any machine.  `--floor`/`--ratio` set the
budget's `SHRINK_FLOOR`/`SHRINK_RATIO` for one run.

Then whole campaigns (`--campaign-runs`, 300 by default) of each spec: the time of the runs
against the time of shrinking every failing run (and the states shrinking came to against the
runs' events), and the share of shrunk runs as short as `check`'s counterexample of their
violation.

    python tests/benchmarks/bench_shrink.py              # 10 seeds per spec, ~2 minutes
    python tests/benchmarks/bench_shrink.py --seeds 3 --campaign-runs 30    # smoke test
    python tests/benchmarks/bench_shrink.py --walk campaign --clock cpu --repeat 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from assay.checker import check  # noqa: E402
from assay.kernel import Faults  # noqa: E402
from assay.model.load import build  # noqa: E402
from assay.simulator import FaultRates  # noqa: E402
from assay.simulator.campaign import (  # noqa: E402
    Options,
    derive,
    kernel_for,
    run_indices,
    shrink_report,
)
from assay.simulator.run import moves_of, run_once  # noqa: E402
from assay.simulator.shrink import (  # noqa: E402
    Walker,
    budget_for,
    ddmin_events,
    fault_kinds,
    shrink_run,
    signature,
)

OURS = HERE / "shrink_specs"


@dataclass(frozen=True)
class Case:
    spec: str
    rates: str                    # simulate --faults
    budget: str = ""              # check --faults
    params: tuple[tuple[str, str], ...] = ()
    steps: int = 1000


CORPUS = (
    Case("specs/abp_lossy_bug_any_ack.py", ""),
    Case("specs/alternating_bit_bug_no_seq.py", "dup=0.1", "dup=1"),
    Case("specs/bank_transfer_bug_overdraft.py", ""),
    Case("specs/coin_election_bug_ties.py", ""),
    Case("specs/in_order_receiver_bug_no_guard.py", ""),
    Case("specs/paxos_bug_own_value.py", ""),
    Case("specs/register_bug_volatile.py", "crash=0.05", "crash=1"),
    Case("specs/tla_lamport_mutex_bug_ties.py", ""),
    Case("specs/tla_paxos_commit_bug_any.py", ""),
    Case("specs/two_phase_commit_bug_majority.py", ""),
    Case("specs/two_phase_commit_bug_protocol.py", ""),
    Case(str(OURS / "mutex_bug_release.py"), ""),
    Case(str(OURS / "mutex_bug_crash.py"), "crash=0.02,restart=0.3", "crash=1"),
    Case(str(OURS / "bakery_bug_ties.py"), "crash=0.01,restart=0.3", "crash=1",
         (("max_ticket", "4"),)),
)


@dataclass
class Row:
    label: str
    shortest: int | None
    check_s: float
    found: int = 0
    other: int = 0
    equal: int = 0
    lengths: list[int] | None = None
    ddmin: list[int] | None = None
    raw: list[int] | None = None
    search: list[float] | None = None
    shrink: list[float] | None = None
    search_states: list[int] | None = None     # distinct states the search came to
    shrink_states: list[int] | None = None     # states shrinking came to off the run


CLOCK = time.perf_counter          # `--clock cpu`: time.process_time


def search_and_shrink(system: Any, case: Case, rates: FaultRates, seed: int, cap: int,
                      walk: str) -> tuple[Any, ...] | None:
    """Seed `seed` on a fresh kernel: the runs until the first that fails, then shrinking it.
    `walk` "campaign": the runs as a campaign takes them (`run_indices`: the packed walk where
    it applies, the failing run's trace recorded) and shrinking as a campaign does it
    (`shrink_report`: the run again from its seed, `shrink_run`, the trace recorded);
    "row": `run_once` and `shrink_run` alone.  Returns (search s, shrink s, searched events,
    distinct states, the failing run, shrunk length, shrink states), None if none failed."""
    kernel = kernel_for(system, rates)
    opts = Options(steps=case.steps, rates=rates)
    t = CLOCK()
    searched = 0
    if walk == "campaign":
        known: set[Any] = set()
        failed = None
        for i in range(cap):
            rep = run_indices(kernel, seed, [i], opts, known, fingerprints=False)[0]
            searched += rep.events
            if rep.violation is not None:
                failed = rep
                break
        search = CLOCK() - t
        states = len(known)
        if failed is None:
            return None
        t = CLOCK()
        sh = shrink_report(kernel, failed, opts, searched)
        shrink_s = CLOCK() - t
        run = run_once(kernel, failed.seed, case.steps, rates, lassos=False)
        return search, shrink_s, searched, states, run, len(sh.events), sh.cost
    found = None
    for i in range(cap):
        run = run_once(kernel, derive(seed, i), case.steps, rates, lassos=False)
        searched += len(run.events)
        if run.violation is not None:
            found = run
            break
    search = CLOCK() - t
    states = len(moves_of(kernel).rows)         # a fresh kernel: the search's states
    if found is None or found.violation is None:
        return None
    t = CLOCK()
    small = shrink_run(kernel, found.initial, found.events, found.violation,
                       budget=budget_for(searched), faults=fault_kinds(rates))
    shrink_s = CLOCK() - t
    return search, shrink_s, searched, states, found, len(small.events), small.cost


def run_case(case: Case, seeds: int, cap: int, repeat: int = 1, walk: str = "row") -> Row:
    spec = str(ROOT / case.spec) if not os.path.isabs(case.spec) else case.spec
    params = dict(case.params)
    system, _, _ = build(spec, None, params)
    faults = Faults.parse(case.budget) if case.budget else None
    t = time.perf_counter()
    r = check(system, faults=faults)
    check_s = time.perf_counter() - t
    want = signature(r.violation) if r.violation is not None else None
    # the shortest counterexample of each other violation: `check` keeping going (BFS: its
    # first counterexample of each is a shortest, unless it passes another violation)
    shortest = {want: len(r.steps)}
    for f in check(system, faults=faults, keep_going=True).findings:
        if f.replay_stops_at is None:
            shortest.setdefault(signature(f.violation), len(f.steps))
    row = Row(Path(spec).stem + (" " + ",".join(f"{k}={v}" for k, v in case.params)
                                 if case.params else ""),
              len(r.steps) if want else None, check_s, lengths=[], ddmin=[], raw=[], search=[],
              shrink=[], search_states=[], shrink_states=[])
    rates = FaultRates.parse(case.rates) if case.rates else FaultRates()
    for seed in range(seeds):
        # each seed `repeat` times, on fresh kernels (the same runs and results): the median
        # search and shrink times
        got = [search_and_shrink(system, case, rates, seed, cap, walk) for _ in range(repeat)]
        if got[0] is None:
            continue
        assert all(g is not None and g[2:4] == got[0][2:4] and g[5:] == got[0][5:]
                   for g in got), "a repeat differs"
        search = statistics.median(g[0] for g in got)  # type: ignore[index]
        shrink_s = statistics.median(g[1] for g in got)  # type: ignore[index]
        _, _, searched, states, found, small_len, small_cost = got[0]
        kernel = kernel_for(system, rates)      # (a fresh one, for the old shrinker's column)
        found = run_once(kernel, found.seed, case.steps, rates, lassos=False)
        row.found += 1
        assert found.violation is not None
        got_v = signature(found.violation)
        if got_v != want:
            row.other += 1
            if got_v not in shortest:
                continue
        w = Walker(kernel, got_v, fault_kinds(rates))
        start = moves_of(kernel).row(found.initial)
        n = w.fails(start, found.events) or len(found.events)
        old = ddmin_events(w, start, found.events[:n])
        assert row.lengths is not None and row.ddmin is not None and row.raw is not None
        assert row.search is not None and row.shrink is not None
        row.lengths.append(small_len)
        row.ddmin.append(len(old))
        row.raw.append(len(found.events))
        row.search.append(search)
        row.shrink.append(shrink_s)
        assert row.search_states is not None and row.shrink_states is not None
        row.search_states.append(states)
        row.shrink_states.append(small_cost)
        row.equal += small_len == shortest[got_v]
    return row


def med(xs: list[float] | list[int] | None) -> str:
    return f"{statistics.median(xs):g}" if xs else "-"


def campaigns(runs: int) -> None:
    """Whole campaigns (`campaign(..., jobs=1)`, seed 0): the runs' time against the time of
    shrinking every failing run, and how many shrank to `check`'s shortest length."""
    from assay.simulator import Options, campaign

    print(f"\n### Campaigns: {runs} runs each, jobs=1, seed 0\n")
    print("| spec | failing runs | runs s | shrink s | shrink / runs | runs' events | shrink "
          "states | states / events | failing run length (median [max]) | shrunk (median [max]) "
          "| = shortest | proved shortest |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in CORPUS:
        spec = str(ROOT / case.spec) if not os.path.isabs(case.spec) else case.spec
        system, _, _ = build(spec, None, dict(case.params))
        faults = Faults.parse(case.budget) if case.budget else None
        shortest: dict[Any, int] = {}
        for f in check(system, faults=faults, keep_going=True).findings:
            if f.replay_stops_at is None:
                shortest.setdefault(signature(f.violation), len(f.steps))
        rates = FaultRates.parse(case.rates) if case.rates else FaultRates()
        c = campaign(spec, None, dict(case.params), seed=0, runs=runs,
                     opts=Options(steps=case.steps, rates=rates), jobs=1)
        fails = c.failures
        if not fails:
            continue
        lengths = [len(r.shrunk or []) for r in fails]
        equal = sum(len(r.shrunk or []) == shortest.get(
            (v["kind"], v["name"], v["blame"])) for r in fails for v in [r.violation or {}])
        proved = sum(bool(r.shrinking and r.shrinking.everything) for r in fails)
        states = sum(r.shrinking.cost for r in fails if r.shrinking)
        print(f"| {Path(spec).stem} | {len(fails)} | {c.run_seconds:.2f} | "
              f"{c.shrink_seconds:.2f} | {c.shrink_seconds / c.run_seconds:.2f} | "
              f"{c.events} | {states} | {states / c.events:.2f} | "
              f"{med([r.events for r in fails])} [{max(r.events for r in fails)}] | "
              f"{med(lengths)} [{max(lengths)}] | {equal}/{len(fails)} | {proved}/{len(fails)} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--cap", type=int, default=3000, help="runs per seed at most")
    ap.add_argument("--only", default="", help="substring of the specs to run")
    ap.add_argument("--campaign-runs", type=int, default=300,
                    help="runs per whole campaign (0: no campaigns)")
    ap.add_argument("--floor", type=int, default=None,
                    help="shrink.SHRINK_FLOOR for this run (the budget's least)")
    ap.add_argument("--ratio", type=int, default=None,
                    help="shrink.SHRINK_RATIO for this run (budget per event searched)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="each seed's search and shrinking this many times (fresh kernels): "
                         "the median times")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter; cpu: time.process_time (this process's "
                         "CPU time: not the time spent waiting for a core on a loaded machine)")
    ap.add_argument("--walk", choices=("row", "campaign"), default="row",
                    help="row: the search is run_once, shrinking shrink_run; campaign: as a "
                         "campaign does them (run_indices, with the packed walk where it "
                         "applies; shrink_report: the run again, shrink_run, the trace)")
    ap.add_argument("--pass-ratio", type=int, default=None,
                    help="shrink.PASS_RATIO for this run")
    ap.add_argument("--outgrow", type=int, default=None,
                    help="shrink.OUTGROW_LEVELS for this run")
    a = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    import assay.simulator.shrink  # noqa: F401  (the module; the package exports a function)
    mod = sys.modules["assay.simulator.shrink"]
    if a.floor is not None:
        mod.SHRINK_FLOOR = a.floor  # type: ignore[attr-defined]
    if a.ratio is not None:
        mod.SHRINK_RATIO = a.ratio  # type: ignore[attr-defined]
    if a.outgrow is not None:
        mod.OUTGROW_LEVELS = a.outgrow  # type: ignore[attr-defined]
    if a.pass_ratio is not None:
        mod.PASS_RATIO = a.pass_ratio  # type: ignore[attr-defined]
    print(f"budget: floor {mod.SHRINK_FLOOR}, ratio {mod.SHRINK_RATIO}")  # type: ignore
    print(f"load average: {os.getloadavg()}; clock {a.clock}, walk {a.walk}, "
          f"repeat {a.repeat}")
    print("| spec | check shortest | check s | seeds found | other violation | failing run "
          "(median [max]) | ddmin only (median [max]) | shrunk (median [max]) | = shortest "
          "| search ms (median) | shrink ms (median [max]) | shrink < search (time) "
          "| search states (median) | shrink states (median [max]) | shrink < search (states) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    total = equal = cheaper = fewer = 0
    for case in CORPUS:
        if a.only not in case.spec:
            continue
        row = run_case(case, a.seeds, a.cap, a.repeat, a.walk)
        n = len(row.lengths or [])
        total += n
        equal += row.equal
        below = sum(s < f for s, f in zip(row.shrink or [], row.search or []))
        cheaper += below
        under = sum(s < f for s, f in zip(row.shrink_states or [], row.search_states or []))
        fewer += under
        ms = [x * 1000 for x in row.shrink or []]
        print(f"| {row.label} | {row.shortest} | {row.check_s:.3f} | {row.found}/{a.seeds} | "
              f"{row.other} | {med(row.raw)} [{max(row.raw or [0])}] | {med(row.ddmin)} "
              f"[{max(row.ddmin or [0])}] | {med(row.lengths)} [{max(row.lengths or [0])}] | "
              f"{row.equal}/{n} | {med([x * 1000 for x in row.search or []])} | "
              f"{med(ms)} [{max(ms or [0]):.1f}] | {below}/{n} | {med(row.search_states)} | "
              f"{med(row.shrink_states)} [{max(row.shrink_states or [0])}] | {under}/{n} |",
              flush=True)
    if total:
        print(f"\nload average: {os.getloadavg()}")
        print(f"shrunk to check's shortest length: {equal}/{total} = {equal / total:.0%}; "
              f"shrinking cheaper than the search that found the bug: {cheaper}/{total} in "
              f"time, {fewer}/{total} in states")
    if a.campaign_runs:
        campaigns(a.campaign_runs)


if __name__ == "__main__":
    main()
