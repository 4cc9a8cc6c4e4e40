"""Benchmark: the wire's JSON codec (`assay.runtime.wire.encode_payload` / `decode_payload`)
against msgpack for the frames nodes exchange — what a binary codec behind the wire interface
would save per frame.

    python tests/benchmarks/bench_codec.py
    python tests/benchmarks/bench_codec.py --receive 2000 [--root CHECKOUT]

`--receive N`: N real sealed `msg` frames (Ping, sealed by a sender `Session`, as `TcpNode`
sends them) through the real receive path of node b of the ping-pong deployment, in one
process with no sockets: `Session._parse` (length, number, MAC, JSON), then what
`TcpNode._serve_connection`'s `on_frame` does (`decode_frame`, `TcpNode._on_frame`: dedup,
`envelope_from_wire`, the inbox).  Load-free in instructions under callgrind:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench_codec.py --receive N

for two N; (Ir(N2) - Ir(N1)) / (N2 - N1) is the instructions per frame (`--instr` does it).

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


def receive(n: int, made: int = 2500) -> None:
    """Feed `n` sealed frames, one arrival each, through node b's receive path (`made`
    frames are made first, whatever `n`: the difference between two `n` is the receiving
    alone)."""
    import asyncio
    import json as _json
    import secrets
    import tempfile

    from bench_runtime_cpu import case, free_port  # (this script's directory is on sys.path)

    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode
    from assay.runtime.wire import Session, decode_frame

    class Writer:      # what `Session` asks of its writer before anything is written
        def get_extra_info(self, _: str) -> None:
            return None

    root = Path(__file__).resolve().parents[2]
    spec, nodes, params, _ = case(root, False, 10 ** 9)
    with tempfile.TemporaryDirectory() as tmp:
        dep = Path(tmp) / "deploy.toml"
        dep.write_text(
            f'spec = "{spec}"\nsecret = "{secrets.token_hex(16)}"\n[params]\n'
            + "".join(f"{k} = {v}\n" for k, v in params.items())
            + "".join(f'[nodes.{m}]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                      f"instances = {_json.dumps(i)}\n" for m, i in nodes.items()))

        async def run() -> None:
            b = TcpNode(load_deployment(dep), "b")
            key = bytes(32)
            w: Any = Writer()
            sender = Session(None, w, "b", key, True)        # type: ignore[arg-type]
            rx = Session(None, w, "a", key, False)           # type: ignore[arg-type]
            frames = [sender.frame({"t": "msg", "src": "pinger", "src_port": "peer",
                                    "dst": "ponger", "dst_port": "peer", "clock": 2 * i,
                                    "epoch": "0123456789abcdef", "seq": i,
                                    "message": {"type": "Ping", "fields": {"n": i}}})
                      for i in range(1, max(n, made) + 1)]
            box = b.inbox["ponger"]

            queued = 0

            def on_frame(raw: dict[str, Any]) -> None:     # `_serve_connection`'s, for msgs
                nonlocal queued
                if b._on_frame("a", decode_frame(raw), None) is not None:
                    raise RuntimeError("a reply to a fresh message")
                # taken by its step and acknowledged, as in a running node (else the heap
                # grows by each frame's objects, and the collector's passes over it with it)
                queued += len(box)
                box.clear()
                b.pending.clear()

            ended: list[BaseException | None] = []
            rx._on_frame, rx._on_end = on_frame, ended.append
            for f in frames[:n]:
                rx._parse(f)
            if ended or queued != n:
                raise RuntimeError(f"frames refused: {ended}, {queued} of {n} queued")

        asyncio.run(run())


def instructions(n: int) -> int:
    import re
    import subprocess

    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--receive", str(n)],
                         capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONHASHSEED": "0"}).stderr
    m = re.search(r"Collected : (\d+)", out)
    assert m, out
    return int(m.group(1))


if __name__ == "__main__":
    if "--receive" in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        receive(int(sys.argv[sys.argv.index("--receive") + 1]))
    elif "--instr" in sys.argv:
        lo, hi = 500, 2500
        a, b = instructions(lo), instructions(hi)
        print(f"instructions per received frame: {(b - a) / (hi - lo):.0f} "
              f"(callgrind, Ir({hi}) - Ir({lo}) over {hi - lo})")
    else:
        main()
