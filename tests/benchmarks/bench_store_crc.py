"""CPU time of one group commit of `Store.save_steps` (a step's fields, one frame sent, one
handled, the clock, one acknowledged row deleted), in microseconds: the SQLite path
(`--durability machine`, here with synchronous=NORMAL so that fsync does not hide the CPU)
and the store log's (`--durability process`).  Prints `sqlite_us log_us`.

    PYTHONPATH=. python tests/benchmarks/bench_store_crc.py
"""
from __future__ import annotations

import os
import tempfile
import time

from assay.runtime.store import Store


def bench(log: bool, n: int = 3000) -> float:
    path = os.path.join(tempfile.mkdtemp(), "a.sqlite")
    s = Store(path, "NORMAL", log=log)
    frame = {"t": "msg", "seq": 1, "epoch": "e1", "src": "client", "dst": "server",
             "message": {"type": "Write", "fields": {"value": 5}}}
    t0 = time.process_time()
    for i in range(1, n + 1):
        s.save_steps([("server", {"value": i, "log": list(range(10))},
                       [("b", "e1", i, {**frame, "seq": i})], ("b", "e2", i), i, None)],
                     [("b", "e1", i - 1)] if i > 1 else [])
    s.close()
    return (time.process_time() - t0) / n * 1e6


if __name__ == "__main__":
    print(f"{bench(False):.1f} {bench(True):.1f}")
