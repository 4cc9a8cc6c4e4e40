"""`check --workers`: states/s of one worker against N, in the same run (issue 11, item 4).

Each case is run as `assay check ... --json -q` in a fresh process, alternating the numbers
of workers (1, N, 1, N, ...), so a load that comes and goes hits both; the table gives the
median states/s of each, their ratio, and the CPU seconds of the whole process tree (the
driver and its workers, as `os.times` counts reaped children), whose ratio says what the
parallel search costs in all:
on an idle machine with N free cores the speed-up is about N / (that ratio).

    python tests/benchmarks/bench_workers.py                       # TwoPhase 7 RMs, Lamport 3:4
    python tests/benchmarks/bench_workers.py --repeat 3 --workers 2
    python tests/benchmarks/bench_workers.py --case lamport:3:3    # one case, quick
    python tests/benchmarks/bench_workers.py --repeat 3 --case twophase:9 --case lamport:3:5
    python tests/benchmarks/bench_workers.py --workers auto --case twophase:8  # the default
    python tests/benchmarks/bench_workers.py --case raft:4 --repo /tmp/base  # another checkout

The speed-up is of states/s as `check` reports it (its own seconds, the workers' start
included); "wall" is the whole command's, process start and spec loading included.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TREE = REPO                     # the checkout whose assay runs (`--repo`)
CASES = {
    "twophase": ("specs/tla_twophase.py", ("rm_count",)),
    "lamport": ("specs/tla_lamport_mutex.py", ("n", "max_clock")),
    "paxos": ("specs/tla_paxos_commit.py", ("rm_count", "acceptors", "ballots")),
    "raft": ("specs/raft_election.py", ("servers",)),
}


def run(spec: str, params: dict[str, str], workers: str) -> dict[str, float]:
    args = [sys.executable, "-m", "assay.cli", "check", spec, "--json", "-q",
            "--workers", str(workers), "--no-symmetry"]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(TREE)})
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)}: exit {proc.returncode}\n{err.decode()}")
    doc = json.loads(out)
    return {"states": doc["states"], "transitions": doc["transitions"], "depth": doc["depth"],
            "seconds": doc["seconds"], "wall": wall, "workers": doc["workers"],
            "rate": doc["states"] / doc["seconds"]}


def cpu_of(spec: str, params: dict[str, str], workers: str) -> tuple[dict[str, float], float]:
    """One run, and the CPU seconds of its process tree (children reaped by it included)."""
    before = os.times()
    r = run(spec, params, workers)
    after = os.times()
    cpu = (after.children_user - before.children_user) + \
        (after.children_system - before.children_system)
    return r, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", action="append",
                   help="NAME:P1:P2... e.g. twophase:7, lamport:3:4 (repeatable)")
    p.add_argument("--workers", default="2", help="N, or auto (the command's default)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--repo", type=Path, default=REPO,
                   help="run the assay of this checkout (a base to compare with)")
    args = p.parse_args()
    global TREE
    TREE = args.repo.resolve()
    cases = args.case or ["twophase:7", "lamport:3:4"]
    print(f"# {TREE}: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, nproc "
          f"{os.cpu_count()}, load {os.getloadavg()}")
    print("| case | states | transitions | 1 worker states/s | "
          f"{args.workers} workers states/s | speed-up | wall s 1 | wall s {args.workers} | "
          f"wall speed-up | CPU s 1 | CPU s {args.workers} | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        name, *values = case.split(":")
        spec, names = CASES[name]
        params = dict(zip(names, values))
        rates: dict[str, list[float]] = {"1": [], args.workers: []}
        cpus: dict[str, list[float]] = {"1": [], args.workers: []}
        walls: dict[str, list[float]] = {"1": [], args.workers: []}
        counts = set()
        for _ in range(args.repeat):
            for w in ("1", args.workers):
                r, cpu = cpu_of(spec, params, w)
                assert w == "auto" or r["workers"] == int(w), r
                counts.add((r["states"], r["transitions"], r["depth"]))
                rates[w].append(r["rate"])
                walls[w].append(r["wall"])
                cpus[w].append(cpu)
                print(f"  {case} workers={w} ({r['workers']:.0f} ran): {r['states']:,} states "
                      f"in {r['seconds']:.2f} s "
                      f"({r['rate']:,.0f}/s), CPU {cpu:.2f} s, load {os.getloadavg()[0]:.2f}",
                      file=sys.stderr, flush=True)
        assert len(counts) == 1, f"counts differ: {counts}"
        (states, transitions, _), = counts
        one, many = statistics.median(rates["1"]), statistics.median(rates[args.workers])
        c1, cn = statistics.median(cpus["1"]), statistics.median(cpus[args.workers])
        w1, wn = statistics.median(walls["1"]), statistics.median(walls[args.workers])
        print(f"| {case} | {states:,} | {transitions:,} | {one:,.0f} | {many:,.0f} | "
              f"**{many / one:.2f}x** | {w1:.1f} | {wn:.1f} | {w1 / wn:.2f}x | {c1:.1f} | "
              f"{cn:.1f} | {cn / c1:.2f} |", flush=True)
    print(f"# load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
