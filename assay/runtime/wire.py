"""The wire between nodes: length-prefixed JSON frames, a typed decoder, mutual authentication,
and a MAC on every frame after it.

A frame is a 4-byte big-endian unsigned length followed by that many bytes.  During the
handshake they are UTF-8 JSON whose top-level value is an object; after it, each is an 8-byte
number and a 16-byte MAC before that JSON (`Session`).  Nothing read from the network is ever
evaluated or unpickled: a frame is parsed by `json` (strictly: no NaN/Infinity, no duplicate
keys), its fields checked by kind (`decode_frame`: every number an int in range), and a
message is decoded only into one of the classes the receiving port declares, every field by
its declared type (`message_from_json`), then checked against those types again
(`Message.bad_field`), bounds included.

`authenticate` is a mutual HMAC-SHA256 challenge-response over a shared secret.  Each side
sends a fresh 32-byte nonce and its name, then proves knowledge of the secret with a MAC over
the whole transcript: the prover's role (initiator or responder), both names and both nonces.
A proof from an earlier session does not verify (the verifier's nonce is fresh), a proof
reflected back at its author does not verify (the role differs), and a proof cannot be
re-targeted at another name.  The role alone does not stop a node's two handshakes being
relayed into each other (its outgoing connection's and its server's, each proof answering the
other), so no peer may claim the verifier's own name, and a dialling side accepts only the
name of the node it dialled.

After the handshake, every frame carries HMAC-SHA256 (truncated to 128 bits) over its
direction, its number on the connection and its payload, with a key derived from the secret,
both names and both nonces (`frame_key`): a frame altered, forged, reordered, dropped or
replayed within a connection does not verify, nor does one from another connection (other
nonces, another key), nor one sent back the way it came (the direction differs).  Frames are
authenticated and integrity-protected, NOT encrypted: anyone on the path reads them (use a
tunnel or TLS for confidentiality).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.kernel.events import Envelope
from assay.model.frozen import fast_init
from assay.model.message import Message, message_from_json
from assay.model.record import Record
from assay.model.types import TypeSpec, _FrozenSet, _Map, _Optional, _Record, _Tuple, to_json
from assay.runtime.deploy import NAME_MAX as _NAME_MAX

# of the wire protocol (1: frames without MACs; 2: one acknowledgement per frame; 3:
# acknowledgements only on the connection their frames came on, not with a node's messages)
VERSION = 4
MAX_FRAME = 1 << 20                      # bytes of payload
_HEADER = 4
_AUTH_MAX_FRAME = 4096                   # handshake frames are small; don't buffer more
_NONCE_BYTES = 32
_MSG_KEYS = frozenset({"t", "src", "src_port", "dst", "dst_port", "clock", "message"})
_MSG_OPTIONAL = frozenset({"meta"})       # what interceptors piggy-back (absent: none)
_MSG_KEYS_META = _MSG_KEYS | _MSG_OPTIONAL
_MSG_FRAME = _MSG_KEYS | {"seq", "epoch"}  # a `msg` frame as a node's server reads it
_MSG_FRAME_META = _MSG_FRAME | _MSG_OPTIONAL


class WireError(Exception):
    """A frame or a message that does not follow the wire format (the reason says how)."""


class AuthError(WireError):
    """The peer did not prove that it holds the shared secret (or did not finish in time)."""


class AuthIncomplete(AuthError):
    """The handshake did not finish: the connection failed, or the peer took too long."""


# --- frames ---------------------------------------------------------------------------------

def encode_payload(obj: dict) -> bytes:
    """`obj` as a frame's payload: compact, key-sorted JSON (ASCII-only, so any Python str
    encodes, lone surrogates included).  Raises `WireError` if `obj` is not a JSON object of
    JSON values, or if the payload exceeds `MAX_FRAME`."""
    if not isinstance(obj, dict):
        raise WireError(f"a frame is a JSON object, not {type(obj).__name__}")
    try:
        payload = _encode(obj).encode("ascii")
    except (TypeError, ValueError, RecursionError) as e:
        raise WireError(f"cannot encode the frame as JSON: {e}") from None
    if len(payload) > MAX_FRAME:
        raise WireError(f"frame of {len(payload)} bytes exceeds the limit of {MAX_FRAME}")
    return payload


def encode_frame(obj: dict) -> bytes:
    """`obj` as one plain frame (the handshake's): 4-byte big-endian length + its payload
    (`encode_payload`)."""
    payload = encode_payload(obj)
    return len(payload).to_bytes(_HEADER, "big") + payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return d


def c_encoder(base: json.JSONEncoder) -> Callable[[Any], str]:
    """`base.encode` for the JSON objects a node builds (a frame, a step log's event), made
    once: `JSONEncoder.encode` makes a new C encoder (`c_make_encoder`) on every call, a
    third of its cost for a message frame.  The C encoder is made here with `base`'s
    settings, as `JSONEncoder.iterencode` makes it, where this Python's `c_make_encoder` takes
    the arguments it does in 3.11 to 3.13 and writes what `base.encode` writes on a sample;
    else `base.encode` itself.  `base` must have no cycle check (a tree the node built) and
    no indent."""
    if base.check_circular or base.indent is not None:
        raise ValueError("c_encoder: an encoder without a cycle check or indent")
    try:
        from json import encoder

        make: Any = encoder.c_make_encoder      # type: ignore[attr-defined]
        c = make(None, base.default,
                 encoder.encode_basestring_ascii if base.ensure_ascii
                 else encoder.encode_basestring,
                 None, base.key_separator, base.item_separator, base.sort_keys,
                 base.skipkeys, base.allow_nan)
        sample = {"kind": "deliver", "n": [1, -2.5, None, True, False], "s": "é\"\n\ud800",
                  "m": {"type": "Ping", "fields": {"n": 10 ** 30}}, "e": {}, "l": [],
                  "b": {"z": 1, "a": [{"y": "", "x": 0}]}}
        if "".join(c(sample, 0)) != base.encode(sample):
            return base.encode
    except Exception:          # noqa: BLE001 - no C encoder, or another signature
        return base.encode
    join = "".join
    return lambda obj: join(c(obj, 0))


# built once: `json.dumps`/`json.loads` with options build a new encoder/decoder per call
# (no cycle check: a frame is a tree the node built; a cycle would be a RecursionError, which
# `encode_payload` reports like the rest)
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True,
                            allow_nan=False, check_circular=False)
_encode = c_encoder(_ENCODER)
_DECODER = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def decode_payload(payload: bytes | memoryview) -> dict:
    """The JSON object of a frame's payload, or `WireError`."""
    try:
        text = str(payload, "utf-8")              # (bytes, or a memoryview of a frame)
    except UnicodeDecodeError as e:
        raise WireError(f"frame payload is not UTF-8: {e}") from None
    try:
        try:
            # the C scanner itself: `JSONDecoder.decode` is two Python calls and two regex
            # matches around it, for the whitespace a node never writes before or after
            obj, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):          # not one JSON value alone: `decode` says what it is
            obj = _DECODER.decode(text)
    except RecursionError:
        raise WireError("frame payload is nested too deeply") from None
    except ValueError as e:       # JSONDecodeError is a ValueError
        raise WireError(f"frame payload is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise WireError(f"frame payload is a JSON {type(obj).__name__}, not an object")
    return obj


async def _read_body(reader: asyncio.StreamReader, max_size: int) -> bytes | None:
    """The bytes of the next frame after its length; None on a clean EOF (before any byte
    of a frame).  `WireError` on a truncated frame or a declared length above `max_size`
    (the rest is then left unread: close the connection)."""
    try:
        header = await reader.readexactly(_HEADER)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise WireError(f"connection closed inside a frame header "
                        f"({len(e.partial)} of {_HEADER} bytes)") from None
    size = int.from_bytes(header, "big")
    if size > max_size:
        raise WireError(f"frame of {size} bytes exceeds the limit of {max_size}")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as e:
        raise WireError(f"connection closed inside a frame ({len(e.partial)} of {size} "
                        "payload bytes)") from None


async def read_frame(reader: asyncio.StreamReader, max_size: int = MAX_FRAME) -> dict | None:
    """The next plain frame's object (the handshake's); None on a clean EOF (before any byte
    of a frame).

    Raises `WireError` on a truncated frame, a declared length above `max_size` (the payload
    is then left unread: close the connection), a payload that is not UTF-8 JSON, or a JSON
    value that is not an object.  Connection errors (`OSError`) propagate as they are."""
    payload = await _read_body(reader, max_size)
    return None if payload is None else decode_payload(payload)


# --- sessions: every frame after the handshake numbered and MACed -------------------------------

_COUNTER = 8                             # bytes: the frame's number on its connection
_TAG = 16                                # bytes: HMAC-SHA256 truncated to 128 bits
_SEALED = _COUNTER + _TAG


class FrameAuthError(WireError):
    """A frame after the handshake whose MAC does not verify, or that is out of order: it
    was altered, forged, replayed, or dropped on the way.  Close the connection."""


def address_of(writer: asyncio.StreamWriter) -> str:
    """The other end of a connection, as host:port (for the log)."""
    name = writer.get_extra_info("peername")
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) and len(name) >= 2 else "?"


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 under `key` (RFC 2104) as its two hash states after the padded key: a
    frame's MAC is then two copies and three C calls (`hmac.HMAC.copy` per frame cost twice
    that, in Python code; the bytes are the same, see `tests/test_wire.py`)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)),
            hashlib.sha256(bytes(b ^ 0x5C for b in key)))


def _ignore(_: Any) -> None:
    pass


def _nothing() -> None:
    pass


class WireProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, for the handshake (its `StreamReader` and `StreamWriter`,
    `drain`'s flow control included), that hands what arrives after it to its `Session`
    once that reads by callbacks (`Session.receive`): frames are then parsed in
    `data_received` itself, with no reader task to wake per frame."""

    def __init__(self, reader: asyncio.StreamReader, connected: Any = None) -> None:
        super().__init__(reader, connected)
        self.session: Session | None = None
        self.eof = False                 # the peer sent EOF (before `receive`, say)
        self.lost = False                # the connection is gone

    def data_received(self, data: bytes) -> None:
        s = self.session
        if s is None:
            super().data_received(data)
        else:
            s._data(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        s = self.session
        if s is None:
            return super().eof_received()
        s._eof()
        return True                      # half-closed: replies still go out (`_finish` closes)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        super().connection_lost(exc)     # (drain's waiters, the reader: as asyncio's)
        s = self.session
        if s is not None:
            if exc is None:
                s._eof()
            else:
                s._finish(exc)


async def open_connection(host: str, port: int) -> tuple[asyncio.StreamReader,
                                                         asyncio.StreamWriter]:
    """`asyncio.open_connection`, with a `WireProtocol` (so `Session.receive` can read)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = WireProtocol(reader)
    transport, _ = await loop.create_connection(lambda: protocol, host, port)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def start_server(connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
                       host: str, port: int) -> asyncio.Server:
    """`asyncio.start_server`, with a `WireProtocol` per connection."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: WireProtocol(asyncio.StreamReader(loop=loop), connected), host, port)


class Session:
    """An authenticated connection (what `authenticate` returns): `peer` is the name the
    other side proved.  Every frame on it is numbered per direction and carries a MAC, with
    a key only this connection has (derived from the secret, both names and both nonces):

        4-byte length | 8-byte number | 16-byte MAC | payload (JSON)

    the MAC is HMAC-SHA256 over (direction, number, payload), truncated to 128 bits.  A frame
    that does not verify, or whose number is not the next one, is a `FrameAuthError`.  The
    payload is authenticated, not encrypted.

    Frames are numbered when they are encoded (`seal`, `frame`, `write`), so they must be
    written in the order they are encoded: encode and write together, as `write` does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                 key: bytes, initiator: bool) -> None:
        self.reader, self.writer, self.peer = reader, writer, peer
        self._inner, self._outer = _hmac_pads(key)      # keyed once, copied per frame
        self._out, self._in = (b"i>r", b"r>i") if initiator else (b"r>i", b"i>r")
        # the inner hash state of each direction's MACs, its direction hashed in once
        self._inner_out, self._inner_in = self._inner.copy(), self._inner.copy()
        self._inner_out.update(self._out)
        self._inner_in.update(self._in)
        self._sent = 0
        self._received = 0
        self.address = address_of(writer)
        # reading by callbacks (`receive`): the bytes not handled yet, and the state
        self._buf = bytearray()
        self._need = _HEADER                      # bytes `_buf` must hold to be parsed
        self._limit = MAX_FRAME + _SEALED
        self._holding = self._paused = self._ended = self._eof_pending = False
        self._on_frame: Callable[[dict], None] = _ignore
        self._on_batch: Callable[[], None] = _nothing
        self._on_end: Callable[[BaseException | None], None] = _ignore

    def _tag(self, direction: bytes, n: int, payload: bytes) -> bytes:
        return self._mac(self._inner, direction + n.to_bytes(_COUNTER, "big"), payload)

    def _mac(self, start: Any, head: bytes | memoryview, payload: bytes | memoryview) -> bytes:
        """The MAC of a frame: `start` is the inner hash state after the padded key (and
        maybe more of the frame), `head` the rest of its direction and number (8 bytes,
        big-endian), before `payload`."""
        inner = start.copy()
        inner.update(head)
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_TAG]

    def seal(self, payload: bytes) -> bytes:
        """`payload` as the next frame this side sends: numbered and MACed."""
        n = self._sent
        self._sent += 1
        number = n.to_bytes(_COUNTER, "big")
        return b"".join(((_COUNTER + _TAG + len(payload)).to_bytes(_HEADER, "big"), number,
                         self._mac(self._inner_out, number, payload), payload))

    def frame(self, obj: dict) -> bytes:
        """`obj` as the next frame this side sends (see `encode_payload`)."""
        return self.seal(encode_payload(obj))

    def write(self, *objs: dict, payloads: list[bytes] | None = None) -> None:
        """Encode `objs` as the next frames and write them at once (in one write); with
        `payloads` (each as `encode_payload` makes them), those first, in the same write."""
        if payloads:
            self.writer.write(b"".join([*map(self.seal, payloads),
                                        *(self.seal(encode_payload(o)) for o in objs)]))
        elif len(objs) == 1:
            self.writer.write(self.seal(encode_payload(objs[0])))
        else:
            self.writer.write(b"".join([self.seal(encode_payload(o)) for o in objs]))

    def write_payloads(self, payloads: list[bytes]) -> None:
        """`payloads` (each as `encode_payload` makes them) as the next frames, in one
        write."""
        self.writer.write(b"".join(self.seal(p) for p in payloads))

    async def drain(self) -> None:
        await self.writer.drain()

    async def read(self, max_size: int = MAX_FRAME) -> dict | None:
        """The next frame's object, checked like `read_frame`'s and first authenticated:
        None on a clean EOF; `FrameAuthError` if its MAC does not verify or it is not the
        next number; `WireError` for the rest.  (Not after `receive`.)"""
        body = await _read_body(self.reader, max_size + _SEALED)
        return None if body is None else self._open(body)

    def _open(self, body: bytes | memoryview) -> dict:
        """The object of one received frame's `body` (number, MAC, payload), authenticated
        and decoded (`read`'s checks, in one place for both ways of reading)."""
        if len(body) < _SEALED:
            raise FrameAuthError(f"a frame of {len(body)} bytes has no room for its number "
                                 "and MAC")
        number = body[:_COUNTER]
        n = int.from_bytes(number, "big")
        payload = body[_SEALED:]
        if n != self._received:
            raise FrameAuthError(f"frame number {n} is out of order (expected "
                                 f"{self._received}): replayed, dropped or injected")
        if not hmac.compare_digest(body[_COUNTER:_SEALED],
                                   self._mac(self._inner_in, number, payload)):
            raise FrameAuthError(f"frame {n} has a bad MAC: altered or forged")
        self._received += 1
        return decode_payload(payload)

    # --- reading by callbacks (`receive`) ------------------------------------------------------

    async def receive(self, on_frame: Callable[[dict], None],
                      on_end: Callable[[BaseException | None], None],
                      on_batch: Callable[[], None] | None = None,
                      max_size: int = MAX_FRAME) -> None:
        """From now on, read the connection's frames as they arrive, in its protocol's
        `data_received` (`WireProtocol`): no reader task, so a frame costs no task wake-up
        (nor the event-loop turn before it).  Each frame, checked as `read` checks it, goes
        to `on_frame`; after the whole frames of one arrival (read together: one group for
        the node), `on_batch` runs (if given).  `on_end` runs once, when the connection
        ends: None on a clean EOF, else why (a `WireError` from a frame, or raised by
        `on_frame`: the connection is then closed and nothing more of it is read; a
        connection error).

        The frames the handshake's reader had buffered already are handled first, in order.
        The connection must have been opened with `open_connection` or `start_server`."""
        proto = self.writer.transport.get_protocol()
        if not isinstance(proto, WireProtocol):
            raise TypeError("Session.receive needs a connection made by wire.open_connection "
                            "or wire.start_server")
        self._on_frame, self._on_end = on_frame, on_end
        self._loop = asyncio.get_running_loop()
        self._on_batch = _nothing if on_batch is None else on_batch
        self._limit = max_size + _SEALED
        self._holding = True                      # bytes arriving meanwhile wait behind
        proto.session = self                      # what the reader holds
        eof = proto.eof
        try:
            self.reader.feed_eof()                # (no more bytes go to it)
            rest = await self.reader.read()
        except Exception as e:                    # noqa: BLE001 - lost during the handshake
            self._finish(e)
            return
        self._buf[:0] = rest
        self._holding = False
        self._resumed()
        if eof or proto.lost:
            self._eof()

    def _data(self, data: bytes) -> None:
        """Bytes arrived (`WireProtocol.data_received`)."""
        if self._ended:
            return
        buf = self._buf
        if buf or self._holding or self._paused:
            buf += data
            # a frame arriving in pieces is parsed once whole (its header says how long)
            if len(buf) >= self._need and not self._holding and not self._paused:
                data = bytes(buf)
                buf.clear()
                self._parse(data)
        else:
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        """Handle the whole frames of `data` (until paused or ended; the rest is kept for
        later), then `on_batch`."""
        view = memoryview(data)        # (of bytes: slices share them, nothing is copied)
        pos, end = 0, len(data)
        limit = self._limit
        try:
            while end - pos >= _HEADER:
                if self._paused or self._ended:
                    break
                size = int.from_bytes(view[pos:pos + _HEADER], "big")
                if size > limit:
                    raise WireError(f"frame of {size} bytes exceeds the limit of "
                                    f"{limit - _SEALED}")
                stop = pos + _HEADER + size
                if stop > end:
                    self._need = stop - pos
                    break
                body = view[pos + _HEADER:stop]
                pos = stop
                self._on_frame(self._open(body))
            else:
                self._need = _HEADER
            if pos < end and not self._ended:
                self._buf += view[pos:]
            if not self._ended:
                self._on_batch()
        except Exception as e:                    # noqa: BLE001 - the connection ends
            self._finish(e)

    def pause(self) -> None:
        """Handle no more frames (and read no more) until `resume`: back-pressure."""
        if not self._paused and not self._ended:
            self._paused = True
            self._transport().pause_reading()

    def resume(self) -> None:
        """Read again after `pause`: the frames buffered meanwhile are handled soon (in
        their own turn of the loop, not in the caller's)."""
        if self._paused and not self._ended:
            self._paused = False
            transport = self._transport()
            if not transport.is_closing():
                transport.resume_reading()
            if not self._loop.is_closed():
                self._loop.call_soon(self._resumed)

    def _transport(self) -> asyncio.Transport:
        t = self.writer.transport
        assert isinstance(t, asyncio.Transport)
        return t

    def _resumed(self) -> None:
        if self._paused or self._ended or self._holding:
            return
        if self._eof_pending:
            self._eof()
        elif self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._parse(data)

    def _eof(self) -> None:
        """The peer sent EOF, or the connection is gone (`WireProtocol`): once the frames
        before it are handled, a clean end, unless it came inside a frame."""
        if self._ended:
            return
        self._eof_pending = True
        if self._paused or self._holding:         # the frames before it are handled first
            return
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._parse(data)
            if self._paused or self._ended:
                return
        buf = self._buf
        if not buf:
            self._finish(None)
        elif len(buf) < _HEADER:
            self._finish(WireError(f"connection closed inside a frame header "
                                   f"({len(buf)} of {_HEADER} bytes)"))
        else:
            self._finish(WireError(
                f"connection closed inside a frame ({len(buf) - _HEADER} of "
                f"{int.from_bytes(buf[:_HEADER], 'big')} payload bytes)"))

    def _finish(self, why: BaseException | None) -> None:
        """End reading (once): tell `on_end`, and close the connection."""
        if self._ended:
            return
        self._ended = True
        self._buf.clear()
        try:
            self._on_end(why)
        finally:
            self.writer.close()

    def is_closing(self) -> bool:
        return self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


# --- the frames nodes exchange ------------------------------------------------------------------
#
# Every number in a frame is checked here, before anything uses it: an int (not a bool, not a
# float), 0 <= n < 2**63, so that it fits SQLite's INTEGER (a larger one raised OverflowError
# in the store, and the node exited).  A Lamport clock stays below 2**62, so that the steps of
# a node that adopts it stay below 2**63 too; a node adopts a clock only up to 2**61
# (`CLOCK_ADOPT`), so that what it sends stays below 2**62: a peer that sent 2**62 - 1 made
# every frame the adopting node sent after it one its peers refuse, for good (the clock is
# saved).  A frame that breaks these rules is a `WireError`: the node logs it and closes the
# connection (see `TcpNode._serve_connection`).

INT_LIMIT = 1 << 63                      # exclusive: SQLite's INTEGER
CLOCK_LIMIT = 1 << 62                    # exclusive: room for 2**62 further steps
CLOCK_ADOPT = 1 << 61                    # the most adopted: 2**61 steps of room (never met)
_EPOCH = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def wire_int(v: Any, what: str, low: int = 0, limit: int = INT_LIMIT) -> int:
    """`v` if it is an int in `low <= v < limit` (a bool is not); `WireError` otherwise."""
    if type(v) is not int or not low <= v < limit:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        raise WireError(f"{what!r} must be an int in {low}..2**{limit.bit_length() - 1} - 1, "
                        f"got {shown}")
    return v


def wire_epoch(v: Any, what: str = "epoch") -> str:
    """`v` if it names a sender's life: 1 to 64 letters, digits, '_', '.' or '-'."""
    if not isinstance(v, str) or not _EPOCH.fullmatch(v):
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        raise WireError(f"{what!r} must be 1 to 64 letters, digits, '_', '.' or '-', got {shown}")
    return v


def _keys(d: dict, kind: str, required: set[str], optional: frozenset[str] = frozenset()
          ) -> None:
    missing = sorted(required - set(d))
    if missing:
        raise WireError(f"a {kind} frame needs {missing[0]!r}")
    extra = sorted(set(d) - required - optional)
    if extra:
        raise WireError(f"a {kind} frame has an unexpected key {extra[0]!r}")


@fast_init
@dataclass(frozen=True, slots=True)
class MsgFrame:
    """A message from another node: its sender's life (`epoch`) and number in it (`seq`),
    the sender's Lamport `clock`, and the frame as read (`raw`, its transport fields checked
    by `decode_frame`; the envelope in it for `envelope_from_frame`)."""

    epoch: str
    seq: int
    clock: int
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AckFrame:
    """The receiver handled the messages `seqs` of the sender's life `epoch` (None: the
    current): an `ack` frame names one, an `acks` frame up to `MAX_ACKS` of one life."""

    epoch: str | None
    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EpochsFrame:
    """The sender's lives that may still send (or resend) frames: its own, and those with
    frames not yet acknowledged (a receiver forgets what it handled of the others)."""

    live: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Request:
    """A control request: `state` (of `instance`), `status` or `stop`."""

    kind: str
    instance: str | None = None


Frame = MsgFrame | EpochsFrame | Request
MAX_LIVE = 64                            # lives listed in one `epochs` frame


def decode_frame(d: dict) -> Frame:
    """What a node's server reads after authentication, checked (see above), or `WireError`.
    A message's envelope is checked apart (`envelope_from_frame`): a frame whose transport
    fields are sound but whose message does not fit is dropped and acknowledged."""
    if not isinstance(d, dict):
        raise WireError(f"a frame is an object, not {type(d).__name__}")
    t = d.get("t")
    if t == "msg":
        keys = d.keys()
        if keys != _MSG_FRAME and keys != _MSG_FRAME_META:      # (no set built: the usual)
            _keys(d, "msg", set(_MSG_FRAME), _MSG_OPTIONAL)
        seq, clock = d["seq"], d["clock"]
        if type(seq) is not int or not 1 <= seq < INT_LIMIT:
            wire_int(seq, "seq", 1)                         # (raises, saying why)
        if type(clock) is not int or not 0 <= clock < CLOCK_LIMIT:
            wire_int(clock, "clock", 0, CLOCK_LIMIT)
        return MsgFrame(wire_epoch(d["epoch"]), seq, clock, d)   # (no copy without seq, epoch)
    if t == "epochs":
        _keys(d, "epochs", {"t", "live"})
        live = d["live"]
        if not isinstance(live, list) or not 0 < len(live) <= MAX_LIVE:
            raise WireError(f"'live' must be a list of 1 to {MAX_LIVE} epochs")
        return EpochsFrame(tuple(wire_epoch(e, "live") for e in live))
    if t == "state":
        _keys(d, "state", {"t", "instance"})
        inst = d["instance"]
        if not isinstance(inst, str) or not 0 < len(inst) <= _NAME_MAX:
            raise WireError(f"'instance' must be a string of 1 to {_NAME_MAX} characters")
        return Request("state", inst)
    if t in ("status", "stop"):
        _keys(d, str(t), {"t"})
        return Request(str(t))
    raise WireError(f"no frame of type {str(t)[:40]!r} goes to a node")


_ACK_KEYS = frozenset({"t", "seq", "epoch"})
_ACKS_KEYS = frozenset({"t", "seqs", "epoch"})
MAX_ACKS = 1024                          # frame numbers in one `acks` frame


def ack_payload(epoch: str, seq: int) -> bytes:
    """The payload of an acknowledgement, the bytes `encode_payload` gives for
    ``{"t": "ack", "seq": seq, "epoch": epoch}``, without the encoder: `epoch` (checked by
    `wire_epoch` when its frame was read) and an int need no escaping."""
    return b'{"epoch":"%s","seq":%d,"t":"ack"}' % (epoch.encode("ascii"), seq)


def acks_payloads(epoch: str, seqs: list[int]) -> list[bytes]:
    """The payloads acknowledging frames `seqs` (each an int >= 1) of life `epoch`: one
    `ack` frame for one number, else `acks` frames of up to `MAX_ACKS` numbers each — the
    bytes `encode_payload` gives for ``{"t": "acks", "seqs": [...], "epoch": epoch}``."""
    if len(seqs) == 1:
        return [ack_payload(epoch, seqs[0])]
    e = epoch.encode("ascii")
    # (`int.__repr__` writes what b"%d" writes, in one C call per number)
    return [b'{"epoch":"%s","seqs":[%s],"t":"acks"}'
            % (e, ",".join(map(int.__repr__, seqs[i:i + MAX_ACKS])).encode("ascii"))
            for i in range(0, len(seqs), MAX_ACKS)]


def decode_ack(d: dict) -> AckFrame:
    """What a link reads: an acknowledgement (`ack`, or `acks` of one life), checked, or
    `WireError`."""
    t = d.get("t") if isinstance(d, dict) else None
    if t == "acks":
        if d.keys() != _ACKS_KEYS:
            _keys(d, "acks", set(_ACKS_KEYS))
        seqs = d["seqs"]
        if type(seqs) is not list or not 0 < len(seqs) <= MAX_ACKS:
            raise WireError(f"'seqs' must be a list of 1 to {MAX_ACKS} frame numbers")
        for n in seqs:
            if type(n) is not int or not 1 <= n < INT_LIMIT:
                wire_int(n, "seqs", 1)                      # (raises, saying why)
        return AckFrame(wire_epoch(d["epoch"]), tuple(seqs))
    if t != "ack":
        raise WireError("a link reads only acknowledgements")
    if d.keys() != _ACK_KEYS:                   # (no set built: the usual)
        _keys(d, "ack", {"t", "seq"}, frozenset({"epoch"}))
    epoch = d.get("epoch")
    return AckFrame(None if epoch is None else wire_epoch(epoch),
                    (wire_int(d["seq"], "seq", 1),))


_STATUS_COUNTS = ("steps", "unacked", "violation_count", "epochs")


def decode_reply(d: dict | None) -> dict[str, Any] | None:
    """A node's reply to a control request (None at EOF), its numbers checked like any
    frame's, or `WireError`."""
    if d is None:
        return None
    t = d.get("t")
    if t == "status":
        for k in _STATUS_COUNTS:
            if k in d:
                wire_int(d[k], k)
        if not isinstance(d.get("busy", False), bool):
            raise WireError("'busy' must be a bool")
        violations = d.get("violations", [])
        if not isinstance(violations, list) or not all(isinstance(v, dict) for v in violations):
            raise WireError("'violations' must be a list of objects")   # (`run` reads fields)
        peers = d.get("peers", [])
        if not isinstance(peers, list) or not all(isinstance(p, str) and 0 < len(p) <= _NAME_MAX
                                                  for p in peers):
            raise WireError(f"'peers' must be a list of names of 1 to {_NAME_MAX} characters")
    elif t == "state":
        if not isinstance(d.get("fields"), dict):
            raise WireError("a state reply needs 'fields', an object")
    elif t not in ("stopping", "error"):
        raise WireError(f"no reply of type {str(t)[:40]!r}")
    return d


# --- envelopes --------------------------------------------------------------------------------

def envelope_to_wire(env: Envelope, clock: int) -> dict:
    """The wire form of a message in flight, stamped with the sender's logical `clock`."""
    d = {"t": "msg", "src": env.src, "src_port": env.src_port, "dst": env.dst,
         "dst_port": env.dst_port, "clock": clock, "message": env.message.to_json()}
    if env.meta:                      # (an interceptor's only; no empty dict made per frame)
        d["meta"] = {k: to_json(v) for k, v in env.meta}
    return d


def _check_complete(spec: TypeSpec, j: Any, where: str) -> None:
    """Every record or message object in `j` (decoded by `spec`), however deeply nested in
    tuples, sets, maps and Optionals, names all of its declared fields and nothing else:
    `message_from_json` would fill a missing field with its default, which the wire does not
    allow (a sender always sends every field).  Shapes are left to `from_json` to reject (a
    map's key given twice among them)."""
    if isinstance(spec, _Optional):
        if j is not None:
            _check_complete(spec.inner, j, where)
    elif isinstance(spec, _Record):
        if isinstance(j, dict):
            _check_message(spec.cls, j, where)
    elif isinstance(spec, _Map):
        if isinstance(j, list):
            for i, pair in enumerate(j):
                if isinstance(pair, list) and len(pair) == 2:
                    _check_complete(spec.key, pair[0], f"{where}[{i}].key")
                    _check_complete(spec.value, pair[1], f"{where}[{i}].value")
    elif isinstance(spec, _FrozenSet):
        if isinstance(j, list):
            for i, x in enumerate(j):
                _check_complete(spec.elem, x, f"{where}[{i}]")
    elif isinstance(spec, _Tuple) and isinstance(j, list):
        elems = spec.elems if spec.elems is not None else (spec.rest,) * len(j)
        for i, (t, x) in enumerate(zip(elems, j)):
            if t is not None:
                _check_complete(t, x, f"{where}[{i}]")


_RECORD_KEYS = frozenset({"type", "fields"})


_NESTED = (_Optional, _Record, _Map, _FrozenSet, _Tuple)   # what `_check_complete` looks into


def _wire_plan(cls: type[Record]) -> tuple[frozenset[str], tuple[tuple[str, TypeSpec], ...],
                                          tuple[tuple[str, Callable[[Any], Any]], ...]]:
    """What decoding a record of `cls` needs, worked out once per class (a message is
    decoded per frame): its field names, the fields whose values may hold records
    (`_check_complete` looks only there: a scalar field has none), and each field's decoder
    in declaration order."""
    plan = cls.__dict__.get("__assay_wire_plan__")
    if plan is None:
        types = cls.field_types()
        declared = cls.__assay_fields__
        plan = (frozenset(declared),
                tuple((n, types[n]) for n in declared if isinstance(types[n], _NESTED)),
                tuple((n, types[n].from_json) for n in declared))
        type.__setattr__(cls, "__assay_wire_plan__", plan)
    return plan     # type: ignore[no-any-return]


def _check_message(cls: type[Record], j: dict, where: str
                   ) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Refuse (`WireError`) a record object that does not name exactly `cls`'s fields, or
    whose nested records do not; else `cls`'s field decoders (`_wire_plan`)."""
    if j.keys() != _RECORD_KEYS:
        extra = sorted(set(j) - {"type", "fields"})
        raise WireError(f"{where}: a {cls.__assay_kind__} is {{'type', 'fields'}}; "
                        + (f"unexpected key {extra[0]!r}" if extra else "'fields' is missing"))
    fields = j["fields"]
    if not isinstance(fields, dict):
        raise WireError(f"{where}: 'fields' of a {cls.__name__} must be an object")
    names, nested, decoders = _wire_plan(cls)
    if fields.keys() != names:                  # every declared field, and no other
        declared = cls.__assay_fields__
        missing = [n for n in declared if n not in fields]
        if missing:
            raise WireError(f"{where}: {cls.__name__} is missing field {missing[0]!r}")
        extra = sorted(set(fields) - set(declared))
        raise WireError(f"{where}: {cls.__name__} has no field {extra[0]!r}")
    for n, t in nested:
        _check_complete(t, fields[n], f"{where}.{n}")
    return decoders


def _name(d: dict, key: str) -> str:
    v = d[key]
    if not isinstance(v, str) or not v:
        raise WireError(f"{key!r} must be a non-empty string, got {v!r}")
    return v


def envelope_from_wire(d: dict, allowed: Callable[[str, str], dict[str, type[Message]]]
                       ) -> tuple[Envelope, int]:
    """The envelope and sender clock of a `msg` frame, its message decoded only into one of
    the classes `allowed(dst, dst_port)` returns (by class name); `WireError` otherwise."""
    if not isinstance(d, dict):
        raise WireError(f"a message frame is an object, not {type(d).__name__}")
    if d.get("t") != "msg":
        raise WireError(f"not a message frame (t={d.get('t')!r})")
    keys = d.keys()
    if keys != _MSG_KEYS and keys != _MSG_KEYS_META:
        missing = sorted(_MSG_KEYS - set(d))
        if missing:
            raise WireError(f"message frame is missing {missing[0]!r}")
        extra = sorted(set(d) - _MSG_KEYS - _MSG_OPTIONAL)
        if extra:
            raise WireError(f"message frame has an unexpected key {extra[0]!r}")
    return _envelope(d, allowed, True), d["clock"]


def envelope_from_frame(frame: MsgFrame,
                        allowed: Callable[[str, str], dict[str, type[Message]]]) -> Envelope:
    """The envelope of a `msg` frame `decode_frame` read: what `envelope_from_wire` checks,
    but its keys, kind and clock, which `decode_frame` checked already (the clock is
    `frame.clock`)."""
    return _envelope(frame.raw, allowed, False)


def _envelope(d: dict, allowed: Callable[[str, str], dict[str, type[Message]]],
              check_clock: bool) -> Envelope:
    """The envelope of a message frame `d` whose keys and kind are checked: its meta, names,
    clock (if `check_clock`: else checked already) and message checked here, in that order
    (`envelope_from_wire`), or `WireError`."""
    meta = _meta(d["meta"]) if "meta" in d else ()
    src, src_port, dst, dst_port = d["src"], d["src_port"], d["dst"], d["dst_port"]
    if not (type(src) is str and src and type(src_port) is str and src_port
            and type(dst) is str and dst and type(dst_port) is str and dst_port):
        for key in ("src", "src_port", "dst", "dst_port"):
            _name(d, key)                                   # (raises, saying which)
    if check_clock:
        clock = d["clock"]
        if type(clock) is not int or not 0 <= clock < CLOCK_LIMIT:
            wire_int(clock, "clock", 0, CLOCK_LIMIT)        # (raises, saying why)
    j = d["message"]
    if not isinstance(j, dict):
        raise WireError(f"'message' must be an object, got {type(j).__name__}")
    tname = j.get("type")
    if not isinstance(tname, str):
        raise WireError(f"'message' needs a string 'type', got {tname!r}")
    try:
        known = allowed(dst, dst_port)
    except LookupError:
        raise WireError(f"no port {dst}.{dst_port} here") from None
    cls = known.get(tname)
    if cls is None:
        raise WireError(f"port {dst}.{dst_port} does not accept a message of type {tname!r} "
                        f"(it accepts: {', '.join(sorted(known)) or 'nothing'})")
    try:
        decoders = _check_message(cls, j, tname)
    except RecursionError:           # a record that contains itself, nested very deeply
        raise WireError(f"bad {tname} for {dst}.{dst_port}: nested too deeply") from None
    try:
        if cls.__init__ is Message.__init__:
            # every field is there, and no other (`_check_message`): by position, in order
            # (what `message_from_json` builds, without its checks made already)
            fields = j["fields"]
            msg = cls(*[decode(fields[n]) for n, decode in decoders])
        else:
            msg = message_from_json(j, {tname: cls})
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        raise WireError(f"bad {tname} for {dst}.{dst_port}: {e}") from None
    if type(msg) is not cls:
        raise WireError(f"decoded a {type(msg).__name__}, expected {cls.__name__}")
    try:             # the class's generated check first; the description only when it fails
        bad = None if cls.__assay_conforms__(msg) else msg.bad_field()
    except Exception as e:           # a type the class cannot describe: refuse, not crash
        raise WireError(f"cannot check the fields of {tname}: {e}") from None
    if bad is not None:
        raise WireError(f"bad {tname} for {dst}.{dst_port}: {bad}")
    return Envelope(src, src_port, dst, dst_port, msg, meta)


def _meta(j: Any) -> tuple[tuple[str, Any], ...]:
    """An envelope's meta from a frame: names to None, bool, int (in range), str or lists of
    them, and nothing else (`assay.model.interceptor`)."""
    from assay.model.interceptor import meta_from_json

    def ints_in_range(v: Any) -> None:
        if type(v) is int:
            wire_int(v, "a meta value", -INT_LIMIT)
        elif type(v) is tuple:
            for x in v:
                ints_in_range(x)
    try:
        items = meta_from_json(j)
    except (ValueError, RecursionError) as e:
        raise WireError(f"bad meta: {e}"[:300]) from None
    if not items:
        raise WireError("an empty 'meta' is sent as no 'meta'")
    for _, v in items:
        ints_in_range(v)
    return items


# --- authentication -------------------------------------------------------------------------

def _transcript(label: str, *parts: str) -> bytes:
    """`parts` encoded unambiguously (a JSON array: no separator can be forged by a name),
    under `label`, so a MAC for one use is never valid for another."""
    return label.encode("ascii") + b"|" + json.dumps(
        [label, VERSION, *parts], separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _proof(secret: bytes, role: str, initiator: tuple[str, str], responder: tuple[str, str]
           ) -> str:
    """The MAC a side with `role` sends: over the role, both names and both nonces."""
    return hmac.new(secret, _transcript("assay-auth", role, *initiator, *responder),
                    hashlib.sha256).hexdigest()


def frame_key(secret: bytes, initiator: tuple[str, str], responder: tuple[str, str]) -> bytes:
    """The key of one connection's frame MACs, HKDF-like: HMAC-SHA256 of the secret over both
    names and both nonces (fresh on each connection, so a frame of one connection does not
    verify on another)."""
    return hmac.new(secret, _transcript("assay-frame-key", *initiator, *responder),
                    hashlib.sha256).digest()


def _is_hex(s: Any, nbytes: int) -> bool:
    return (isinstance(s, str) and len(s) == 2 * nbytes
            and all(c in "0123456789abcdef" for c in s))


async def _expect(reader: asyncio.StreamReader, kind: str, keys: set[str],
                  optional: set[str] | None = None) -> dict:
    try:
        frame = await read_frame(reader, _AUTH_MAX_FRAME)
    except WireError as e:
        raise AuthError(f"malformed {kind}: {e}") from None
    if frame is None:
        raise AuthError(f"the peer closed the connection instead of sending its {kind}")
    if frame.get("t") != kind or not keys - (optional or set()) <= set(frame) <= keys:
        raise AuthError(f"expected a {kind} message, got {sorted(frame)!r} "
                        f"with t={frame.get('t')!r}")
    return frame


def _check_claim(peer: str, me: str, expect: str | None,
                 accept: frozenset[str] | None = None) -> None:
    """Refuse a peer that claims this side's own name (its own hello reflected back at it:
    relayed between an outgoing connection of this node and its server, each of its proofs
    answers the other, see `test_a_node_s_own_handshake_reflected_into_its_server_...`), or,
    on an outgoing connection, a name other than the node it dialled, or a name not among
    `accept` (a node's server: the deployment's nodes and control clients)."""
    if peer == me:
        raise AuthError(f"the peer claims this node's own name {me!r} (a reflected handshake)")
    if expect is not None and peer != expect:
        raise AuthError(f"dialled node {expect!r}, but the peer claims to be {peer!r}")
    if accept is not None and peer not in accept:
        raise AuthError(f"the peer claims to be {peer[:64]!r}, which is no node of the "
                        "deployment (nor a control client)")


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes,
                     me: str, initiator: bool, expect: str | None,
                     accept: frozenset[str] | None) -> Session:
    my_nonce = secrets.token_hex(_NONCE_BYTES)
    writer.write(encode_frame({"t": "hello", "v": VERSION, "node": me, "nonce": my_nonce}))
    await writer.drain()
    hello = await _expect(reader, "hello", {"t", "v", "node", "nonce"}, {"v"})
    if hello.get("v") != VERSION:
        raise AuthError(f"the peer speaks version {hello.get('v', 1)!r} of the wire protocol, "
                        f"this side {VERSION}: run one version of assay on every node")
    peer, their_nonce = hello["node"], hello["nonce"]
    if not isinstance(peer, str) or not 0 < len(peer) <= _NAME_MAX:
        raise AuthError(f"the peer's name must be a string of 1 to {_NAME_MAX} characters")
    if not _is_hex(their_nonce, _NONCE_BYTES):
        raise AuthError(f"the peer's nonce must be {_NONCE_BYTES} bytes in lowercase hex")
    if hmac.compare_digest(their_nonce, my_nonce):
        raise AuthError("the peer echoed our own nonce (a reflection)")
    _check_claim(peer, me, expect, accept)      # before this side proves anything
    mine, theirs = (me, my_nonce), (peer, their_nonce)
    i_side, r_side = (mine, theirs) if initiator else (theirs, mine)
    my_role, their_role = ("initiator", "responder") if initiator else ("responder", "initiator")
    writer.write(encode_frame({"t": "proof", "mac": _proof(secret, my_role, i_side, r_side)}))
    await writer.drain()
    proof = await _expect(reader, "proof", {"t", "mac"})
    mac = proof["mac"]
    if not _is_hex(mac, hashlib.sha256().digest_size):
        raise AuthError("the peer's proof is not an HMAC-SHA256 in lowercase hex")
    if not hmac.compare_digest(mac, _proof(secret, their_role, i_side, r_side)):
        raise AuthError(f"the peer {peer!r} failed to prove it holds the shared secret")
    return Session(reader, writer, peer, frame_key(secret, i_side, r_side), initiator)


async def authenticate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       secret: bytes, me: str, initiator: bool, timeout: float = 5.0,
                       expect: str | None = None,
                       accept: frozenset[str] | None = None) -> Session:
    """Mutual authentication over a fresh connection (see the module docstring); returns the
    connection as a `Session` (`.peer`: the name the peer proved; every frame after this one
    is sent and read through it), or raises `AuthError` (wrong secret, malformed or missing
    message,
    a peer claiming `me`, or not `expect` when given, or a name not in `accept` when given,
    closed connection, or `timeout` seconds elapsed: the whole handshake, however slowly
    its bytes come).  The caller closes the connection on failure.  Both sides may call it at once:
    neither waits for the other to speak first."""
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ValueError("the shared secret must be non-empty bytes")
    if not isinstance(me, str) or not 0 < len(me) <= _NAME_MAX:
        raise ValueError(f"a node name is a string of 1 to {_NAME_MAX} characters")
    try:
        async with asyncio.timeout(timeout):
            return await _handshake(reader, writer, bytes(secret), me, initiator, expect,
                                    accept)
    except TimeoutError:
        raise AuthIncomplete(f"the peer did not authenticate within {timeout} s") from None
    except (OSError, EOFError) as e:
        raise AuthIncomplete(f"the connection failed during authentication: {e}") from None
