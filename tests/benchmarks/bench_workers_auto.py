"""`check --workers auto` (the default) against the default before it (one process), on
small checks: the wall time of the whole command, base checkout and this one alternating.

    python tests/benchmarks/bench_workers_auto.py --base /tmp/base_checkout
    python tests/benchmarks/bench_workers_auto.py --base /tmp/base --repeat 9 --case twophase:3

Each run is `python -m assay.cli check SPEC -q` in a fresh process with the checkout's
default `--workers` (base: 1; here: auto), alternating base and branch, so a load that comes
and goes hits both; the table gives the median wall seconds and the ratio branch / base.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = {
    "twophase": ("specs/tla_twophase.py", ("rm_count",)),
    "lamport": ("specs/tla_lamport_mutex.py", ("n", "max_clock")),
    "bank": ("specs/bank_transfer.py", ()),
    "pingpong": ("tests/fixtures/good/ping_pong.py", ()),
}


def wall(root: Path, spec: str, params: dict[str, str]) -> float:
    args = [sys.executable, "-m", "assay.cli", "check", spec, "-q"]
    for k, v in params.items():
        args += ["-p", f"{k}={v}"]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=root, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{root}: {' '.join(args)}: exit {proc.returncode}\n"
                         f"{proc.stderr.decode()}")
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, type=Path, help="a checkout of the base commit")
    p.add_argument("--case", action="append", help="NAME:P1:... e.g. twophase:3 (repeatable)")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    cases = args.case or ["pingpong", "bank", "twophase:3", "twophase:5", "twophase:6"]
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, nproc "
          f"{os.cpu_count()}, load {os.getloadavg()}")
    print("| case | base wall s (median) | branch wall s (median) | branch / base |")
    print("|---|---:|---:|---:|")
    for case in cases:
        name, *values = case.split(":")
        spec, names = CASES[name]
        params = dict(zip(names, values))
        times: dict[str, list[float]] = {"base": [], "branch": []}
        for _ in range(args.repeat):
            for which, root in (("base", args.base), ("branch", REPO)):
                times[which].append(wall(root, spec, params))
        b, m = statistics.median(times["base"]), statistics.median(times["branch"])
        print(f"| {case} | {b:.3f} | {m:.3f} | {m / b:.3f} |", flush=True)
    print(f"# load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
