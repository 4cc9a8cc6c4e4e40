"""Benchmark: the wire's JSON codec (`assay.runtime.wire.encode_payload` / `decode_payload`)
against msgpack for the frames nodes exchange — what a binary codec behind the wire interface
would save per frame.

    python tests/benchmarks/bench_codec.py

CPU time per frame (`time.process_time`, best of 5 rounds of 20,000), so the machine's load
matters less than for wall-clock figures.  msgpack is measured as strictly as the wire would
have to decode it: `raw=False`, `strict_map_key=True`, bounded lengths, and a duplicate-key
check (`object_pairs_hook`, as the JSON decoder has); the typed checks that follow a decode
(`decode_frame`, `envelope_from_wire`) are the same for either codec and are not measured.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from assay.runtime.wire import MAX_FRAME, decode_payload, encode_payload  # noqa: E402

FRAMES: dict[str, dict[str, Any]] = {
    "ping": {"t": "msg", "src": "pinger", "src_port": "peer", "dst": "ponger",
             "dst_port": "peer", "clock": 2 * 1234, "epoch": "0123456789abcdef", "seq": 1234,
             "message": {"type": "Ping", "fields": {"n": 1234}}},
    "2pc": {"t": "msg", "src": "tm", "src_port": "rms", "dst": "rm1", "dst_port": "tm",
            "clock": 12345, "epoch": "0123456789abcdef", "seq": 678,
            "message": {"type": "Prepare", "fields": {"r": 42}}},
    "ack": {"t": "ack", "seq": 678, "epoch": "0123456789abcdef"},
}


def per_call_us(f: Callable[[], object], n: int = 20_000, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        for _ in range(n):
            f()
        best = min(best, time.process_time() - t)
    return best / n * 1e6


def main() -> None:
    import msgpack

    def no_duplicates(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            raise ValueError("duplicate key")
        return d

    def unpack(b: bytes) -> Any:
        return msgpack.unpackb(b, raw=False, strict_map_key=True, use_list=True,
                               object_pairs_hook=no_duplicates, max_bin_len=MAX_FRAME,
                               max_str_len=MAX_FRAME, max_array_len=MAX_FRAME,
                               max_map_len=MAX_FRAME, max_ext_len=0)

    print(f"msgpack {'.'.join(map(str, msgpack.version))}, Python {sys.version.split()[0]}")
    print("| frame | JSON bytes | msgpack bytes | JSON encode us | msgpack encode us "
          "| JSON decode us | msgpack decode us |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, frame in FRAMES.items():
        j = encode_payload(frame)
        m = msgpack.packb(frame)
        assert decode_payload(j) == frame == unpack(m)
        print(f"| {name} | {len(j)} | {len(m)} "
              f"| {per_call_us(lambda: encode_payload(frame)):.2f} "     # noqa: B023
              f"| {per_call_us(lambda: msgpack.packb(frame)):.2f} "       # noqa: B023
              f"| {per_call_us(lambda: decode_payload(j)):.2f} "          # noqa: B023
              f"| {per_call_us(lambda: unpack(m)):.2f} |", flush=True)    # noqa: B023


if __name__ == "__main__":
    main()
