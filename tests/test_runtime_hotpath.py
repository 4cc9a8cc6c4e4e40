"""The runtime's per-message path (issue 14 item 5): acknowledgements of one sender life
leave in one `acks` frame, the step log's lines are `json.dumps`'s text, and the handled
numbers of a life (`Handled`) are the set of the numbers added, whatever their order.

The acknowledgement test runs a real `TcpNode` on 127.0.0.1 in this process and plays its
peer node itself over the authenticated wire (real sockets, the real handshake and MACs).
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_support import free_ports, write_deployment
from runtime_support import ping_frame as ping

from assay.runtime.storelog import Handled
from assay.runtime.wire import authenticate

SECRET = "hotpath-secret-0123456789abcdef"
SPEC = Path(__file__).parent / "benchmarks" / "ping_pong_spec.py"


def test_the_acknowledgements_of_one_flush_leave_in_one_acks_frame(tmp_path):
    """Five messages in one write: their five steps are durable within `ack_delay` of each
    other, so one `acks` frame (one MAC, one read) acknowledges them all, in order — before
    this, five `ack` frames did."""
    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode

    pa, pb = free_ports(2)
    dep_file = write_deployment(tmp_path / "deploy.toml", SPEC,
                                {"a": (pa, ["ponger"]), "b": (pb, ["pinger"])},
                                params={"limit": 10}, secret=SECRET)
    logging.getLogger("assay.runtime").setLevel(logging.ERROR)   # (b is not listening)

    async def main() -> list[dict[str, Any]]:
        node = TcpNode(load_deployment(dep_file), "a", ack_delay=0.05)
        started = asyncio.Event()
        serving = asyncio.create_task(node.serve(signals=(), started=started))
        await asyncio.wait_for(started.wait(), 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", pa)
        try:
            session = await authenticate(reader, writer, SECRET.encode(), "b", initiator=True)
            session.write(*[ping(s) for s in range(1, 6)])               # one write
            await session.drain()
            got: list[dict[str, Any]] = []
            acked: list[int] = []
            while len(acked) < 5:
                f = await asyncio.wait_for(session.read(), 10)
                assert f is not None
                got.append(f)
                acked += f["seqs"] if f["t"] == "acks" else [f["seq"]]
            return got
        finally:
            writer.close()
            node.stop()
            await asyncio.wait_for(serving, 15)

    frames = asyncio.run(main())
    assert frames == [{"t": "acks", "seqs": [1, 2, 3, 4, 5], "epoch": "life-1"}]


def test_one_acknowledgement_alone_is_still_an_ack_frame(tmp_path):
    from assay.runtime.wire import acks_payloads, decode_payload

    assert [decode_payload(p) for p in acks_payloads("e", [7])] == [
        {"t": "ack", "seq": 7, "epoch": "e"}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(clock=st.integers(0, 2**62), node=st.text(min_size=1),
       event=st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_a_step_log_line_is_json_dumps_of_its_entry(clock, node, event):
    """`log_line` formats the entry itself (no dict built, no cycle check): the text is still
    exactly `json.dumps`'s, so every reader of step logs reads it as before."""
    from assay.runtime.steplog import log_line

    line = log_line(clock, node, event)
    entry = json.loads(line)
    assert line == json.dumps({"clock": clock, "node": node, "time": entry["time"],
                               "event": event}) + "\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=60))
def test_handled_is_the_set_of_the_numbers_added(seqs):
    h = Handled()
    for s in seqs:
        h.add(s)
        assert not h.above or min(h.above) > h.floor + 1      # the floor rose as gaps filled
    added = set(seqs)
    assert all((n in h) == (n in added) for n in range(1, 45))
    floor = 0
    while floor + 1 in added:
        floor += 1
    assert h.floor == floor and h.above == {n for n in added if n > floor}


@settings(max_examples=300, deadline=None)
@given(frame=st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_a_frame_payload_is_the_sorted_compact_json_of_the_frame(frame):
    """`encode_payload` writes through a C encoder made once (`wire.c_encoder`): the bytes
    are still exactly the strict, key-sorted, ASCII-only JSON the receiving side's checks
    (and a peer of an older release) expect."""
    from assay.runtime.wire import decode_payload, encode_payload

    payload = encode_payload(frame)
    assert payload == json.dumps(frame, separators=(",", ":"), sort_keys=True,
                                 ensure_ascii=True, allow_nan=False).encode("ascii")
    assert decode_payload(payload) == frame


def test_a_frame_that_is_not_json_is_still_refused():
    from assay.runtime.wire import WireError, encode_payload

    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {"x": b"1"},
                {1: 1, "a": 2}, {"x": {2, 3}}):
        with pytest.raises(WireError, match="cannot encode the frame as JSON"):
            encode_payload(bad)


def test_the_json_encoders_of_frames_and_log_lines_are_made_once(monkeypatch):
    """`JSONEncoder.encode` makes a C encoder for every call (a third of the cost of
    encoding a message frame): a frame's payload and a step log line are written without
    making one."""
    from json import encoder

    from assay.runtime.steplog import log_line
    from assay.runtime.wire import encode_payload

    made = []
    real = encoder.c_make_encoder

    def counting(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(encoder, "c_make_encoder", counting)
    frame = {"t": "msg", "src": "a", "src_port": "p", "dst": "b", "dst_port": "q",
             "clock": 3, "message": {"type": "Ping", "fields": {"n": 1}}}
    for _ in range(5):
        encode_payload(frame)
        log_line(1, "a", {"kind": "deliver", "message": frame["message"]})
    assert made == []


def test_c_encoder_falls_back_to_the_encoder_itself_without_a_c_encoder(monkeypatch):
    from json import encoder

    from assay.runtime.wire import c_encoder

    base = json.JSONEncoder(sort_keys=True, check_circular=False)
    monkeypatch.setattr(encoder, "c_make_encoder", None)
    enc = c_encoder(base)
    assert enc == base.encode and enc({"b": 1, "a": [1.5]}) == '{"a": [1.5], "b": 1}'
    with pytest.raises(ValueError, match="cycle check"):
        c_encoder(json.JSONEncoder())


@pytest.mark.parametrize("payload,want", [
    (b'{"a":1}', {"a": 1}), (b' {"a":1}', {"a": 1}), (b'{"a":1} \n', {"a": 1}),
    (b'{"a":1}x', "Extra data"), (b'{"a":1}{}', "Extra data"), (b"", "Expecting value"),
    (b"  ", "Expecting value"), (b"x", "Expecting value"), (b"[1]", "JSON list"),
    (b'{"a":1,"a":2}', "duplicate key 'a'"), (b'{"a":NaN}', "NaN is not JSON"),
    (b'{"a":[1,2}', "Expecting"),
])
def test_a_payload_is_decoded_by_the_scanner_with_decode_s_verdicts(payload, want):
    """`decode_payload` calls the decoder's C scanner itself; around it, what
    `JSONDecoder.decode` accepts (whitespace) and refuses (extra data, no value) is the same."""
    from assay.runtime.wire import WireError, decode_payload

    if isinstance(want, dict):
        assert decode_payload(payload) == want
    else:
        with pytest.raises(WireError, match=want):
            decode_payload(payload)


def test_a_delivery_s_event_is_the_deliver_event_s_json_key_for_key():
    """A node's delivery event (`deliver_json`) is `Deliver(e).to_json()`, keys in the same
    order (a step log line is its text), with and without an interceptor's meta."""
    from assay.kernel.events import Deliver, Envelope, _env_json, deliver_json
    from assay.model.message import Message

    class Ping(Message):
        n: int

    for meta in ((), (("hop", 2), ("trace", "x"))):
        e = Envelope("a", "p", "b", "q", Ping(3), meta)
        old = {"kind": "deliver", **_env_json(e)}
        assert json.dumps(deliver_json(e)) == json.dumps(old) == json.dumps(Deliver(e).to_json())
