"""`Handled` (a sender life's frame numbers kept by a receiver): milliseconds to add 200,000
numbers in order and with neighbours swapped (the honest cases), and the bytes a sparse
numbering (2, 4, 6, ...) of 200,000 frames takes when nothing bounds it (`tracemalloc`).

    PYTHONPATH=$PWD python tests/benchmarks/bench_handled.py
prints: in-order ms, swapped ms, sparse bytes (each time the best of 3)."""
from __future__ import annotations

import time
import tracemalloc

from assay.runtime.storelog import Handled

N = 200_000


def in_order() -> float:
    h, t = Handled(), time.perf_counter()
    for s in range(1, N + 1):
        h.add(s)
    return time.perf_counter() - t


def swapped() -> float:
    h, t = Handled(), time.perf_counter()
    for s in range(1, N + 1, 2):
        h.add(s + 1)
        h.add(s)
    return time.perf_counter() - t


def sparse() -> int:
    tracemalloc.start()
    h = Handled()
    for s in range(2, 2 * N + 1, 2):
        h.add(s)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size


if __name__ == "__main__":
    print(f"{min(in_order() for _ in range(3)) * 1e3:.1f} "
          f"{min(swapped() for _ in range(3)) * 1e3:.1f} {sparse()}")
