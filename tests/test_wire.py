"""The wire: frames, the typed envelope codec, and mutual authentication over real loopback TCP."""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from enum import Enum
from typing import Annotated, Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.kernel.events import Envelope
from assay.model.message import Message
from assay.model.types import Peer, Range
from assay.runtime.wire import (
    CLOCK_LIMIT,
    INT_LIMIT,
    MAX_ACKS,
    MAX_FRAME,
    VERSION,
    AckFrame,
    AuthError,
    EpochsFrame,
    FrameAuthError,
    MsgFrame,
    Request,
    Session,
    WireError,
    acks_payloads,
    authenticate,
    decode_ack,
    decode_frame,
    decode_reply,
    encode_frame,
    envelope_from_frame,
    envelope_from_wire,
    envelope_to_wire,
    read_frame,
)

LIMIT = 10.0      # seconds: no test here may hang


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, LIMIT)
    return asyncio.run(bounded())


# --- messages used on the wire ------------------------------------------------------------

class Color(Enum):
    RED = 1
    GREEN = 2


class Inner(Message):
    k: int
    tag: str


class Big(Message):
    n: int
    s: str
    b: bool
    c: Color
    cs: frozenset[Color]
    pair: tuple[int, str]
    many: tuple[int, ...]
    opt: Optional[int]          # noqa: UP045 (the spec language accepts both spellings)
    inner: Inner
    maybe: Inner | None
    who: Peer
    small: Annotated[int, Range(0, 7)]


class Ping(Message):
    n: int


class WithDefault(Message):
    n: int
    d: int = 5


class Other(Message):
    s: str


def big(**over: Any) -> Big:
    values: dict[str, Any] = dict(
        n=-3, s="héllo \u2603 \"quoted\"", b=True, c=Color.GREEN,
        cs=frozenset({Color.RED, Color.GREEN}), pair=(1, "x"), many=(5, 6, 7), opt=None,
        inner=Inner(2, "t"), maybe=Inner(3, "u"), who=Peer("a"), small=7)
    values.update(over)
    return Big(**values)


def allowed(dst: str, port: str) -> dict[str, type[Message]]:
    ports = {("b", "inp"): {"Big": Big, "Ping": Ping, "WithDefault": WithDefault},
             ("b", "ctl"): {"Other": Other}}
    return ports[(dst, port)]


def env_of(m: Message) -> Envelope:
    return Envelope("a", "out", "b", "inp", m)


async def through_reader(*frames: bytes, chunk: int | None = None) -> list[dict | None]:
    """Feed `frames` into a real StreamReader (in chunks, if asked) and read them back."""
    reader = asyncio.StreamReader()
    data = b"".join(frames)

    async def feed() -> None:
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            reader.feed_data(data[i:i + step])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    out: list[dict | None] = []
    while True:
        f = await read_frame(reader)
        out.append(f)
        if f is None:
            break
    await feeder
    return out


# --- frames -------------------------------------------------------------------------------

def test_encode_frame_is_a_big_endian_length_and_compact_sorted_json():
    frame = encode_frame({"b": 1, "a": [1, 2], "c": {"y": None, "x": True}})
    payload = b'{"a":[1,2],"b":1,"c":{"x":true,"y":null}}'
    assert frame == len(payload).to_bytes(4, "big") + payload


def test_frames_round_trip_in_order_even_fed_byte_by_byte():
    objs = [{"t": "msg", "n": i, "s": "ünïcode \u2603"} for i in range(5)] + [{}]
    got = run(through_reader(*(encode_frame(o) for o in objs), chunk=1))
    assert got == [*objs, None]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_objects, min_size=1, max_size=4), st.sampled_from([3, 17, 256, 1 << 16]))
def test_any_json_object_round_trips_through_a_stream_reader(objs, chunk):
    got = run(through_reader(*(encode_frame(o) for o in objs), chunk=chunk))
    assert got == [*objs, None]


def test_clean_eof_is_none():
    assert run(through_reader()) == [None]


@pytest.mark.parametrize("data", [
    b"\x00",                                     # EOF inside the header
    b"\x00\x00\x00",
    b"\x00\x00\x00\x10{\"a\":",                  # EOF inside the payload
    encode_frame({"a": 1})[:-1],
    encode_frame({"a": 1}) + b"\x00\x00",        # one good frame, then a torn one
])
def test_truncated_frames_are_wire_errors(data):
    async def main() -> list:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        got = []
        with pytest.raises(WireError, match="closed inside"):
            while True:
                got.append(await read_frame(reader))
        return got
    got = run(main())
    assert got in ([], [{"a": 1}])


def test_an_oversized_length_is_rejected_without_reading_the_payload():
    async def main() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data((MAX_FRAME + 1).to_bytes(4, "big") + b"PAYLOAD")
        with pytest.raises(WireError, match="exceeds the limit"):
            await read_frame(reader)
        # the payload bytes are still there, unread (the caller closes the connection)
        return await reader.readexactly(7)
    assert run(main()) == b"PAYLOAD"


def test_an_oversized_length_fails_at_once_on_a_real_socket():
    # a peer announces 4 GiB and sends nothing more: no waiting, no buffering
    async def main() -> None:
        got: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            try:
                await read_frame(reader, max_size=1000)
            except WireError as e:
                got.set_result(e)
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\xff\xff\xff\xff")
        await writer.drain()
        err = await asyncio.wait_for(got, 2)
        assert "4294967295 bytes exceeds the limit of 1000" in str(err)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    run(main())


def test_the_size_limit_is_inclusive():
    frame = encode_frame({"a": "x" * 10})
    size = len(frame) - 4

    async def main(limit: int) -> dict | None:
        reader = asyncio.StreamReader()
        reader.feed_data(frame)
        reader.feed_eof()
        return await read_frame(reader, max_size=limit)
    assert run(main(size)) == {"a": "x" * 10}
    with pytest.raises(WireError):
        run(main(size - 1))


def raw(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize("payload, reason", [
    (b"", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"\x00\x01\x02garbage", "not valid JSON"),
    (b"{'a': 1}", "not valid JSON"),
    (b'{"a": 1} trailing', "not valid JSON"),
    (b"[1, 2]", "JSON list, not an object"),
    (b"3", "JSON int, not an object"),
    (b'"text"', "JSON str, not an object"),
    (b"null", "JSON NoneType, not an object"),
    (b'{"a": NaN}', "NaN is not JSON"),
    (b'{"a": Infinity}', "Infinity is not JSON"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
])
def test_garbage_payloads_are_wire_errors(payload, reason):
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(raw(payload))
        reader.feed_eof()
        with pytest.raises(WireError, match=reason):
            await read_frame(reader)
    run(main())


@pytest.mark.parametrize("obj", [[1, 2], {"a": {1, 2}}, {"a": float("nan")}, {"a": b"bytes"}])
def test_encode_frame_refuses_what_is_not_a_json_object(obj):
    with pytest.raises(WireError):
        encode_frame(obj)


def test_encode_frame_refuses_a_frame_the_receiver_would_refuse():
    with pytest.raises(WireError, match="exceeds the limit"):
        encode_frame({"a": "x" * MAX_FRAME})


def test_encode_frame_encodes_any_python_str():
    # a lone surrogate (which JSON can carry as an escape) must not break the sender
    got = run(through_reader(encode_frame({"s": "\ud800"})))
    assert got == [{"s": "\ud800"}, None]


# --- envelopes ----------------------------------------------------------------------------

def wire_of(m: Message, clock: int = 7) -> dict:
    """The envelope's wire form as the peer sees it: through a real frame."""
    d = envelope_to_wire(env_of(m), clock)
    [back, _] = run(through_reader(encode_frame(d)))
    assert back is not None
    return back


@pytest.mark.parametrize("m", [
    big(),
    big(opt=4, maybe=None, cs=frozenset(), many=(), small=0, b=False, s=""),
    Ping(0),
    WithDefault(1, 2),
])
def test_envelopes_round_trip_with_their_types(m):
    env = env_of(m)
    d = envelope_to_wire(env, 42)
    assert d == {"t": "msg", "src": "a", "src_port": "out", "dst": "b", "dst_port": "inp",
                 "clock": 42, "message": m.to_json()}
    got, clock = envelope_from_wire(wire_of(m, 42), allowed)
    assert (got, clock) == (env, 42)
    assert type(got.message) is type(m) and got.message.bad_field() is None
    if isinstance(m, Big):
        gm = got.message
        assert type(gm.c) is Color and type(gm.cs) is frozenset and type(gm.who) is Peer
        assert type(gm.pair) is tuple and type(gm.inner) is Inner


def test_envelope_wire_form_is_plain_json():
    d = envelope_to_wire(env_of(big()), 1)
    assert json.loads(json.dumps(d)) == d
    assert d["message"]["fields"]["c"] == "GREEN"
    assert sorted(d["message"]["fields"]["cs"]) == ["GREEN", "RED"]


def mutate(path: list, value: Any = None, delete: bool = False, m: Message | None = None,
           clock: int = 7) -> dict:
    d = copy.deepcopy(envelope_to_wire(env_of(m if m is not None else big()), clock))
    target = d
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


F = ["message", "fields"]


@pytest.mark.parametrize("d, reason", [
    # the frame itself
    (mutate(["t"], "hello"), "not a message frame"),
    (mutate(["t"], delete=True), "not a message frame"),
    (mutate(["src"], delete=True), "missing 'src'"),
    (mutate(["clock"], delete=True), "missing 'clock'"),
    (mutate(["extra"], 1), "unexpected key 'extra'"),
    (mutate(["src"], 5), "'src' must be a non-empty string"),
    (mutate(["dst_port"], ""), "'dst_port' must be a non-empty string"),
    (mutate(["clock"], -1), "'clock' must be an int in 0"),
    (mutate(["clock"], "7"), "'clock' must be an int in 0"),
    (mutate(["clock"], True), "'clock' must be an int in 0"),
    (mutate(["clock"], 7.0), "'clock' must be an int in 0"),
    (mutate(["message"], "Big()"), "'message' must be an object"),
    (mutate(["message"], [1]), "'message' must be an object"),
    (mutate(["message", "type"], delete=True), "needs a string 'type'"),
    (mutate(["message", "type"], 3), "needs a string 'type'"),
    (mutate(["message", "fields"], delete=True), "'fields' is missing"),
    (mutate(["message", "fields"], [1, 2]), "'fields' of a Big must be an object"),
    (mutate(["message", "extra"], 1), "unexpected key 'extra'"),
    # the destination and the type
    (mutate(["dst"], "nowhere"), "no port nowhere.inp"),
    (mutate(["message", "type"], "Nope"), "does not accept a message of type 'Nope'"),
    (mutate(["message", "type"], "Other"), "does not accept a message of type 'Other'"),
    (mutate(["dst_port"], "ctl"), "b.ctl does not accept a message of type 'Big'"),
    (mutate(["message", "type"], "Inner"), "does not accept a message of type 'Inner'"),
    (mutate(["message", "type"], "Message"), "does not accept"),
    # the fields
    (mutate([*F, "extra"], 1), "Big has no field 'extra'"),
    (mutate([*F, "n"], delete=True), "Big is missing field 'n'"),
    (mutate([*F, "d"], delete=True, m=WithDefault(1, 2)), "missing field 'd'"),
    (mutate([*F, "inner", "fields", "tag"], delete=True), "Big.inner: Inner is missing field"),
    (mutate([*F, "inner", "fields", "zz"], 1), "Inner has no field 'zz'"),
    (mutate([*F, "inner", "type"], "Big"), "unknown message type 'Big'"),
    (mutate([*F, "inner"], "Inner(2, 't')"), "bad Big"),
    (mutate([*F, "n"], "1"), "expected an int"),
    (mutate([*F, "n"], True), "expected an int"),
    (mutate([*F, "n"], 1.0), "expected an int"),
    (mutate([*F, "n"], None), "expected an int"),
    (mutate([*F, "s"], 5), "expected a str"),
    (mutate([*F, "s"], ["a"]), "expected a str"),
    (mutate([*F, "b"], 1), "expected a bool"),
    (mutate([*F, "b"], "true"), "expected a bool"),
    (mutate([*F, "c"], "BLUE"), "not a member of Color"),
    (mutate([*F, "c"], 1), "not a member of Color"),
    (mutate([*F, "c"], ["RED"]), "not a member of Color"),
    (mutate([*F, "c"], "__class__"), "not a member of Color"),
    (mutate([*F, "cs"], "RED"), "expected a list for a frozenset"),
    (mutate([*F, "cs"], ["RED", "PURPLE"]), "'PURPLE' is not a member of Color"),
    (mutate([*F, "pair"], [1]), "expected 2 items"),
    (mutate([*F, "pair"], [1, "x", 2]), "expected 2 items"),
    (mutate([*F, "pair"], ["x", 1]), "expected an int"),
    (mutate([*F, "pair"], {"0": 1}), "expected a list for a tuple"),
    (mutate([*F, "many"], [1, "2"]), "expected an int"),
    (mutate([*F, "opt"], "x"), "expected an int"),
    (mutate([*F, "maybe"], 3), "bad Big"),
    (mutate([*F, "maybe", "fields", "k"], "3"), "expected an int"),
    (mutate([*F, "who"], 3), "expected a str"),
    (mutate([*F, "small"], 8), "field 'small' of Big is 8, not int in \\[0, 7\\]"),
    (mutate([*F, "small"], -1), "field 'small' of Big is -1"),
])
def test_envelope_from_wire_rejects_with_a_reason(d, reason):
    with pytest.raises(WireError, match=reason):
        envelope_from_wire(d, allowed)
    # a node's path (`decode_frame`, then `envelope_from_frame`) refuses it too: in
    # `decode_frame` if its keys, kind or clock are bad, else with the same reason
    frame = {**d, "seq": 1, "epoch": "e"} if isinstance(d, dict) else d
    try:
        got = decode_frame(frame)
    except WireError:
        return
    assert isinstance(got, MsgFrame)
    with pytest.raises(WireError, match=reason):
        envelope_from_frame(got, allowed)


def test_envelope_from_wire_rejects_what_is_not_an_object():
    for d in ([1], "msg", None, 3):
        with pytest.raises(WireError):
            envelope_from_wire(d, allowed)  # type: ignore[arg-type]


def test_nothing_on_the_wire_is_evaluated(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    code = f"__import__('os').system('touch {marker}')"
    monkeypatch.chdir(tmp_path)
    # code in a str field stays a str
    env, _ = envelope_from_wire(wire_of(big(s=code, who=Peer(code))), allowed)
    assert env.message.s == code and type(env.message.s) is str
    # code as a type name, an enum member, a field name, a port: rejected, never run
    for d in (mutate(["message", "type"], code), mutate([*F, "c"], code),
              mutate([*F, code], 1), mutate(["dst_port"], code),
              mutate([*F, "inner", "type"], code)):
        with pytest.raises(WireError):
            envelope_from_wire(d, allowed)
    assert not marker.exists() and not os.path.exists("pwned")


# --- the frames nodes exchange: every number checked at decode ----------------------------

def frame_templates() -> dict[str, tuple[dict[str, Any], Any]]:
    """Per frame kind, a well-formed frame and the decoder that reads it."""
    msg = {**envelope_to_wire(env_of(Ping(1)), 3), "seq": 1, "epoch": "e1"}
    status = {"t": "status", "node": "a", "steps": 1, "busy": False, "unacked": 0,
              "violations": [], "violation_count": 0, "epochs": 1}
    return {"msg": (msg, decode_frame), "ack": ({"t": "ack", "seq": 1, "epoch": "e1"},
                                                 decode_ack),
            "acks": ({"t": "acks", "seqs": [1, 2], "epoch": "e1"}, decode_ack),
            "status-reply": (status, decode_reply)}


# (kind, field, lowest, limit): every numeric field of every frame kind
NUMBERS = [("msg", "seq", 1, INT_LIMIT), ("msg", "clock", 0, CLOCK_LIMIT),
           ("ack", "seq", 1, INT_LIMIT), ("acks", "seqs[1]", 1, INT_LIMIT)] + [
    ("status-reply", k, 0, INT_LIMIT) for k in ("steps", "unacked", "violation_count", "epochs")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from([2**62 - 1, 2**62, 2**63 - 1, 2**63, 2**64, -1, -(2**63), 0, 1]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                  max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(NUMBERS), value=json_values)
def test_any_json_value_in_a_numeric_field_is_decoded_in_range_or_a_wire_error(case, value):
    kind, key, low, limit = case
    template, decode = frame_templates()[kind]
    # through a real frame: what a peer can send is what JSON can carry
    if key.endswith("[1]"):                       # a list's second number
        key = key[:-3]
        frame = {**template, key: [*template[key][:1], value]}
    else:
        frame = {**template, key: value}
    [raw, _] = run(through_reader(encode_frame(frame)))
    try:
        got = decode(raw)
    except WireError:
        return                                    # the decoder's own error: nothing else
    if isinstance(got, AckFrame):
        key, got = "seq", {"seq": got.seqs[-1]}
    n = getattr(got, key) if not isinstance(got, dict) else got[key]
    assert type(n) is int and low <= n < limit, (kind, key, value)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_the_clock_of_an_envelope_is_in_range_or_a_wire_error(value):
    try:
        _, clock = envelope_from_wire({**envelope_to_wire(env_of(Ping(1)), 3), "clock": value},
                                      allowed)
    except WireError:
        return
    assert type(clock) is int and 0 <= clock < CLOCK_LIMIT, value


@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 2**62, -1, True, 1.0])
def test_a_clock_a_node_could_not_step_from_is_refused(value):
    # 2**63 - 1 fits SQLite, but the next step's clock would not: Lamport clocks stay < 2**62
    with pytest.raises(WireError, match="clock"):
        envelope_from_wire({**envelope_to_wire(env_of(Ping(1)), 3), "clock": value}, allowed)
    with pytest.raises(WireError, match="clock"):
        decode_frame({**envelope_to_wire(env_of(Ping(1)), 3), "clock": value, "seq": 1,
                      "epoch": "e"})


@pytest.mark.parametrize("frame,reason", [
    ({"t": "msg"}, "needs"),
    ({**envelope_to_wire(env_of(Ping(1)), 3), "seq": 1, "epoch": "e", "x": 1}, "unexpected"),
    ({**envelope_to_wire(env_of(Ping(1)), 3), "seq": 0, "epoch": "e"}, "'seq'"),
    ({**envelope_to_wire(env_of(Ping(1)), 3), "seq": 1, "epoch": "a b"}, "'epoch'"),
    ({**envelope_to_wire(env_of(Ping(1)), 3), "seq": 1, "epoch": "e" * 65}, "'epoch'"),
    ({"t": "epochs", "live": []}, "'live'"),
    ({"t": "epochs", "live": ["e"] * 65}, "'live'"),
    ({"t": "epochs", "live": [5]}, "'live'"),
    ({"t": "state", "instance": ["x"]}, "'instance'"),
    ({"t": "status", "more": 1}, "unexpected"),
    ({"t": "ack", "seq": 1}, "goes to a node"),
    ({"t": "nope"}, "goes to a node"),
    ({}, "goes to a node"),
])
def test_decode_frame_refuses_with_a_reason(frame, reason):
    with pytest.raises(WireError, match=reason):
        decode_frame(frame)


def test_decode_frame_reads_each_kind():
    m = {**envelope_to_wire(env_of(Ping(1)), 3), "seq": 2, "epoch": "e"}
    got = decode_frame(m)
    assert isinstance(got, MsgFrame) and (got.epoch, got.seq, got.clock) == ("e", 2, 3)
    assert envelope_from_frame(got, allowed) == env_of(Ping(1))
    assert decode_frame({"t": "epochs", "live": ["a", "b"]}) == EpochsFrame(("a", "b"))
    assert decode_frame({"t": "state", "instance": "x"}) == Request("state", "x")
    assert decode_frame({"t": "stop"}) == Request("stop")
    assert decode_ack({"t": "ack", "seq": 3}) == AckFrame(None, (3,))
    assert decode_ack({"t": "acks", "seqs": [3, 1, 9], "epoch": "e"}) == AckFrame("e", (3, 1, 9))


# --- authentication over real loopback TCP ------------------------------------------------

async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class Server:
    """A real TCP server on 127.0.0.1 that authenticates each connection as the responder."""

    def __init__(self, secret: bytes, name: str = "server", timeout: float = 5.0,
                 after: Any = None) -> None:
        self.secret, self.name, self.timeout, self.after = secret, name, timeout, after
        self.results: asyncio.Queue = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            session = await authenticate(reader, writer, self.secret, self.name,
                                         initiator=False, timeout=self.timeout)
            peer: Any = session.peer
            if self.after is not None:
                peer = (peer, await self.after(session))
            await self.results.put(peer)
        except Exception as e:
            await self.results.put(e)
        finally:
            await close(writer)

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def result(self) -> Any:
        return await asyncio.wait_for(self.results.get(), 5)


async def client(port: int, secret: bytes, name: str = "client", timeout: float = 5.0
                 ) -> str | Exception:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        session = await authenticate(reader, writer, secret, name, initiator=True,
                                     timeout=timeout)
        return session.peer
    except Exception as e:
        return e
    finally:
        await close(writer)


def test_the_right_secret_authenticates_both_sides():
    async def main() -> None:
        async with Server(b"s3cret", "node-b") as srv:
            got = await client(srv.port, b"s3cret", "node-a")
            assert got == "node-b"
            assert await srv.result() == "node-a"
    run(main())


def test_frames_flow_on_the_connection_after_authentication():
    async def main() -> None:
        async def read_one(session: Session) -> Any:
            d = await session.read()
            return envelope_from_wire(d, allowed)

        async with Server(b"k", "b", after=read_one) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            session = await authenticate(reader, writer, b"k", "a", initiator=True)
            assert session.peer == "b"
            session.write(envelope_to_wire(env_of(big()), 3))
            await session.drain()
            assert await srv.result() == ("a", (env_of(big()), 3))
            await close(writer)
    run(main())


def test_a_wrong_secret_fails_on_both_sides():
    async def main() -> None:
        async with Server(b"right") as srv:
            got = await client(srv.port, b"wrong")
            assert isinstance(got, AuthError) and "failed to prove" in str(got)
            err = await srv.result()
            assert isinstance(err, AuthError) and "failed to prove" in str(err)
    run(main())


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",               # a huge length prefix
    raw(b"not json at all"),
    encode_frame({"t": "proof", "mac": "00" * 32}),     # no hello first
    encode_frame({"t": "hello", "v": VERSION, "node": "x"}),          # no nonce
    encode_frame({"t": "hello", "v": VERSION, "node": "", "nonce": "ab" * 32}),
    encode_frame({"t": "hello", "v": VERSION, "node": 5, "nonce": "ab" * 32}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "zz" * 32}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "ab" * 8}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "ab" * 32, "more": 1}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "ab" * 32})
    + encode_frame({"t": "proof", "mac": "not hex"}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "ab" * 32})
    + encode_frame({"t": "proof", "mac": "00" * 32}),
    encode_frame({"t": "hello", "v": VERSION, "node": "x", "nonce": "ab" * 32}) + b"\x00\x00",
    b"\x00\x00",
    b"",
])
def test_a_client_sending_garbage_is_refused(garbage):
    async def main() -> None:
        async with Server(b"k", timeout=2) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(garbage)
            await writer.drain()
            writer.write_eof()
            err = await srv.result()
            assert isinstance(err, AuthError), err
            await close(writer)
    run(main())


def test_a_silent_client_times_out():
    async def main() -> None:
        async with Server(b"k", timeout=0.3) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            err = await srv.result()
            assert isinstance(err, AuthError) and "within 0.3 s" in str(err)
            await close(writer)
    run(main())


def test_a_silent_server_times_out_for_the_client():
    async def main() -> None:
        async def mute(reader, writer):
            try:
                await asyncio.sleep(2)
            finally:
                writer.close()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        err = await client(port, b"k", timeout=0.3)
        assert isinstance(err, AuthError)
        server.close()
        await server.wait_closed()
    run(main())


async def split_frames(data: bytes) -> list[dict]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while (f := await read_frame(reader)) is not None:
        out.append(f)
    return out


async def record_a_session(srv: Server) -> tuple[list[dict], list[dict]]:
    """An honest client authenticates to `srv` through a recording proxy: the frames each
    way, as an eavesdropper sees them."""
    recorded = {True: bytearray(), False: bytearray()}

    async def pipe(r, w, upstream: bool) -> None:
        try:
            while data := await r.read(65536):
                recorded[upstream].extend(data)
                w.write(data)
                await w.drain()
        finally:
            await close(w)

    async def proxy(reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", srv.port)
            await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))
        finally:
            writer.close()

    relay = await asyncio.start_server(proxy, "127.0.0.1", 0)
    assert await client(relay.sockets[0].getsockname()[1], b"k") == srv.name
    assert await srv.result() == "client"
    relay.close()
    await relay.wait_closed()
    return (await split_frames(bytes(recorded[True])),
            await split_frames(bytes(recorded[False])))


def test_a_replayed_client_proof_from_an_earlier_session_fails():
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            (hello, proof), _ = await record_a_session(srv)
            assert hello["t"] == "hello" and proof["t"] == "proof"
            # session 2: the eavesdropper replays the client's hello and proof, verbatim
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(encode_frame(hello))
            await writer.drain()
            their_hello = await read_frame(reader)
            assert their_hello["nonce"] != hello["nonce"]
            writer.write(encode_frame(proof))
            await writer.drain()
            err = await srv.result()
            assert isinstance(err, AuthError) and "failed to prove" in str(err)
            await close(writer)
    run(main())


def test_a_replayed_server_proof_from_an_earlier_session_fails():
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            _, (hello, proof) = await record_a_session(srv)

        # session 2: the eavesdropper poses as the server and replays its hello and proof
        async def impostor(reader, writer):
            try:
                writer.write(encode_frame(hello) + encode_frame(proof))
                await writer.drain()
                await reader.read()
            finally:
                writer.close()

        fake = await asyncio.start_server(impostor, "127.0.0.1", 0)
        err = await client(fake.sockets[0].getsockname()[1], b"k")
        assert isinstance(err, AuthError) and "failed to prove" in str(err)
        fake.close()
        await fake.wait_closed()
    run(main())


def test_a_reflected_proof_fails():
    # the attacker opens a connection and sends the server's own proof back as its own (as
    # another node: a peer claiming the server's own name gets no proof at all, see below)
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(encode_frame({"t": "hello", "v": VERSION, "node": "client",
                                       "nonce": "ab" * 32}))
            await writer.drain()
            hello = await read_frame(reader)
            assert hello["t"] == "hello" and hello["node"] == "server"
            proof = await read_frame(reader)
            writer.write(encode_frame(proof))
            await writer.drain()
            err = await srv.result()
            assert isinstance(err, AuthError) and "failed to prove" in str(err)
            await close(writer)
    run(main())


def test_an_echoed_nonce_is_refused():
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            hello = await read_frame(reader)
            writer.write(encode_frame(hello))
            await writer.drain()
            err = await srv.result()
            assert isinstance(err, AuthError) and "reflection" in str(err)
            await close(writer)
    run(main())


def test_a_proof_does_not_transfer_to_another_name():
    # a man in the middle relays the hellos but renames the client: the proof does not verify
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            c_reader, c_writer = await asyncio.open_connection("127.0.0.1", srv.port)
            task = asyncio.create_task(
                authenticate(*await _renaming_pipe(c_reader, c_writer), b"k", "client",
                             initiator=True))
            err = await srv.result()
            assert isinstance(err, AuthError) and "failed to prove" in str(err)
            with pytest.raises(AuthError):
                await task
            await close(c_writer)
    run(main())


async def _renaming_pipe(up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter
                         ) -> tuple[asyncio.StreamReader, Any]:
    """A fake (reader, writer) for the client that rewrites its hello's name to 'admin'."""
    class W:
        def write(self, data: bytes) -> None:
            self.buf = getattr(self, "buf", b"") + data

        async def drain(self) -> None:
            frames = await split_frames(self.buf)
            self.buf = b""
            for f in frames:
                if f["t"] == "hello":
                    f["node"] = "admin"
                up_writer.write(encode_frame(f))
            await up_writer.drain()

    return up_reader, W()


@pytest.mark.parametrize("hello,said", [
    ({"t": "hello", "node": "x", "nonce": "ab" * 32}, "version 1 of the wire protocol"),
    ({"t": "hello", "v": 2, "node": "x", "nonce": "ab" * 32}, "version 2 of the wire protocol"),
])
def test_a_peer_speaking_another_version_of_the_wire_is_told_so(hello, said):
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(encode_frame(hello))
            await writer.drain()
            err = await srv.result()
            assert isinstance(err, AuthError) and said in str(err) and "one version" in str(err)
            await close(writer)
    run(main())


def test_a_peer_claiming_the_verifier_s_own_name_is_refused_before_any_proof():
    async def main() -> None:
        async with Server(b"k", "server") as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(encode_frame({"t": "hello", "v": VERSION, "node": "server",
                                       "nonce": "ab" * 32}))
            await writer.drain()
            assert (await read_frame(reader))["t"] == "hello"
            err = await srv.result()
            assert isinstance(err, AuthError) and "own name 'server'" in str(err)
            assert await read_frame(reader) is None        # no proof was sent
            await close(writer)
    run(main())


def test_a_dialling_side_accepts_only_the_node_it_dialled():
    async def main() -> None:
        async with Server(b"k", "mallory") as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            with pytest.raises(AuthError, match="dialled node 'b'.*'mallory'"):
                await authenticate(reader, writer, b"k", "a", initiator=True, expect="b")
            await close(writer)
            assert isinstance(await srv.result(), AuthError)   # it got no proof either
        async with Server(b"k", "b") as srv:
            assert await client(srv.port, b"k", "a") == "b"
            assert await srv.result() == "a"
    run(main())


# --- sessions: every frame after the handshake MACed, over real loopback TCP ---------------

async def read_all(session: Session) -> list[Any]:
    """Every frame the session reads until EOF, then the error that ended it (if any)."""
    got: list[Any] = []
    try:
        while (f := await session.read()) is not None:
            got.append(f)
    except WireError as e:
        got.append(e)
    return got


def raw_frames(data: bytes) -> list[bytes]:
    """`data` cut into whole frames (4-byte length + that many bytes)."""
    out = []
    while data:
        n = 4 + int.from_bytes(data[:4], "big")
        out.append(data[:n])
        data = data[n:]
    return out


async def through_a_tamperer(frames: list[dict], tamper: Any) -> list[Any]:
    """An honest client authenticates to a server and sends `frames`, through a relay that
    passes the handshake (its first two frames) and gives the rest, as raw frames, to
    `tamper` (a list of bytes -> bytes to send on); what the server's session reads."""
    async with Server(b"k", "server", after=read_all) as srv:
        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", srv.port)
            down = asyncio.create_task(_pipe(up_r, writer))
            for _ in range(2):                     # the client's hello and proof: passed on
                header = await reader.readexactly(4)
                up_w.write(header + await reader.readexactly(int.from_bytes(header, "big")))
            rest = await reader.read()             # the client sends its frames, then EOF
            up_w.write(tamper(raw_frames(rest)))
            await up_w.drain()
            up_w.write_eof()
            await down
            await close(up_w)
            await close(writer)

        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1",
                                                       proxy.sockets[0].getsockname()[1])
        session = await authenticate(reader, writer, b"k", "client", initiator=True)
        session.write(*frames)
        writer.write_eof()
        (_, got) = await srv.result()
        await close(writer)
        proxy.close()
        await proxy.wait_closed()
        return got


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await r.read(65536):
            w.write(data)
            await w.drain()


FRAMES = [{"t": "status"}, {"t": "state", "instance": "x"}, {"t": "stop"}]


def test_sealed_frames_pass_an_honest_relay_in_order():
    assert run(through_a_tamperer(FRAMES, lambda fs: b"".join(fs))) == FRAMES


@pytest.mark.parametrize("tamper,error", [
    # one byte of the second frame's payload changed
    (lambda fs: fs[0] + fs[1][:-3] + b"X" + fs[1][-2:] + fs[2], "frame 1 has a bad MAC"),
    # a frame's MAC changed
    (lambda fs: fs[0] + fs[1][:12] + bytes(16) + fs[1][28:], "frame 1 has a bad MAC"),
    # the first frame replayed after the second
    (lambda fs: fs[0] + fs[1] + fs[0], "number 0 is out of order (expected 2)"),
    # the second frame dropped
    (lambda fs: fs[0] + fs[2], "number 2 is out of order (expected 1)"),
    # the frames swapped
    (lambda fs: fs[1] + fs[0], "number 1 is out of order (expected 0)"),
], ids=["altered", "mac-altered", "replayed", "dropped", "reordered"])
def test_a_tampered_frame_stops_the_session_before_it_is_used(tamper, error):
    got = run(through_a_tamperer(FRAMES, tamper))
    assert isinstance(got[-1], FrameAuthError) and error in str(got[-1]), got
    assert all(f in FRAMES for f in got[:-1])         # nothing tampered with was returned


@pytest.mark.parametrize("epoch,seq", [("0123456789abcdef", 1), ("a_b.c-D", 2**63 - 1),
                                       ("x" * 64, 7)])
def test_an_ack_payload_is_the_encoder_s_bytes_and_decodes_back(epoch, seq):
    from assay.runtime.wire import ack_payload, decode_ack, decode_payload, encode_payload

    p = ack_payload(epoch, seq)
    assert p == encode_payload({"t": "ack", "seq": seq, "epoch": epoch})
    a = decode_ack(decode_payload(p))
    assert (a.epoch, a.seqs) == (epoch, (seq,))


@given(st.sampled_from(["0123456789abcdef", "a_b.c-D", "x" * 64]),
       st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=2 * MAX_ACKS + 3))
@settings(max_examples=60, deadline=None)
def test_acks_payloads_are_the_encoder_s_bytes_and_decode_back(epoch, seqs):
    """Several acknowledgements of one life go in one `acks` frame (up to MAX_ACKS numbers
    each); one alone is an `ack` frame: the bytes are the encoder's, and decode to the same
    numbers in the same order."""
    from assay.runtime.wire import decode_payload, encode_payload

    payloads = acks_payloads(epoch, seqs)
    got: list[int] = []
    for p in payloads:
        d = decode_payload(p)
        assert p == encode_payload(d)
        a = decode_ack(d)
        assert a.epoch == epoch and 0 < len(a.seqs) <= MAX_ACKS
        got.extend(a.seqs)
    assert got == seqs
    assert len(payloads) == (len(seqs) + MAX_ACKS - 1) // MAX_ACKS
    assert (decode_payload(payloads[0])["t"] == "ack") == (len(seqs) == 1)


@pytest.mark.parametrize("frame,reason", [
    ({"t": "acks", "seqs": [], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [1] * (MAX_ACKS + 1), "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": 1, "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [1, 0], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [1, True], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [1, 2.0], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [2**63], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": ["1"], "epoch": "e"}, "'seqs'"),
    ({"t": "acks", "seqs": [1]}, "'epoch'"),
    ({"t": "acks", "seqs": [1], "epoch": "a b"}, "'epoch'"),
    ({"t": "acks", "seqs": [1], "epoch": "e", "x": 1}, "unexpected"),
    ({"t": "acks", "seq": 1, "epoch": "e"}, "needs 'seqs'"),
    ({"t": "ackz", "seqs": [1], "epoch": "e"}, "only acknowledgements"),
    ([1], "only acknowledgements"),
])
def test_decode_ack_refuses_a_bad_acks_frame_with_a_reason(frame, reason):
    with pytest.raises(WireError, match=reason):
        decode_ack(frame)


@pytest.mark.parametrize("key_len", [1, 32, 64, 65, 200])
def test_a_frame_s_mac_is_hmac_sha256_truncated(key_len):
    """The per-frame MAC (two hash states copied, `_hmac_pads`) is the standard HMAC-SHA256
    of (direction, number, payload) under the connection's key, cut to 128 bits."""
    import hashlib
    import hmac

    from assay.runtime.wire import _hmac_pads

    key = bytes(range(256))[:key_len]
    s = Session.__new__(Session)
    s._inner, s._outer = _hmac_pads(key)
    for n, payload in [(0, b""), (1, b'{"t":"stop"}'), (2**40, os.urandom(300))]:
        want = hmac.new(key, b"i>r" + n.to_bytes(8, "big") + payload,
                        hashlib.sha256).digest()[:16]
        assert s._tag(b"i>r", n, payload) == want


@pytest.mark.parametrize("initiator", [True, False])
def test_a_sealed_frame_carries_the_standard_hmac_and_opens_only_the_other_way(initiator):
    """What `seal` writes and `_open` verifies (each direction's inner hash state made once,
    its direction hashed in) is HMAC-SHA256 of (direction, number, payload), cut to 128
    bits; a frame opens on the other side of the connection, not on its own."""
    import hashlib
    import hmac

    class Writer:
        def get_extra_info(self, _):
            return None

    key = os.urandom(32)
    me, other, mirror = (Session(None, Writer(), "x", key, i)  # type: ignore[arg-type]
                         for i in (initiator, not initiator, initiator))
    direction = b"i>r" if initiator else b"r>i"
    for n, payload in enumerate([b'{"t":"stop"}', b"{}", b'{"a":"' + b"b" * 500 + b'"}']):
        frame = me.seal(payload)
        body = frame[4:]
        assert body[:8] == n.to_bytes(8, "big") and body[24:] == payload
        assert body[8:24] == hmac.new(key, direction + body[:8] + payload,
                                      hashlib.sha256).digest()[:16]
        assert other._open(memoryview(body)) == json.loads(payload)
        with pytest.raises(FrameAuthError, match="bad MAC"):
            mirror._open(memoryview(body))           # sent back the way it came
        mirror._received = n + 1


def test_a_forged_frame_numbered_as_the_next_one_has_a_bad_mac():
    payload = b'{"t":"stop"}'
    forged = (8 + 16 + len(payload)).to_bytes(4, "big") + (1).to_bytes(8, "big") \
        + bytes(16) + payload
    got = run(through_a_tamperer(FRAMES[:1], lambda fs: fs[0] + forged))
    assert got[0] == FRAMES[0]
    assert isinstance(got[1], FrameAuthError) and "frame 1 has a bad MAC" in str(got[1])


def test_a_frame_from_another_connection_or_sent_back_the_way_it_came_does_not_verify():
    async def main() -> None:
        sent: list[bytes] = []

        def keep(fs: list[bytes]) -> bytes:
            sent.extend(fs)
            return b"".join(fs)

        await through_a_tamperer(FRAMES[:1], keep)
        # frame 0 of an earlier connection, on a new one: other nonces, another key
        got = await through_a_tamperer(FRAMES[:1], lambda fs: sent[0])
        assert isinstance(got[0], FrameAuthError) and "bad MAC" in str(got[0])

        # a frame the server sent, fed back to the server as the client's: the direction
        # is in the MAC
        async def echo_back(session: Session) -> Any:
            session.write({"t": "stop"})
            await session.drain()
            return await read_all(session)

        async with Server(b"k", "server", after=echo_back) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            session = await authenticate(reader, writer, b"k", "client", initiator=True)
            header = await reader.readexactly(4)
            writer.write(header + await reader.readexactly(int.from_bytes(header, "big")))
            writer.write_eof()
            (_, back) = await srv.result()
            assert isinstance(back[0], FrameAuthError) and "bad MAC" in str(back[0])
            assert session.peer == "server"
            await close(writer)

    run(main())


def test_both_names_are_checked_as_arguments():
    async def main() -> None:
        r = asyncio.StreamReader()
        with pytest.raises(ValueError):
            await authenticate(r, None, b"", "me", True)   # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await authenticate(r, None, b"k", "", True)    # type: ignore[arg-type]
    run(main())
