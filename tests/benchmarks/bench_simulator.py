"""Benchmark: the simulator's throughput, and its time to the first bug vs `check`'s.

What it measures
    1. Throughput.  ``campaign(spec, ..., jobs=1)`` (in process, one worker) on the shipped
       correct specs, with the random and the PCT (depth 3) scheduler; events per second is
       ``c.events / c.seconds``.  ``c.seconds`` covers the whole campaign: building the spec
       and the kernel, the runs, and the campaign's bookkeeping (a fingerprint of every state
       new to its chunk of 32 runs).  For comparison the "run_once ev/s" column times the same
       runs (same seeds ``derive(0, i)``, same options) through ``run_once`` alone, on a fresh
       kernel built before the clock starts: the simulator loop without the campaign around it.
       Runs per case are chosen so that one campaign takes about 1-3 s on a 2-CPU x86_64.

    2. Time to the first bug.  For each bug spec and each scheduler, for seeds 0..19, single
       runs ``run_once(kernel, derive(seed, i), steps, rates, scheduler)`` for i = 0, 1, 2, ...
       until the first run with a violation (any violation), capped at ``--cap`` runs per seed.
       The kernel is built once per spec (``kernel_for(system, rates)``, not timed) and shared
       by both schedulers and all seeds, so its memo tables are warm after the first runs.
       Reported: median / min / max over the seeds of the wall time, the runs and the events
       up to and including the failing run, which violation was hit, and the median length of
       the failing run after ``shrink`` (shrinking is timed separately, not in the time to bug).

    3. ``check`` on the same bug spec: ``check(system, faults=...)`` (BFS) with the smallest
       fault budget that exposes the bug; reported: ``r.seconds`` (the search alone), the wall
       time of the whole ``check()`` call (kernel construction and counterexample replay
       included), the states explored and the counterexample length ``len(r.steps)``; median
       of ``--check-repeat`` calls.

Run it from anywhere (the repo root is found from this file's location):

    python tests/benchmarks/bench_simulator.py            # full: ~1.5 minutes on 2 CPUs
    python tests/benchmarks/bench_simulator.py --quick    # smoke test: < 20 s
    python tests/benchmarks/bench_simulator.py --profile  # also cProfile one slow campaign
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

from assay.checker import check  # noqa: E402
from assay.kernel import Faults  # noqa: E402
from assay.model.load import build  # noqa: E402
from assay.simulator import FaultRates, Options, campaign, shrink  # noqa: E402
from assay.simulator.campaign import derive, kernel_for  # noqa: E402
from assay.simulator.run import run_once  # noqa: E402

SCHEDULERS = ("random", "pct")
PCT_DEPTH = 3


@dataclass(frozen=True)
class ThroughputCase:
    label: str
    spec: str
    params: dict[str, str]
    rates: FaultRates
    faults_text: str
    runs: dict[str, int]            # per scheduler, for ~1-3 s per campaign
    steps: int = 1000


THROUGHPUT = (
    ThroughputCase("two_phase_commit", "specs/two_phase_commit.py", {}, FaultRates(), "none",
                   {"random": 5000, "pct": 4000}),
    ThroughputCase("tla_twophase rm_count=5", "specs/tla_twophase.py", {"rm_count": "5"},
                   FaultRates(), "none", {"random": 200, "pct": 160}),
    ThroughputCase("alternating_bit retries=20", "specs/alternating_bit.py", {"retries": "20"},
                   FaultRates(drop=0.05, dup=0.05), "drop=0.05,dup=0.05",
                   {"random": 3000, "pct": 800}),
    ThroughputCase("register", "specs/register.py", {}, FaultRates(crash=0.01), "crash=0.01",
                   {"random": 10000, "pct": 10000}),
)


@dataclass(frozen=True)
class BugCase:
    label: str
    spec: str
    rates: FaultRates
    faults_text: str
    check_faults: Faults | None


BUGS = (
    BugCase("two_phase_commit_bug_majority", "specs/two_phase_commit_bug_majority.py",
            FaultRates(), "none", None),
    BugCase("alternating_bit_bug_no_seq", "specs/alternating_bit_bug_no_seq.py",
            FaultRates(dup=0.1), "dup=0.1", Faults(dup=1)),
    BugCase("register_bug_volatile", "specs/register_bug_volatile.py",
            FaultRates(crash=0.05), "crash=0.05", Faults(crash=1)),
)


# --- machine --------------------------------------------------------------------------------

def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine_lines() -> list[str]:
    import hashlib
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    diff = _git("diff", "HEAD", "--", "assay/", "specs/")
    status = _git("status", "--short", "--", "assay/", "specs/")
    changed = ", ".join(line[3:] for line in status.splitlines())
    dirty = ("clean" if not status else
             f"uncommitted: {changed}; `git diff HEAD -- assay/ specs/ | sha1sum` = "
             f"{hashlib.sha1(diff.encode()).hexdigest()[:8]}…")
    return [f"date: {now}",
            f"machine: nproc = {nproc}, uname -m = {platform.machine()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.release()}; load average before the run: {load}",
            f"tree: commit {_git('rev-parse', '--short', 'HEAD').strip()}, "
            f"assay/ and specs/ {dirty}"]


# --- 1. throughput --------------------------------------------------------------------------

@dataclass
class ThroughputRow:
    case: ThroughputCase
    scheduler: str
    runs: int
    events: int
    seconds: float                 # median campaign seconds
    rate: float                    # events / seconds of that campaign
    distinct: int
    failures: int
    ended: dict[str, int]
    raw_seconds: float
    raw_rate: float


def throughput(case: ThroughputCase, scheduler: str, runs: int, repeat: int) -> ThroughputRow:
    opts = Options(steps=case.steps, rates=case.rates, scheduler=scheduler,
                   pct_depth=PCT_DEPTH)
    spec = str(ROOT / case.spec)
    camps = []
    for _ in range(repeat):
        camps.append(campaign(spec, None, case.params, seed=0, runs=runs, opts=opts, jobs=1))
    camps.sort(key=lambda c: c.seconds)
    c = camps[len(camps) // 2]
    # The same runs, through run_once alone, on a fresh kernel each time (cold memo tables,
    # like each campaign's) built before the clock starts.
    raw = []
    for _ in range(repeat):
        system, _, _ = build(spec, None, case.params)
        kernel = kernel_for(system, case.rates)
        t0 = time.perf_counter()
        events = 0
        for i in range(runs):
            r = run_once(kernel, derive(0, i), case.steps, case.rates, scheduler, PCT_DEPTH)
            events += len(r.events)
        raw.append(time.perf_counter() - t0)
    assert events == c.events, (case.label, scheduler, events, c.events)
    raw_s = statistics.median(raw)
    return ThroughputRow(case, scheduler, runs, c.events, c.seconds, c.events / c.seconds,
                         c.distinct_states, len(c.failures),
                         dict(Counter(r.ended for r in c.reports)), raw_s, events / raw_s)


def print_throughput(rows: list[ThroughputRow], repeat: int) -> None:
    print(f"## 1. Throughput: campaign(..., seed=0, jobs=1), steps=1000 per run "
          f"(median of {repeat})")
    print()
    print("| spec | faults | scheduler | runs | events | campaign s | campaign ev/s "
          "| run_once ev/s | distinct states | how runs ended |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(r.ended.items()))
        fail = f" ({r.failures} FAILED)" if r.failures else ""
        print(f"| {r.case.label} | {r.case.faults_text} | {r.scheduler} | {r.runs:,} "
              f"| {r.events:,} | {r.seconds:.2f} | {r.rate:,.0f} | {r.raw_rate:,.0f} "
              f"| {r.distinct:,} | {ended}{fail} |")
    print()


# --- 2. time to first bug -------------------------------------------------------------------

@dataclass
class SeedResult:
    found: bool
    runs: int
    events: int
    seconds: float
    violation: str = ""
    raw_length: int = 0
    shrunk_length: int = 0
    shrink_seconds: float = 0.0


@dataclass
class BugRow:
    case: BugCase
    scheduler: str
    seeds: list[SeedResult] = field(default_factory=list)


def _sig(v: Any) -> str:
    return f"{v.kind} {v.name}" if v.name else f"{v.kind} (blame {v.blame})"


def first_bug(kernel: Any, seed: int, steps: int, rates: FaultRates, scheduler: str,
              cap: int) -> SeedResult:
    t0 = time.perf_counter()
    events = 0
    for i in range(cap):
        r = run_once(kernel, derive(seed, i), steps, rates, scheduler, PCT_DEPTH)
        events += len(r.events)
        if r.violation is not None:
            seconds = time.perf_counter() - t0
            names = [kernel.event(e).to_json() for e in r.events]
            t1 = time.perf_counter()
            small = shrink(kernel, r.initial, names, r.violation)
            return SeedResult(True, i + 1, events, seconds, _sig(r.violation), len(names),
                              len(small), time.perf_counter() - t1)
    return SeedResult(False, cap, events, time.perf_counter() - t0)


def time_to_bug(case: BugCase, seeds: int, steps: int, cap: int) -> list[BugRow]:
    system, _, _ = build(str(ROOT / case.spec), None, {})
    kernel = kernel_for(system, case.rates)
    rows = []
    for scheduler in SCHEDULERS:
        row = BugRow(case, scheduler)
        for seed in range(seeds):
            row.seeds.append(first_bug(kernel, seed, steps, case.rates, scheduler, cap))
        rows.append(row)
    return rows


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _stat(values: list[float], found: list[bool], fmt: str) -> str:
    """median [min-max] over all seeds, a capped seed counting as +infinity."""
    vals = [v if f else float("inf") for v, f in zip(values, found)]
    med = statistics.median(vals)

    def show(x: float) -> str:
        return "not found" if x == float("inf") else format(x, fmt)
    return f"{show(med)} [{show(min(vals))}–{show(max(vals))}]"


def print_bugs(rows: list[BugRow], seeds: int, steps: int, cap: int) -> None:
    print(f"## 2. Time to first bug: run_once(kernel, derive(seed, i), steps={steps}, ...), "
          f"i = 0, 1, ... until a violation; seeds 0..{seeds - 1}; cap {cap:,} runs per seed")
    print()
    print("Cells are median [min–max] over the seeds; time excludes building the kernel and "
          "shrinking.")
    print()
    print("| bug spec | faults | scheduler | found | time to bug ms | runs to bug "
          "| events to bug | violation hit (seeds) | failing run length (median) "
          "| shrunk length (median) | shrink ms (median) |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        found = [s.found for s in r.seeds]
        ok = [s for s in r.seeds if s.found]
        kinds = Counter(s.violation for s in ok)
        kinds_s = "; ".join(f"{k} ×{n}" for k, n in kinds.most_common()) or "—"
        print(f"| {r.case.label} | {r.case.faults_text} | {r.scheduler} "
              f"| {len(ok)}/{len(r.seeds)} "
              f"| {_stat([s.seconds * 1e3 for s in r.seeds], found, '.1f')} "
              f"| {_stat([s.runs for s in r.seeds], found, '.0f')} "
              f"| {_stat([s.events for s in r.seeds], found, ',.0f')} "
              f"| {kinds_s} "
              f"| {_median([s.raw_length for s in ok]):.0f} "
              f"| {_median([s.shrunk_length for s in ok]):.0f} "
              f"| {_median([s.shrink_seconds * 1e3 for s in ok]):.1f} |")
    print()


# --- 3. check on the same bugs --------------------------------------------------------------

@dataclass
class CheckRow:
    case: BugCase
    verdict: str
    violation: str
    seconds: float                # median r.seconds
    wall: float                   # median wall time of check()
    states: int
    length: int


def check_bug(case: BugCase, repeat: int) -> CheckRow:
    secs, walls = [], []
    for _ in range(repeat):
        system, _, _ = build(str(ROOT / case.spec), None, {})
        t0 = time.perf_counter()
        r = check(system, faults=case.check_faults)
        walls.append(time.perf_counter() - t0)
        secs.append(r.seconds)
    return CheckRow(case, r.verdict, _sig(r.violation) if r.violation else "—",
                    statistics.median(secs), statistics.median(walls), r.states, len(r.steps))


def print_check(rows: list[CheckRow], bugs: list[BugRow], repeat: int) -> None:
    print(f"## 3. check (BFS) on the same bug specs (median of {repeat}) vs the simulator")
    print()
    print("| bug spec | check faults | verdict | violation | search s (r.seconds) "
          "| check() wall s | states | counterexample steps | sim random: median ms to bug "
          "/ median shrunk | sim pct: median ms to bug / median shrunk |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for c in rows:
        sims = []
        for sched in SCHEDULERS:
            (b,) = [b for b in bugs if b.case is c.case and b.scheduler == sched]
            found = [s.found for s in b.seeds]
            ok = [s for s in b.seeds if s.found]
            ms = [s.seconds * 1e3 for s in b.seeds]
            med = statistics.median([m if f else float("inf") for m, f in zip(ms, found)])
            med_s = "not found" if med == float("inf") else f"{med:.1f}"
            sims.append(f"{med_s} / {_median([s.shrunk_length for s in ok]):.0f}")
        print(f"| {c.case.label} | {c.case.check_faults or 'none'} | {c.verdict} "
              f"| {c.violation} | {c.seconds:.4f} | {c.wall:.4f} | {c.states:,} | {c.length} "
              f"| {sims[0]} | {sims[1]} |")
    print()


# --- profile ---------------------------------------------------------------------------------

def profile(top: int) -> None:
    """One alternating_bit PCT campaign under cProfile: the slowest path in section 1."""
    import cProfile
    import pstats

    case = THROUGHPUT[2]
    opts = Options(steps=case.steps, rates=case.rates, scheduler="pct", pct_depth=PCT_DEPTH)
    prof = cProfile.Profile()
    prof.enable()
    c = campaign(str(ROOT / case.spec), None, case.params, seed=0, runs=400, opts=opts, jobs=1)
    prof.disable()
    print(f"## Profile: campaign({case.spec}, {case.params}, pct, {case.faults_text}, runs=400, "
          f"jobs=1) under cProfile: {c.events:,} events, {c.seconds:.2f} s (profiled)")
    print()
    print("```")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)
    print("```")


# --- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1/20 of the runs, 5 seeds, cap 300, one repeat (< 20 s)")
    p.add_argument("--seeds", type=int, help="seeds for the time to first bug (default 20)")
    p.add_argument("--cap", type=int, help="runs per seed before 'not found' (default 2000)")
    p.add_argument("--steps", type=int, default=1000,
                   help="steps per run in the time to first bug (default 1000)")
    p.add_argument("--repeat", type=int,
                   help="campaigns per throughput case, median shown (default 3)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile one alternating_bit PCT campaign (top 15 by tottime)")
    args = p.parse_args(argv)

    seeds = args.seeds or (5 if args.quick else 20)
    cap = args.cap or (300 if args.quick else 2000)
    repeat = max(1, args.repeat or (1 if args.quick else 3))
    scale = 20 if args.quick else 1
    started = time.perf_counter()

    cmd = "python tests/benchmarks/bench_simulator.py" + (" " + " ".join(sys.argv[1:])
                                                          if sys.argv[1:] else "")
    print(f"# Simulator benchmark: `{cmd}`")
    print()
    for line in machine_lines():
        print(f"- {line}")
    print()

    rows = []
    for case in THROUGHPUT:
        for sched in SCHEDULERS:
            runs = max(1, case.runs[sched] // scale)
            rows.append(throughput(case, sched, runs, repeat))
            print(f"  throughput {case.label:28s} {sched:6s} {rows[-1].seconds:6.2f} s "
                  f"{rows[-1].rate:10,.0f} ev/s", file=sys.stderr)
    print_throughput(rows, repeat)

    bugs: list[BugRow] = []
    checks: list[CheckRow] = []
    for bcase in BUGS:
        bugs += time_to_bug(bcase, seeds, args.steps, cap)
        print(f"  first bug  {bcase.label} done", file=sys.stderr)
        checks.append(check_bug(bcase, 1 if args.quick else 5))
    print_bugs(bugs, seeds, args.steps, cap)
    print_check(checks, bugs, 1 if args.quick else 5)

    if args.profile:
        profile(15)
        print()
    print(f"total wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
