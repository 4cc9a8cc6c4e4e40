"""Whole-state specs: `assay check` against a hand-written BFS of the same TLA+ actions, in the
same run (issue 11: "a component holding all shared variables must not run 20x slower").

For each case, alternating, each a fresh child process:

* assay: ``python -m assay check <spec> -p ... --json -q --max-time T`` (`bench_scale.run_assay`:
  states, search seconds, peak RSS of the child);
* hand: ``python tests/benchmarks/handwritten_whole_state.py lamport|paxos ...`` (plain Python:
  tuples, frozensets, a set of seen states; wall seconds of the child, peak RSS).

It prints states/s of both (assay's over its search seconds, the hand-written BFS's over its
own timing of its search), their ratio, and assay's bytes per state (peak RSS / states, and
above a one-RM TwoPhase process: "net").  A run the time bound stops is marked, its rate
stands.  The same rates per CPU second of each child (user + sys, from `os.wait4`, the whole
process) are in parentheses: on a shared machine they vary less than wall time.

    python tests/benchmarks/bench_whole_state.py --lamport 3:4 --paxos 1:3:3
    python tests/benchmarks/bench_whole_state.py --lamport 3:6 --paxos 2:3:2 --max-time 150
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import (  # noqa: E402  (a script beside this one)
    KNOWN,
    LAMPORT,
    MIB,
    PARAMS,
    PAXOS,
    ROOT,
    _cases,
    assay_baseline,
    machine,
)

HAND = Path(__file__).resolve().parent / "handwritten_whole_state.py"


def run_timed(argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
              ) -> tuple[str, float, float, int]:
    """(stdout, wall s, CPU s, peak RSS bytes) of one child in `cwd`; exits on failure
    (exit 3, a bound reached, is not one)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if code not in (0, 3):
            raise SystemExit(f"failed (exit {code}): {' '.join(argv)}\n{text}{err.read()}")
        scale = 1 if sys.platform == "darwin" else 1024
        return text, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * scale


def run_assay(spec: str, values: tuple[int, ...], max_time: float) -> dict:
    import json

    argv = [sys.executable, "-m", "assay", "check", spec, "--json", "-q",
            "--max-time", str(max_time)]
    for name, v in zip(PARAMS[spec], values):
        argv += ["-p", f"{name}={v}"]
    out, wall, cpu, rss = run_timed(argv)
    r = json.loads(out)
    return {"states": r["states"], "seconds": r["seconds"], "reason": r["reason"],
            "wall": wall, "cpu": cpu, "rss": rss}


def run_hand(spec: str, values: tuple[int, ...]) -> dict:
    which = "lamport" if spec == LAMPORT else "paxos"
    out, wall, cpu, rss = run_timed([sys.executable, str(HAND), which,
                                     *(str(v) for v in values)])
    m = re.search(r": ([\d,]+) states, depth \d+, [\d.]+ s, ([\d,]+) states/s", out)
    if m is None:
        raise SystemExit(f"unexpected output of {HAND.name}: {out}")
    states, rate = (int(g.replace(",", "")) for g in m.groups())
    return {"states": states, "seconds": states / max(rate, 1), "wall": wall, "cpu": cpu,
            "rss": rss}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lamport", default="3:4", help="n:max_clock cases (default 3:4)")
    p.add_argument("--paxos", default="1:3:3",
                   help="rm_count:acceptors:ballots cases (default 1:3:3)")
    p.add_argument("--max-time", type=float, default=600.0, help="assay's --max-time")
    args = p.parse_args(argv)
    cases = _cases(args.lamport, LAMPORT, 2) + _cases(args.paxos, PAXOS, 3)
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "| load",
          " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(machine())
    base = assay_baseline("16G")
    print("| spec | parameters | states | stopped | assay search s (CPU s) | assay states/s "
          "(per CPU s) | hand s (CPU s) | hand states/s (per CPU s) | ratio (CPU) "
          "| assay peak MiB | B/state (net) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec, values in cases:
        a = run_assay(spec, values, args.max_time)
        h = run_hand(spec, values)
        known = KNOWN.get((spec, values))
        if a["reason"] == "exhausted" and a["states"] != h["states"]:
            raise SystemExit(f"{spec} {values}: assay {a['states']} states, hand-written BFS "
                             f"{h['states']}")
        if known is not None and h["states"] != known:
            raise SystemExit(f"{spec} {values}: hand-written BFS {h['states']}, known {known}")
        ar, hr = a["states"] / a["seconds"], h["states"] / h["seconds"]
        ac, hc = a["states"] / a["cpu"], h["states"] / h["cpu"]
        params = ", ".join(f"{k}={v}" for k, v in zip(PARAMS[spec], values))
        print(f"| {Path(spec).stem} | {params} | {a['states']:,} | {a['reason']} "
              f"| {a['seconds']:.1f} ({a['cpu']:.1f}) | {ar:,.0f} ({ac:,.0f}) "
              f"| {h['seconds']:.1f} ({h['cpu']:.1f}) | {hr:,.0f} ({hc:,.0f}) "
              f"| {hr / ar:.1f}x ({hc / ac:.1f}x) "
              f"| {a['rss'] / MIB:,.0f} | {a['rss'] / a['states']:,.0f} "
              f"({(a['rss'] - base) / a['states']:,.0f}) |", flush=True)


if __name__ == "__main__":
    main()
