"""Benchmark: assay checking the TLA+ TwoPhase spec against a plain hand-written Python BFS.

What it measures
    For each number of resource managers (RMs), the wall-clock time and the peak memory of

    * assay: ``build("specs/tla_twophase.py", rm_count=N)`` then ``check(system)`` (BFS), timed
      together with ``time.perf_counter``, so kernel construction is included;
    * handwritten: ``handwritten_twophase.bfs(N)``, the same protocol explored with tuples,
      frozensets and one set of seen states, no framework.

    Both check the invariant TCConsistent on every new state and must find the same number of
    distinct states (TLC: 288 for 3 RMs, 8,832 for 5, 296,448 for 7).  Imports are not timed.

How
    Every run is a fresh subprocess (this script with ``--child``), so the peak RSS reported by
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` belongs to that one checker; it includes the
    interpreter and the checker's imports.  The child prints one JSON line.  Runs alternate
    assay, handwritten, assay, ... ``--repeat`` times per size; the table shows the median time
    and the largest peak RSS.  ``--profile`` also runs assay once at the largest size under
    cProfile and prints the 15 functions with the most own time (tottime).

Run it from anywhere (the repo root is found from this file's location):

    python tests/benchmarks/bench_twophase.py --sizes 5,7 --repeat 3
    python tests/benchmarks/bench_twophase.py --sizes 5,7 --repeat 3 --profile
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = ROOT / "specs" / "tla_twophase.py"
CHECKERS = ("assay", "handwritten")
KNOWN_STATES = {3: 288, 5: 8832, 7: 296448}   # TLC's distinct-state counts


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: KiB, macOS: bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --- the child: one checker, one size, one JSON line on stdout --------------------------------

def run_assay(n: int) -> dict:
    from assay.checker import check
    from assay.model.load import build

    rss_imported = _peak_rss_mib()
    start = time.perf_counter()
    system, _name, _params = build(str(SPEC), params={"rm_count": str(n)})
    result = check(system)
    seconds = time.perf_counter() - start
    assert result.verdict == "ok", f"assay verdict {result.verdict!r} ({result.reason})"
    return {"seconds": seconds, "states": result.states, "depth": result.depth,
            "transitions": result.transitions, "rss_imported_mib": rss_imported}


def run_handwritten(n: int) -> dict:
    sys.path.insert(0, str(HERE))
    from handwritten_twophase import bfs

    rss_imported = _peak_rss_mib()
    start = time.perf_counter()
    states, depth = bfs(n)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "states": states, "depth": depth,
            "rss_imported_mib": rss_imported}


def run_profile(n: int, top: int) -> None:
    """Check with assay at `n` RMs under cProfile; print the `top` functions by tottime."""
    import cProfile
    import pstats

    from assay.checker import check
    from assay.model.load import build

    profiler = cProfile.Profile()
    profiler.enable()
    system, _name, _params = build(str(SPEC), params={"rm_count": str(n)})
    result = check(system)
    profiler.disable()
    print(f"assay, {n} RMs, under cProfile: {result.states} states, "
          f"{result.transitions} transitions, {result.seconds:.2f} s (check only, profiled)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)


def child(checker: str, n: int) -> None:
    out = run_assay(n) if checker == "assay" else run_handwritten(n)
    out["maxrss_mib"] = _peak_rss_mib()
    print(json.dumps(out))


# --- the parent: spawn the runs, check they agree, print the table ---------------------------

def spawn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=ROOT,
                          capture_output=True, text=True, check=True)


def measure(checker: str, n: int) -> dict:
    proc = spawn("--child", checker, "--size", str(n))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(sizes: list[int], repeat: int) -> list[dict]:
    rows = []
    for n in sizes:
        runs: dict[str, list[dict]] = {c: [] for c in CHECKERS}
        for i in range(repeat):
            for checker in CHECKERS:
                r = measure(checker, n)
                runs[checker].append(r)
                print(f"  {n} RMs, run {i + 1}/{repeat}, {checker:11s} "
                      f"{r['seconds']:7.2f} s  {r['maxrss_mib']:7.1f} MiB  {r['states']} states",
                      file=sys.stderr)
        states = {r["states"] for c in CHECKERS for r in runs[c]}
        depths = {r["depth"] for c in CHECKERS for r in runs[c]}
        assert len(states) == 1, f"{n} RMs: the checkers disagree on the state count: {states}"
        assert len(depths) == 1, f"{n} RMs: the checkers disagree on the depth: {depths}"
        (count,) = states
        if n in KNOWN_STATES:
            assert count == KNOWN_STATES[n], f"{n} RMs: {count} states, TLC has {KNOWN_STATES[n]}"
        row = {"n": n, "states": count, "depth": depths.pop()}
        for c in CHECKERS:
            row[f"{c}_s"] = statistics.median(r["seconds"] for r in runs[c])
            row[f"{c}_mib"] = max(r["maxrss_mib"] for r in runs[c])
            row[f"{c}_imported_mib"] = max(r["rss_imported_mib"] for r in runs[c])
        rows.append(row)
    return rows


def machine() -> str:
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}")


def print_table(rows: list[dict], repeat: int) -> None:
    print(f"TwoPhase (specs/tla_twophase.py): assay vs hand-written BFS, "
          f"median of {repeat} runs, each in a fresh process")
    print(machine())
    print()
    print("| RMs | assay s | handwritten s | ratio assay/handwritten "
          "| assay peak MiB | handwritten peak MiB | states | depth |")
    print("|----:|--------:|--------------:|------------------------:"
          "|---------------:|---------------------:|-------:|------:|")
    for r in rows:
        ratio = r["assay_s"] / r["handwritten_s"]
        print(f"| {r['n']} | {r['assay_s']:.3f} | {r['handwritten_s']:.3f} | {ratio:.1f}x "
              f"| {r['assay_mib']:.1f} | {r['handwritten_mib']:.1f} "
              f"| {r['states']:,} | {r['depth']} |")
    print()
    print("Peak RSS includes the interpreter and imports; after imports, before the check: "
          + ", ".join(f"{r['n']} RMs assay {r['assay_imported_mib']:.1f} / handwritten "
                      f"{r['handwritten_imported_mib']:.1f} MiB" for r in rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="5,7", help="comma-separated RM counts (default 5,7)")
    p.add_argument("--repeat", type=int, default=3, help="runs per checker and size (default 3)")
    p.add_argument("--profile", action="store_true",
                   help="also profile assay once at the largest size (top 15 by tottime)")
    p.add_argument("--child", choices=CHECKERS + ("profile",), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child == "profile":
        run_profile(args.size, top=15)
        return
    if args.child:
        child(args.child, args.size)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print_table(bench(sizes, max(1, args.repeat)), max(1, args.repeat))
    if args.profile:
        print()
        print(spawn("--child", "profile", "--size", str(max(sizes))).stdout, end="")


if __name__ == "__main__":
    main()
