"""The checker on a realistic message-passing spec: Raft's leader election (issue 11).

What it measures
    `assay check specs/raft_election.py -p max_term=2` (3 servers, messages of old terms in
    flight until delivered: millions of states), each run a fresh child process:

    * ``unreduced``: every state, stopped at ``--max-time`` (default 60 s): states reached,
      states per second, peak RSS and bytes per state (peak RSS / states);
    * ``symmetric``: ``-p symmetric=true``, to exhaustion (1,023,884 orbits, checked):
      seconds, peak RSS, bytes per orbit;
    * ``twophase`` (not by default): specs/tla_twophase.py at 7 RMs, to exhaustion (296,448
      states), a control whose successor caches hit.

    With ``--base DIR`` (another checkout, e.g. ``git worktree add /tmp/base <commit>``) each
    case runs in both trees, alternating base and branch, ``--repeat`` times, and prints the
    medians and the ratios branch / base measured in the same run (the machine is noisy).

How
    python tests/benchmarks/bench_raft.py                               # this tree only
    python tests/benchmarks/bench_raft.py --base /tmp/base --repeat 3
    python tests/benchmarks/bench_raft.py --cases unreduced --max-time 30
    python tests/benchmarks/bench_raft.py --base /tmp/base --cases twophase --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_whole_state import run_timed  # noqa: E402  (a script beside this one)

ROOT = Path(__file__).resolve().parents[2]
SPEC = "specs/raft_election.py"
ORBITS = 1_023_884          # max_term=2, 3 servers, symmetric (RESULTS.md)
MIB = 1024 * 1024


def run_check(tree: Path, args: list[str], max_time: float) -> dict:
    """One `assay check` in `tree` (its own package first on the path): the JSON's counts,
    the child's wall and CPU seconds and peak RSS (`os.wait4`)."""
    argv = [sys.executable, "-m", "assay.cli", "check", *args,
            "--max-time", str(max_time), "--json", "-q"]
    text, wall, cpu, rss = run_timed(argv, tree, {**os.environ, "PYTHONPATH": str(tree)})
    r = json.loads(text)
    return {"states": r["states"], "seconds": r["seconds"], "reason": r["reason"],
            "verdict": r["verdict"], "depth": r["depth"], "wall": wall, "cpu": cpu, "rss": rss}


RAFT = [SPEC, "-p", "max_term=2"]
CASES = {
    "unreduced": (RAFT, "states/s"),
    "symmetric": ([*RAFT, "-p", "symmetric=true"], "seconds"),
    # a control: a spec whose successor caches hit (not slower, please)
    "twophase": (["specs/tla_twophase.py", "-p", "rm_count=7"], "seconds"),
}
KNOWN = {"symmetric": ORBITS, "twophase": 296_448}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, help="another checkout to compare with, alternating")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-time", type=float, default=60.0,
                    help="the unreduced search's time bound (seconds)")
    ap.add_argument("--sym-max-time", type=float, default=600.0,
                    help="the symmetric search's time bound (seconds; it should exhaust)")
    ap.add_argument("--cases", default="unreduced,symmetric")
    args = ap.parse_args()
    trees = [("branch", ROOT)] + ([("base", args.base.resolve())] if args.base else [])
    print(f"load: {os.getloadavg()[0]:.2f} (1 min); python {sys.version.split()[0]}")
    for case in args.cases.split(","):
        args_, figure = CASES[case]
        bound = args.max_time if case == "unreduced" else args.sym_max_time
        runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
        for i in range(args.repeat):
            order = trees if i % 2 == 0 else trees[::-1]
            for name, tree in order:
                r = run_check(tree, args_, bound)
                if r["reason"] == "exhausted" and r["states"] != KNOWN.get(case, r["states"]):
                    raise SystemExit(f"{name}: {r['states']:,} states, expected {KNOWN[case]:,}")
                runs[name].append(r)
                print(f"  {case:9s} {name:6s} run {i + 1}/{args.repeat}: {r['states']:>10,} "
                      f"states, {r['seconds']:7.2f} s ({r['states'] / r['seconds']:,.0f}/s; "
                      f"cpu {r['cpu']:.1f} s), {r['rss'] / MIB:7.1f} MiB peak "
                      f"({r['rss'] / r['states']:,.0f} B/state), {r['reason']}, "
                      f"depth {r['depth']}", flush=True)
        med: dict[str, dict[str, float]] = {}
        for name, rs in runs.items():
            med[name] = {
                "rate": statistics.median(r["states"] / r["seconds"] for r in rs),
                "cpu_rate": statistics.median(r["states"] / r["cpu"] for r in rs),
                "cpu": statistics.median(r["cpu"] for r in rs),
                "seconds": statistics.median(r["seconds"] for r in rs),
                "bps": statistics.median(r["rss"] / r["states"] for r in rs),
                "rss": max(r["rss"] for r in rs)}
            m = med[name]
            print(f"{case} {name}: median {m['rate']:,.0f} states/s ({m['cpu_rate']:,.0f} a "
                  f"CPU second of the process), {m['seconds']:.2f} s (cpu {m['cpu']:.1f} s), "
                  f"{m['bps']:,.0f} B/state, peak {m['rss'] / MIB:.0f} MiB")
        if "base" in med:
            b, n = med["base"], med["branch"]
            speed = n["rate"] / b["rate"] if figure == "states/s" else b["seconds"] / n["seconds"]
            cpu = n["cpu_rate"] / b["cpu_rate"] if figure == "states/s" else b["cpu"] / n["cpu"]
            print(f"{case} branch/base: speed {speed:.2f}x ({figure}; {cpu:.2f}x in CPU time), "
                  f"bytes/state {n['bps'] / b['bps']:.2f}x")


if __name__ == "__main__":
    main()
