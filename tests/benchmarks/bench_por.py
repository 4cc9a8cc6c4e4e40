"""Benchmark: partial-order reduction (`check --por`) against the full search, and SPIN's.

What it measures
    For each (spec, parameters): `check()` in a fresh subprocess three ways — `por=True`
    (the reduced breadth-first search; it keeps full states), `full_states=True` (the same
    search loop unreduced, `bfs.py`: the like-for-like peer) and the default compact search.
    Printed: states (of the reduced graph with POR), seconds of `check()` (kernel
    construction included, not the interpreter's start), the verdict, and whether POR was
    applied (if not, why). With `--spin`, SPIN on tests/benchmarks/twophase.pml with its POR
    (the default) and without (`-DNOREDUCE`): states stored, and the seconds pan reports.

Run from the repository root:

    python tests/benchmarks/bench_por.py
    python tests/benchmarks/bench_por.py --spin
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    ("specs/tla_twophase.py", {"rm_count": "5"}),
    ("specs/tla_twophase.py", {"rm_count": "7"}),
    ("specs/two_phase_commit.py", {"rm_count": "3"}),
    ("specs/two_phase_commit.py", {"rm_count": "5"}),
    ("specs/two_phase_commit_bug_majority.py", {}),
    ("specs/paxos.py", {}),
    ("specs/paxos_bug_own_value.py", {}),
    ("specs/ring_election.py", {}),
    ("tests/fixtures/por/sensors.py", {"sensors": "5", "ticks": "3"}),
    ("tests/fixtures/por/sensors.py", {"sensors": "6", "ticks": "3"}),
    ("tests/fixtures/por/sensors.py", {"sensors": "6", "ticks": "3", "bug": "true"}),
]

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from assay.model.load import build
from assay.checker import check
system, _, _ = build({spec!r}, None, {params!r})
t = time.perf_counter()
r = check(system, symmetry=False, **{kw!r})
s = time.perf_counter() - t
print(json.dumps({{"states": r.states, "transitions": r.transitions, "seconds": s,
                  "verdict": r.verdict, "por": r.por, "length": len(r.steps)}}))
"""


def run(spec: str, params: dict[str, str], kw: dict, timeout: float) -> dict | None:
    code = CHILD.format(root=str(ROOT), spec=str(ROOT / spec), params=params, kw=kw)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout)


def spin(n: int, reduce: bool, timeout: float) -> tuple[int, float] | None:
    """SPIN on twophase.pml with N RMs: (states stored, pan's elapsed seconds)."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(ROOT / "tests/benchmarks/twophase.pml", d)
        subprocess.run(["spin", f"-DN={n}", "-a", "twophase.pml"], cwd=d, check=True,
                       capture_output=True)
        flags = ["-O2", "-DSAFETY", "-DMEMLIM=4096"] + ([] if reduce else ["-DNOREDUCE"])
        subprocess.run(["gcc", *flags, "-o", "pan", "pan.c"], cwd=d, check=True,
                       capture_output=True)
        try:
            out = subprocess.run(["./pan", "-m100000"], cwd=d, capture_output=True, text=True,
                                 timeout=timeout).stdout
        except subprocess.TimeoutExpired:
            return None
    m = re.search(r"([\d.e+]+) states, stored", out)
    if m is None:
        raise RuntimeError(f"pan's output has no state count:\n{out}")
    states = int(float(m.group(1)))
    secs = re.search(r"elapsed time ([\d.e+-]+) seconds", out)
    return states, float(secs.group(1)) if secs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--spin", action="store_true", help="also SPIN on twophase.pml")
    a = ap.parse_args()
    print("| spec | params | POR states | full states | POR s | full-states s | compact s "
          "| verdict | cex length POR/full | POR |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
    for spec, params in CASES:
        red = run(spec, params, {"por": True}, a.timeout)
        full = run(spec, params, {"full_states": True}, a.timeout)
        compact = run(spec, params, {}, a.timeout)
        if red is None or full is None or compact is None:
            print(f"| {spec} | {params} | timeout > {a.timeout:.0f} s |", flush=True)
            continue
        por = red["por"]
        note = "applied" if por["applied"] else f"not applied: {por['why']}"
        ps = ",".join(f"{k}={v}" for k, v in params.items()) or "—"
        print(f"| {Path(spec).stem} | {ps} | {red['states']:,} | {full['states']:,} | "
              f"{red['seconds']:.2f} | {full['seconds']:.2f} | {compact['seconds']:.2f} | "
              f"{red['verdict']} | {red['length']}/{full['length']} | {note} |", flush=True)
    if a.spin:
        if shutil.which("spin") is None:
            print("spin is not installed: SPIN not measured")
            return
        print()
        print("| twophase.pml RMs | SPIN POR states | SPIN -DNOREDUCE states | POR s | "
              "NOREDUCE s |")
        print("|---:|---:|---:|---:|---:|")
        for n in (5, 7):
            on, off = spin(n, True, a.timeout), spin(n, False, a.timeout)
            if on is None or off is None:
                print(f"| {n} | timeout |")
                continue
            print(f"| {n} | {on[0]:,} | {off[0]:,} | {on[1]:.2f} | {off[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
