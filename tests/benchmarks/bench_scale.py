"""Scale baselines (issue 11): `assay check` against SPIN on TwoPhase, and on whole-state specs.

What it measures
    TwoPhase (default mode): for each number of RMs N, in the same run, alternating,

    * assay: ``python -m assay check specs/tla_twophase.py -p rm_count=N --json -q``
      (a fresh process; BFS; `--max-time`, `--max-memory` bound it);
    * SPIN: ``tests/benchmarks/twophase.pml`` (the same protocol, see its header) compiled
      once per N with ``spin -DN=N -a`` and ``gcc -O2 -DSAFETY -DNOREDUCE -DNOCLAIM`` (plus
      ``-DCOLLAPSE`` with ``--collapse``): a plain exhaustive safety search, every state
      stored, no partial-order reduction; run as ``./pan -m100000 -wW`` with W = 2N+6
      (2^W = 64 * 4^N hash slots, W within [16, 28]) unless ``--pan-w`` says.

    and prints for each: distinct states (both must agree: the script stops if they do not),
    seconds, peak RSS (``ru_maxrss`` of the child, from ``os.wait4``), bytes per state
    (peak RSS / states), and the ratios assay/SPIN.  assay's seconds are its search
    (``seconds`` of the JSON: the BFS, the kernel built lazily during it) and, apart, the
    whole process (interpreter, imports, loading the spec); SPIN's are the ``./pan`` process,
    its compile time apart.

    Whole-state (``--whole-state``): `assay check` on specs/tla_lamport_mutex.py and
    specs/tla_paxos_commit.py at the sizes given, with states, seconds, states/s, peak RSS
    and bytes/state; a run the time bound stops is reported as incomplete, with its rate.

How
    Every run is its own child process; the table shows the median time and the largest
    peak RSS over ``--repeat`` runs.  Known state counts (TLC's, or a hand-written BFS of
    the TLA+ actions: see the specs' docstrings) are checked when a search is exhausted.

    python tests/benchmarks/bench_scale.py --sizes 5,7,8,9 --max-time 600
    python tests/benchmarks/bench_scale.py --sizes 9 --spin-only
    python tests/benchmarks/bench_scale.py --whole-state --max-time 600
    python tests/benchmarks/bench_scale.py --whole-state --lamport 3:4 --paxos 1:3:3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PML = HERE / "twophase.pml"
TWOPHASE = "specs/tla_twophase.py"
LAMPORT = "specs/tla_lamport_mutex.py"
PAXOS = "specs/tla_paxos_commit.py"
SPIN_FLAGS = ["-O2", "-DSAFETY", "-DNOREDUCE", "-DNOCLAIM", "-DMEMLIM=20000"]
# distinct states: TLC's (tlaplus/Examples) for TwoPhase 3/5/7 RMs, LamportMutex (3, 6) and
# PaxosCommit (2, 3, 2); SPIN's for 9 RMs; the others a hand-written BFS of the TLA+ actions
KNOWN = {
    (TWOPHASE, (3,)): 288, (TWOPHASE, (5,)): 8832, (TWOPHASE, (7,)): 296448,
    (TWOPHASE, (9,)): 10340352,
    (LAMPORT, (2, 3)): 191, (LAMPORT, (2, 5)): 685, (LAMPORT, (3, 3)): 10209,
    (LAMPORT, (3, 4)): 70472, (LAMPORT, (3, 5)): 270115, (LAMPORT, (3, 6)): 724274,
    (PAXOS, (1, 3, 2)): 1461, (PAXOS, (2, 3, 1)): 545, (PAXOS, (1, 3, 3)): 66893,
    (PAXOS, (2, 3, 2)): 1321761,
}
PARAMS = {LAMPORT: ("n", "max_clock"), PAXOS: ("rm_count", "acceptors", "ballots"),
          TWOPHASE: ("rm_count",)}
MIB = 1024 * 1024


def run_child(argv: list[str], cwd: Path | str = ROOT) -> tuple[str, str, int, float, int]:
    """Run `argv`; (stdout, stderr, exit code, wall seconds, peak RSS in bytes) of that one
    child, its peak RSS from `os.wait4` (Linux reports KiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        scale = 1 if sys.platform == "darwin" else 1024
        _CPU[0] = usage.ru_utime + usage.ru_stime
        return out.read(), err.read(), proc.returncode, seconds, usage.ru_maxrss * scale


# CPU seconds (user + system) of the last child: on a loaded machine a fairer ratio than wall
# time (printed with each run)
_CPU = [0.0]


# --- assay --------------------------------------------------------------------------------

def run_assay(spec: str, values: tuple[int, ...], max_time: float, max_memory: str) -> dict:
    argv = [sys.executable, "-m", "assay", "check", spec, "--json", "-q",
            "--max-time", str(max_time), "--max-memory", max_memory]
    for name, v in zip(PARAMS[spec], values):
        argv += ["-p", f"{name}={v}"]
    out, err, code, wall, rss = run_child(argv)
    if code not in (0, 3):
        raise SystemExit(f"assay check failed (exit {code}): {' '.join(argv)}\n{out}{err}")
    r = json.loads(out)
    return {"states": r["states"], "transitions": r["transitions"], "depth": r["depth"],
            "seconds": r["seconds"], "wall": wall, "rss": rss, "reason": r["reason"],
            "verdict": r["verdict"], "cpu": _CPU[0]}


# --- SPIN ---------------------------------------------------------------------------------

def spin_available() -> bool:
    return shutil.which("spin") is not None and shutil.which("gcc") is not None


def compile_pan(n: int, workdir: Path, collapse: bool) -> float:
    """Generate and compile the verifier for N RMs in `workdir`; returns the seconds taken."""
    shutil.copy(PML, workdir / "twophase.pml")
    start = time.perf_counter()
    subprocess.run(["spin", f"-DN={n}", "-a", "twophase.pml"], cwd=workdir, check=True,
                   capture_output=True)
    flags = SPIN_FLAGS + (["-DCOLLAPSE"] if collapse else [])
    subprocess.run(["gcc", *flags, "-o", "pan", "pan.c"], cwd=workdir, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def run_pan(workdir: Path, w: int) -> dict:
    out, err, code, wall, rss = run_child(["./pan", "-m100000", f"-w{w}"], cwd=workdir)
    stored = re.search(r"(\d+) states, stored", out)
    errors = re.search(r"errors: (\d+)", out)
    if code != 0 or stored is None or errors is None or errors.group(1) != "0" \
            or "Search not completed" in out:
        raise SystemExit(f"pan failed (exit {code}):\n{out}{err}")
    matched = re.search(r"([\d.e+]+) states, matched", out)
    memory = re.search(r"([\d.]+)\s+total actual memory usage", out)
    vector = re.search(r"State-vector (\d+) byte", out)
    return {"states": int(stored.group(1)), "seconds": wall, "wall": wall, "rss": rss,
            "cpu": _CPU[0],
            "matched": int(float(matched.group(1))) if matched else None,
            "pan_mib": float(memory.group(1)) if memory else None,
            "vector": int(vector.group(1)) if vector else None}


def assay_baseline(max_memory: str) -> int:
    """Peak RSS of `assay check` on TwoPhase with one RM (4 states): the interpreter, the
    imports and a kernel; subtracted for the "net" bytes per state."""
    return run_assay(TWOPHASE, (1,), 60, max_memory)["rss"]


def hash_bits(n: int) -> int:
    return max(16, min(28, 2 * n + 6))


# --- the two modes ------------------------------------------------------------------------

def bench_twophase(sizes: list[int], repeat: int, max_time: float, max_memory: str,
                   collapse: bool, pan_w: int | None, spin_only: bool) -> list[dict]:
    have_spin = spin_available()
    if not have_spin:
        print("spin or gcc not found (apt-get install spin gcc): assay only", file=sys.stderr)
    rows = []
    base = 0 if spin_only else assay_baseline(max_memory)
    for n in sizes:
        runs: dict[str, list[dict]] = {"assay": [], "spin": []}
        with tempfile.TemporaryDirectory(prefix="bench_scale_pan_") as tmp:
            compile_s = compile_pan(n, Path(tmp), collapse) if have_spin else None
            w = pan_w or hash_bits(n)
            for i in range(repeat):
                order = ("assay", "spin") if i % 2 == 0 else ("spin", "assay")
                for who in order:
                    if who == "assay" and spin_only or who == "spin" and not have_spin:
                        continue
                    r = run_assay(TWOPHASE, (n,), max_time, max_memory) if who == "assay" \
                        else run_pan(Path(tmp), w)
                    runs[who].append(r)
                    print(f"  {n} RMs, run {i + 1}/{repeat}, {who:5s} {r['seconds']:8.2f} s "
                          f"(cpu {r['cpu']:7.2f} s) "
                          f"{r['rss'] / MIB:8.1f} MiB {r['states']:>11,} states"
                          + (f" ({r['reason']})" if who == "assay" else ""), file=sys.stderr)
        row: dict[str, Any] = {"n": n, "compile_s": compile_s, "w": w}
        for who, rs in runs.items():
            if not rs:
                row[who] = None
                continue
            best = dict(rs[0])
            best["seconds"] = statistics.median(r["seconds"] for r in rs)
            best["wall"] = statistics.median(r["wall"] for r in rs)
            best["rss"] = max(r["rss"] for r in rs)
            best["base"] = base if who == "assay" else 0
            row[who] = best
        a, s = row["assay"], row["spin"]
        known = KNOWN.get((TWOPHASE, (n,)))
        for who, r in (("assay", a), ("spin", s)):
            if r is None or who == "assay" and r["reason"] != "exhausted":
                continue
            if known is not None and r["states"] != known:
                raise SystemExit(f"{n} RMs: {who} found {r['states']:,} states, "
                                 f"expected {known:,}")
        if a is not None and s is not None and a["reason"] == "exhausted" \
                and a["states"] != s["states"]:
            raise SystemExit(f"{n} RMs: assay {a['states']:,} states, SPIN {s['states']:,}")
        rows.append(row)
    return rows


def bench_whole_state(cases: list[tuple[str, tuple[int, ...]]], repeat: int, max_time: float,
                      max_memory: str) -> list[dict]:
    rows = []
    base = assay_baseline(max_memory)
    for spec, values in cases:
        rs = []
        for i in range(repeat):
            r = run_assay(spec, values, max_time, max_memory)
            rs.append(r)
            print(f"  {Path(spec).stem} {values}, run {i + 1}/{repeat}: {r['seconds']:8.2f} s "
                  f"{r['rss'] / MIB:8.1f} MiB {r['states']:>10,} states ({r['reason']})",
                  file=sys.stderr)
        row = dict(rs[0])
        row["seconds"] = statistics.median(r["seconds"] for r in rs)
        row["wall"] = statistics.median(r["wall"] for r in rs)
        row["rss"] = max(r["rss"] for r in rs)
        row["base"] = base
        row["spec"], row["values"] = spec, values
        known = KNOWN.get((spec, values))
        if row["reason"] == "exhausted" and known is not None and row["states"] != known:
            raise SystemExit(f"{spec} {values}: {row['states']:,} states, expected {known:,}")
        row["known"] = known
        rows.append(row)
    return rows


# --- printing -----------------------------------------------------------------------------

def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.machine()}, nproc {os.cpu_count()}, {platform.system()} "
            f"{platform.release()}, load average {load}")


def spin_version() -> str:
    if not spin_available():
        return "SPIN: not installed"
    v = subprocess.run(["spin", "-V"], capture_output=True, text=True).stdout.strip()
    g = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    return f"{v}; {g.splitlines()[0]}"


def _bps(r: dict) -> str:
    return f"{r['rss'] / r['states']:,.0f}" if r["states"] else "-"


def _net(r: dict) -> str:
    """Bytes per state above the baseline process (assay: see `assay_baseline`)."""
    return f"{(r['rss'] - r['base']) / r['states']:,.0f}" if r["states"] else "-"


def print_twophase(rows: list[dict], repeat: int, collapse: bool) -> None:
    flags = " ".join(SPIN_FLAGS + (["-DCOLLAPSE"] if collapse else []))
    print(f"TwoPhase (specs/tla_twophase.py, tests/benchmarks/twophase.pml): assay vs SPIN, "
          f"median of {repeat}, each run a fresh process")
    print(machine())
    print(spin_version())
    print(f"SPIN: spin -DN=<RMs> -a twophase.pml; gcc {flags} -o pan pan.c; "
          "./pan -m100000 -w<W>")
    print()
    print("| RMs | states (assay) | states (SPIN) | assay search s | assay process s | SPIN s "
          "| time assay/SPIN | assay peak MiB | SPIN peak MiB | memory assay/SPIN "
          "| assay B/state | assay net B/state | SPIN B/state | assay states/s "
          "| SPIN states/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        a, s = row["assay"], row["spin"]
        cells = [str(row["n"])]
        if a is not None:
            note = "" if a["reason"] == "exhausted" else f" ({a['reason']})"
            cells += [f"{a['states']:,}{note}"]
        else:
            cells += ["not run"]
        cells += [f"{s['states']:,}" if s else "-"]
        cells += [f"{a['seconds']:.2f}", f"{a['wall']:.2f}"] if a else ["-", "-"]
        cells += [f"{s['seconds']:.2f}" if s else "-"]
        cells += [f"{a['seconds'] / s['seconds']:.1f}x" if a and s
                  and a["reason"] == "exhausted" else "-"]
        cells += [f"{a['rss'] / MIB:,.0f}" if a else "-", f"{s['rss'] / MIB:,.0f}" if s else "-"]
        cells += [f"{a['rss'] / s['rss']:.1f}x" if a and s and a["reason"] == "exhausted"
                  else "-"]
        cells += [_bps(a) if a else "-", _net(a) if a else "-", _bps(s) if s else "-"]
        cells += [f"{a['states'] / a['seconds']:,.0f}" if a else "-",
                  f"{s['states'] / s['seconds']:,.0f}" if s else "-"]
        print("| " + " | ".join(cells) + " |")
    print()
    for row in rows:
        s = row["spin"]
        if s is not None:
            print(f"{row['n']} RMs, SPIN: -w{row['w']}, state vector {s['vector']} bytes, "
                  f"pan's own memory report {s['pan_mib']} MiB, {s['matched']:,} states "
                  f"matched, compile {row['compile_s']:.1f} s")


def print_whole_state(rows: list[dict], repeat: int) -> None:
    print(f"Whole-state specs: assay check, median of {repeat}, each run a fresh process")
    print(machine())
    print()
    print("| spec | parameters | states | expected | stopped | search s | process s "
          "| states/s | peak MiB | B/state | net B/state | depth |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in zip(PARAMS[r["spec"]], r["values"]))
        known = f"{r['known']:,}" if r["known"] is not None else "-"
        rate = r["states"] / r["seconds"] if r["seconds"] else 0.0
        print(f"| {Path(r['spec']).stem} | {params} | {r['states']:,} | {known} | {r['reason']} "
              f"| {r['seconds']:.1f} | {r['wall']:.1f} | {rate:,.0f} | {r['rss'] / MIB:,.0f} "
              f"| {_bps(r)} | {_net(r)} | {r['depth']} |")


def _cases(text: str, spec: str, arity: int) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for item in text.split(","):
        if item.strip():
            values = tuple(int(x) for x in item.split(":"))
            if len(values) != arity:
                raise SystemExit(f"{item!r}: give {arity} numbers separated by ':'")
            out.append((spec, values))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="5,7,8", help="TwoPhase RM counts (default 5,7,8)")
    p.add_argument("--repeat", type=int, default=1, help="runs per checker and size")
    p.add_argument("--max-time", type=float, default=600.0,
                   help="assay's --max-time per run (default 600 s)")
    p.add_argument("--max-memory", default="16G", help="assay's --max-memory (default 16G)")
    p.add_argument("--collapse", action="store_true", help="compile pan with -DCOLLAPSE")
    p.add_argument("--pan-w", type=int, help="pan's -w (log2 of hash table slots)")
    p.add_argument("--spin-only", action="store_true", help="TwoPhase: run SPIN only")
    p.add_argument("--whole-state", action="store_true",
                   help="run the whole-state specs instead of TwoPhase")
    p.add_argument("--lamport", default="2:5,3:4,3:5,3:6",
                   help="LamportMutex sizes n:max_clock (default 2:5,3:4,3:5,3:6)")
    p.add_argument("--paxos", default="1:3:2,1:3:3,2:3:2",
                   help="PaxosCommit sizes rm_count:acceptors:ballots "
                        "(default 1:3:2,1:3:3,2:3:2)")
    args = p.parse_args(argv)
    repeat = max(1, args.repeat)
    if args.whole_state:
        cases = _cases(args.lamport, LAMPORT, 2) + _cases(args.paxos, PAXOS, 3)
        print_whole_state(bench_whole_state(cases, repeat, args.max_time, args.max_memory),
                          repeat)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = bench_twophase(sizes, repeat, args.max_time, args.max_memory, args.collapse,
                          args.pan_w, args.spin_only)
    print_twophase(rows, repeat, args.collapse)


if __name__ == "__main__":
    main()
