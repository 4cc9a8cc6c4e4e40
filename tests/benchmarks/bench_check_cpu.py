"""The CPU seconds of one `assay check` in this process (`time.process_time`, so less noisy
than wall time on a shared machine): run it from a worktree with PYTHONPATH set to it, and
alternate base and branch.

    PYTHONPATH=$PWD python tests/benchmarks/bench_check_cpu.py specs/paxos.py acceptors=3
"""
from __future__ import annotations

import sys
import time

from assay.api import check


def main() -> None:
    spec, *given = sys.argv[1:]
    params = {k: int(v) for k, v in (p.split("=", 1) for p in given)}
    t = time.process_time()
    r = check(spec, params=params)
    print(f"{r.verdict} states={r.states} cpu={time.process_time() - t:.2f}")


if __name__ == "__main__":
    main()
