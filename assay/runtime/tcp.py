"""A runtime node over TCP: the instances a deployment places on one node, their peers on
other nodes reached through authenticated links.

Each node runs the sans-IO `Node` core (one kernel step per event, monitored), and around it:

- a server that accepts links from other nodes (and from control clients), authenticated with
  the deployment's shared secret, every frame after the handshake MACed (`wire.Session`);
  frames are decoded only into the message types the receiving port declares, and only for
  links the system has (a node cannot speak for an instance it does not host, nor reach a
  port it is not connected to); a message that does not fit is logged, dropped and
  acknowledged; a frame that does not verify or is malformed (a number out of range, say)
  is logged with the peer's address and closes its connection; connections are bounded
  (`MAX_HANDSHAKES` authenticating, `MAX_PEER_CONNECTIONS` per node and
  `MAX_CONTROL_CONNECTIONS` of control clients once authenticated: the oldest goes), and what
  the log says of a peer is escaped and cut short (`_Printable`);
- one outgoing link per peer node: frames are numbered and kept until acknowledged, and resent
  after a reconnection (at-least-once: duplicates are what the model's faults already cover);
  on each connection the link first says which lives (epochs) of its node may still send, so
  the peer forgets the frame numbers it handled of the others;
- persistence: after a step, the persistent fields of its instance are committed to SQLite
  before the step's messages leave the node (the steps ready together share one transaction:
  a group commit, `_run_group`); on start, saved fields are restored with the
  restart semantics of the kernel (the other fields take their initial values, the restart
  hook runs);
- Lamport clocks on messages and steps, so the steps recorded by every node merge into one
  trace consistent with causality, which `assay replay` checks against the model.

A message from an instance to itself (two of its ports connected) or to another instance of
the node stays in the node (with a store, as a row of its own outbox), never on a socket.
Link capacities (`capacity=`) are not enforced here: a node cannot see what is in flight on
a link between other nodes, so a deployment's trace replays only where its links stayed
within them (one process, `local.py`, does enforce them).  A lossy link loses what the real
network loses: with the links' resending, nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import random
import signal
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from assay.kernel.events import Envelope, Fire
from assay.kernel.kernel import Kernel
from assay.model.load import build
from assay.model.show import printable
from assay.runtime.deploy import CONTROL, Deployment, placed
from assay.runtime.node import Node, Outcome
from assay.runtime.steplog import log_line, open_step_log, restore, saved_envelope
from assay.runtime.store import Handled, StepRecord, storing
from assay.runtime.timers import Timers
from assay.runtime.wire import (
    CLOCK_ADOPT,
    MAX_LIVE,
    AuthError,
    AuthIncomplete,
    EpochsFrame,
    Frame,
    MsgFrame,
    Session,
    WireError,
    acks_payloads,
    address_of,
    authenticate,
    decode_ack,
    decode_frame,
    decode_reply,
    envelope_from_frame,
    envelope_to_wire,
    open_connection,
    start_server,
)

log = logging.getLogger("assay.runtime")


LOG_LINE_MAX = 2000          # characters of one log line's message, at most


class _Printable(logging.Filter):
    """Every line the runtime logs made printable and cut at `LOG_LINE_MAX` characters
    (`printable`): what it says of a peer (its name, the ports, types and values in its
    frames, why a frame was refused) and of a state cannot forge a line of the log, act on
    the terminal showing it, or make one line of a megabyte (a frame's).  A traceback
    (`exc_info`) too: an exception's message may hold what a peer sent (`_traceback`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if len(text) > LOG_LINE_MAX or not text.isprintable():
            record.msg, record.args = printable(text, LOG_LINE_MAX), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = _traceback(record.exc_info[1])
        return True


def _traceback(e: BaseException) -> str:
    """The traceback of `e` as the log shows it, made printable: the line breaks of its
    frames' entries (file and source lines, two to an entry) are kept, each line escaped and
    cut; every other part — an exception's message (with those it was chained to), which may
    quote a peer's frame — is one line, its line breaks escaped, so it cannot forge a line of
    the log."""
    out: list[str] = []
    for part in traceback.format_exception(e):
        part = part.removesuffix("\n")
        if part.startswith("  File "):
            out.extend(printable(line, LOG_LINE_MAX) for line in part.split("\n"))
        else:
            out.append(printable(part, LOG_LINE_MAX))
    return "\n".join(out)


log.addFilter(_Printable())
_ACK_KINDS = ("ack", "acks")     # acknowledgements: `decode_ack`


class _LogBudget:
    """The warnings of one kind (refusals, drops) that reach the log: each distinct one once
    per `window` seconds (distinct but for the peer's `address`: its port changes with each
    connection), and at most `burst` of them.  A flood (connections that do not authenticate,
    frames to drop) writes a few lines, not one per connection or frame: the repeats are
    counted, said to be once, and their number is logged when the window ends."""

    def __init__(self, node: str, kind: str, burst: int, window: float) -> None:
        self.node, self.kind, self.burst, self.window = node, kind, burst, window
        self._start = -window
        self._seen: set[str] = set()
        self._held = 0

    def warning(self, msg: str, *args: Any, address: str = "") -> None:
        now = time.monotonic()
        if now - self._start >= self.window:
            if self._held:
                log.warning("%s: %d more %s like those above were not logged in the last "
                            "%.0f s", self.node, self._held, self.kind, now - self._start)
            self._start, self._held = now, 0
            self._seen.clear()
        key = (msg % args)[:LOG_LINE_MAX]      # (a frame's megabyte is not kept)
        if address:
            key = key.replace(address, "")
        if key not in self._seen and len(self._seen) < self.burst:
            self._seen.add(key)
            log.warning(msg, *args)
            return
        if not self._held:
            log.warning("%s: more %s like these in the next %.0f s are counted, not logged",
                        self.node, self.kind, self._start + self.window - now)
        self._held += 1


def _host(address: str) -> str:
    """The host of a `wire.address_of` "host:port"."""
    return address.rpartition(":")[0] or address


def collect_young() -> None:
    """Run now the young garbage collection the interpreter would run within the next few
    dozen allocations: called when the node has written what its steps sent and is about to
    wait (its peer handles those frames meanwhile), so the pause falls in the shadow of the
    round trip instead of where allocation counts trigger it, as often as not in the middle of
    handling the answer.  A generation-1 pass of a runtime node costs 0.6-0.8 ms (the kernel's
    memo tables and interned messages survive the young passes), half a plain asyncio round
    trip: it was in a third of the slowest 1 % of ping-pong rounds (tests/benchmarks/
    RESULTS.md, rt7).  Generation 0 is taken early only while generation 2 is not due: the
    interpreter's own trigger then runs and decides whether to collect it (it knows how many
    objects survived since its last full pass; Python code does not).  Nothing is done where
    the garbage collector is disabled (`gc.disable`, or a threshold of 0)."""
    c0, c1, c2 = gc.get_count()
    t0, t1, t2 = gc.get_threshold()
    # the interpreter's own rule (a generation is collected once its count exceeds its
    # threshold), applied an eighth of the threshold early: about as many passes as it runs
    if c0 + (t0 >> _GC_EARLY) > t0 > 0 and c2 <= t2 and gc.isenabled():
        gc.collect(1 if c1 > t1 else 0)


_GC_EARLY = 3               # an eighth: two or three steps' allocations


def freeze_startup() -> None:
    """Take what start-up made — the modules, the spec, its kernel and compiled handlers —
    out of every later garbage collection (`gc.freeze`, after one full collection so no
    start-up garbage is kept): a process that runs a node does this once, before its first
    step.  Each full (generation-2) pass of a node otherwise walked them all: 14-55 ms once
    per ~1,500 ping-pong rounds (tests/benchmarks/RESULTS.md, rt7).  For processes that only
    run nodes (`assay node`, `assay run`): a test or a program that runs a node among other
    work keeps its own collector's settings."""
    gc.collect()
    gc.freeze()


@dataclass
class _Link:
    """The outgoing link to one peer node: numbered frames kept until acknowledged."""

    peer: str
    host: str
    port: int
    next_seq: int = 1
    # by (sender epoch, seq): frames of an earlier life of this node, reloaded after a
    # restart, keep their numbers, so a peer that handled them already only acknowledges them
    unacked: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # the current connection, once the frames kept from before it have been written on it:
    # a frame pushed then is written at once (no task switch on the way out)
    session: Session | None = None
    connected: bool = False
    # acknowledged, and not yet deleted from the outbox (durably)
    deleting: set[tuple[str, int]] = field(default_factory=set)

    def number(self, frame: dict[str, Any], epoch: str) -> tuple[str, int]:
        frame["seq"] = self.next_seq
        frame["epoch"] = epoch
        self.next_seq += 1
        return epoch, frame["seq"]

    def live(self, epoch: str) -> list[str]:
        """The lives of this node (`epoch` is the current one) that may still send frames on
        this link: the current one, and those of frames a restart would resend — kept in
        memory or in the outbox.  The peer forgets what it handled of the others."""
        kept = {e for e, _ in self.unacked} | {e for e, _ in self.deleting}
        return [epoch] + sorted(kept - {epoch})

    def push(self, *frames: dict[str, Any], acks: list[bytes] | None = None) -> None:
        """Keep `frames` until they are acknowledged, and send them now (in one write, after
        the `acks` this node owes the peer) if the link is up (else `_run_link` sends them
        when it connects; `acks` only go on a link that is up: `TcpNode._riding`)."""
        for frame in frames:
            self.unacked[(frame["epoch"], frame["seq"])] = frame
        s = self.session
        if s is not None and not s.is_closing():
            s.write(*frames, payloads=acks)

    def up(self) -> bool:
        """Whether frames pushed now are written at once (the link is connected)."""
        s = self.session
        return s is not None and not s.is_closing()


@dataclass(slots=True)
class _Receipt:
    """Where a message from another node came from: acknowledged once its step is durable."""

    peer: str
    epoch: str
    seq: int
    session: Session | None


@dataclass
class _Step:
    """A step applied in memory and numbered, not yet durable: what to save of it (a
    `store.StepRecord`, None: nothing) and what to route once it is."""

    name: str
    out: Outcome
    receipt: _Receipt | None
    save: StepRecord | None = None
    local: list[tuple[Envelope, dict[str, Any] | None]] = field(default_factory=list)
    remote: list[tuple[_Link, dict[str, Any]]] = field(default_factory=list)
    # an instance with external stores: its fields after the step and the step's clock,
    # for `ExternalStores.commit` (extstore.py), before the step is durable
    ext: tuple[dict[str, Any], int] | None = None


class TcpNode:
    """One node of a deployment (see the module docstring).

    `driven` names hosted instances a client drives (`assay.runtime.connect`): their actions
    fire only through `fire_now`, and `on_delivered` sees every message delivered to them.
    """

    FAIR = 0.001            # seconds of stepping at most between two turns of the event loop

    def __init__(self, dep: Deployment, name: str, monitor: str = "enforce",
                 state_dir: str | None = None, time_unit: float = 0.01, seed: int = 0,
                 trace_out: str | None = None, driven: tuple[str, ...] = (),
                 ack_delay: float = 0.005, durability: str = "machine",
                 fresh: bool = False, store_db: str | None = None) -> None:
        if name not in dep.nodes:
            from assay.errors import UsageError

            raise UsageError(f"the deployment has no node {name!r}",
                             notes=[f"nodes: {', '.join(dep.nodes)}"])
        system, self.system_name, self.params = build(dep.spec, dep.system, dep.params)
        dep = placed(dep, system)          # a composite placed whole: its instances
        self.dep = dep
        self.name = name
        self.me = dep.nodes[name]
        self.kernel = Kernel(system)
        if self.kernel.bounded:
            log.warning("%s: the system's links have capacities, which nodes do not enforce "
                        "(the trace replays only where the links stayed within them)", name)
        self.hosted = list(self.me.instances)
        self.node = Node(self.kernel, self.hosted, monitor, defer_checks=True)    # (`_idle`)
        # the external stores of the hosted instances, in this node's database (`store_db`)
        from assay.runtime.extstore import ExternalStores, SQLiteAdapter, hosts_store

        self.stores: ExternalStores | None = None
        if store_db is not None and hosts_store(self.kernel, self.hosted):
            self.stores = ExternalStores(
                self.kernel, SQLiteAdapter(store_db, durability=durability), self.hosted)
        initial = {n: self.node.state(n) for n in self.hosted} if self.stores else {}
        self.driven = set(driven)
        assert self.driven <= set(self.hosted), "a node drives only instances it hosts"
        self.on_delivered: Callable[[Envelope, Outcome], None] | None = None
        # one step at a time: a step is applied, saved, recorded and routed before the next
        self.step_lock = asyncio.Lock()
        # per hosted instance: the messages to handle, each with its receipt (None for a
        # message from an instance on this node)
        self.inbox: dict[str, deque[tuple[Envelope, _Receipt | None]]] = {
            n: deque() for n in self.hosted}
        self.rng = random.Random(seed)
        self.time_unit = time_unit
        self.clock = 0
        self.trace_out = trace_out
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.timers = Timers(self.hosted, time_unit, self.wake)
        self.links = {n: _Link(n, s.host, s.port) for n, s in dep.nodes.items() if n != name}
        # with a store, a message between two instances of this node is a frame of its own
        # outbox too, saved with the step that sent it and deleted with the step that handles
        # it: a crash between the two does not lose it (it is handled after the restart)
        self.own = _Link(name, self.me.host, self.me.port)
        # frames are numbered per sending process (its epoch); per (peer node, epoch), the
        # numbers queued and those handled tell a resent frame from a new one.  They are
        # sets, not a highest number: frames to different instances are handled out of order
        self.seen: dict[tuple[str, str], Handled] = {}       # queued (or handled)
        self.handled: dict[tuple[str, str], Handled] = {}    # handled and durable: acknowledged
        # queued, not handled yet: where its acknowledgement goes (a resend on a newer
        # connection moves it there)
        self.pending: dict[tuple[str, str, int], _Receipt] = {}
        # the newest authenticated connection from each peer node: an acknowledgement whose
        # connection is gone goes there
        self._peer_sessions: dict[str, Session] = {}
        self.epoch = os.urandom(8).hex()
        self.in_step = False                   # a step is being applied (saved, routed)
        self._arrived = False                  # messages read and not stepped yet (`_step_here`)
        self.failed: BaseException | None = None
        self._accepted: set[asyncio.StreamWriter] = set()   # connections peers opened to us
        # of those, the ones not authenticated yet, oldest first (`MAX_HANDSHAKES`)
        self._handshaking: dict[asyncio.StreamWriter, str] = {}
        # the names a connection may authenticate as (the other nodes, control clients), and
        # per name its authenticated connections, oldest first (`_admit`)
        self._names = frozenset(n for n in dep.nodes if n != name) | {CONTROL}
        self._sessions: dict[str, dict[Session, str]] = {}
        self._background: set[asyncio.Task[None]] = set()   # saves of dropped frames
        self._holds: set[asyncio.Task[None]] = set()        # connections not read (`_hold`)
        self._held: dict[Session, int] = {}                  # and their holds under way
        # what floods of them write to the log (`_LogBudget`)
        self._refusals = _LogBudget(name, "refusals", self.LOG_BURST, self.LOG_WINDOW)
        self._drops = _LogBudget(name, "drops", self.LOG_BURST, self.LOG_WINDOW)
        # acknowledgements of durable steps wait up to `ack_delay` seconds, to leave in one
        # write per connection (fewer system calls and wake-ups on both sides)
        self.ack_delay = ack_delay
        # per connection, per sender life: the frame numbers to acknowledge (`acks_payloads`)
        self._acks: dict[Session, dict[str, list[int]]] = {}
        # frames peers acknowledged, to delete from the outbox with the next group commit
        # (or `_flush_deletes`, if no commit comes within `ack_delay`)
        self._deletes: list[tuple[_Link, tuple[str, int]]] = []
        self._delete_timer: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._ack_due = 0.0                    # when it fires (`time.monotonic`)
        self.acked = asyncio.Event()           # set whenever a peer acknowledges a frame
        self._closing = asyncio.Event()        # stopping, and done waiting for acks
        self.allowed = {(i, p): self.kernel.receivable(i, p)
                        for i in self.hosted for p in self.kernel.wirings[i]}
        # per node: what its instances receive (the outbox reloaded after a restart is checked)
        self._receivable: dict[str, dict[tuple[str, str], dict[str, type]]] = {
            name: self.allowed}
        self.store = None
        if state_dir is not None:
            from assay.runtime.store import open_store

            self.store = open_store(state_dir, name, durability, system=self.kernel.system.name,
                                    others=[n for n in dep.nodes if n != name], fresh=fresh)
            self.handled = self.store.handled()
            self.seen = {k: h.copy() for k, h in self.handled.items()}
        self.logfile: IO[str] | None = None
        if trace_out is not None:
            self.logfile, clock = open_step_log(
                trace_out, None if self.store is None else self.store.clock())
            self.clock = max(self.clock, clock)
        # restarts whose steps (the restart hook's sends and timers) run when serving starts
        self._restarts: list[tuple[str, Outcome]] = []
        first_life = True                        # no earlier life in the store
        if self.store is not None:
            # every hosted instance crashed with the node: persistent fields come back, the
            # rest start over, the hook runs
            restored = restore(self.kernel, self.store, self.hosted)
            first_life = restored is None
            restarted = restored or {}
            for inst in restarted:
                self._record({"kind": "crash", "instance": inst})
            self._restarts = self.node.restart_all(restarted)
            for inst in restarted:
                log.info("%s: restored %s from %s", name, inst, state_dir)
            for peer, epoch, seq, frame in self.store.outbox():
                self._reload(peer, epoch, seq, frame)
        if self.stores:
            from assay.runtime.extstore import start_values

            try:
                self.stores.attach(start_values(self.kernel, initial, self.store, first_life),
                                   undo=self.store is not None)
            except BaseException:            # no step taken: nothing more to make durable
                self.stores.close()
                for f in (self.store, self.logfile):
                    if f is not None:
                        f.close()
                raise
        # a first life: each hosted instance's start step (`@on_start`), which the model
        # counts in the initial state (routed when serving starts, not recorded as a step)
        self._starts = [(n, self.node.start(n)) for n in self.hosted
                        if first_life and self.node.has_start(n)]

    def _reload(self, peer: str, epoch: str, seq: int, frame: dict[str, Any]) -> None:
        """A frame of the outbox, sent in an earlier life: to a peer and not acknowledged (sent
        again), or to an instance here and not handled (queued for the step loop).  A frame
        for no node of the deployment, or not fit for its destination, is a `StateError`."""
        from assay.errors import Location, StateError
        from assay.runtime.store import FRESH_NOTE

        assert self.store is not None
        where = f"table outbox, row ({peer!r}, {epoch!r}, {seq!r})"
        if peer != self.name and peer not in self.links:
            raise StateError(f"{where}: a frame to node {peer!r}, which the deployment does not "
                             "have", Location(self.store.path), [FRESH_NOTE])
        allowed = self._receivable.get(peer)
        if allowed is None:                    # the ports of the peer's instances, once
            k = self.kernel
            allowed = self._receivable[peer] = {
                (i, p): k.receivable(i, p) for i in self.dep.nodes[peer].instances
                for p in k.wirings.get(i, {})}
        env = saved_envelope(frame, allowed, self.store.path, peer)
        if self.dep.placement.get(env.dst) != peer:
            raise StateError(f"{where}: a message to {env.dst}, which is not on node {peer!r}",
                             Location(self.store.path), [FRESH_NOTE])
        if peer == self.name:
            self.inbox[env.dst].append((env, _Receipt(self.name, epoch, seq, None)))
        else:
            self.links[peer].push(frame)

    # --- receiving ---------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        self._accepted.add(writer)
        try:
            await self._serve_connection(reader, writer)
        finally:
            self._accepted.discard(writer)

    MAX_HANDSHAKES = 64     # connections authenticating at once, at most: then the oldest goes
    # distinct warnings of refused connections, and of dropped frames, logged per window:
    # repeats and the rest are counted (`_LogBudget`)
    LOG_BURST = 50
    LOG_WINDOW = 60.0

    MAX_PEER_CONNECTIONS = 4       # authenticated connections of one node at once
    MAX_CONTROL_CONNECTIONS = 16   # and of control clients, all together

    def _admit(self, session: Session, address: str) -> None:
        """Count `session` among its peer's connections, and close that peer's oldest while
        it has more than `MAX_PEER_CONNECTIONS` (control clients: `MAX_CONTROL_CONNECTIONS`,
        all together): a peer holding the secret that opens connections and keeps them
        holds a bounded number of sockets, not every descriptor the process may have.  The
        newest stays: an honest node has one link to this node, and its reconnection after
        a cut replaces the connection the cut left open."""
        pool = self._sessions.setdefault(session.peer, {})
        pool[session] = address
        most = self.MAX_CONTROL_CONNECTIONS if session.peer == CONTROL \
            else self.MAX_PEER_CONNECTIONS
        while len(pool) > most:
            oldest = next(iter(pool))
            old_address = pool.pop(oldest)
            self._refusals.warning("%s: closed the oldest connection of %s (from %s): more "
                                   "than %d of its connections were open at once", self.name,
                                   session.peer, old_address, most, address=old_address)
            oldest.close()

    def _make_room(self) -> None:
        """Close connections still authenticating while more than `MAX_HANDSHAKES` are: the
        oldest of the host that has the most of them.  A client that opens connections and
        never authenticates (each would stay for the handshake's timeout) holds a bounded
        number of sockets, and what it opens closes its own: an honest peer on another host
        gets in however fast the flood comes, its handshake's round trip as long as it may
        be (the oldest of all went: a flood of 64 connections per round trip closed every
        honest handshake)."""
        while len(self._handshaking) > self.MAX_HANDSHAKES:
            per_host = Counter(_host(a) for a in self._handshaking.values())
            most = per_host.most_common(1)[0][0]     # (a tie: the host of the oldest)
            oldest = next(w for w, a in self._handshaking.items() if _host(a) == most)
            address = self._handshaking.pop(oldest)
            self._refusals.warning("%s: closed the connection from %s before it "
                                   "authenticated: more than %d connections were "
                                   "authenticating at once", self.name, address,
                                   self.MAX_HANDSHAKES, address=address)
            oldest.close()

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        address = address_of(writer)
        self._handshaking[writer] = address
        self._make_room()
        try:
            session = await authenticate(reader, writer, self.dep.secret, self.name,
                                         initiator=False, accept=self._names)
        except asyncio.CancelledError:
            writer.close()
            return
        except (AuthError, OSError, asyncio.IncompleteReadError) as e:
            if writer in self._handshaking:    # (else closed by `_make_room`, which said so)
                self._refusals.warning("%s: refused a connection from %s: %s", self.name,
                                       address, e, address=address)
            writer.close()
            return
        finally:
            self._handshaking.pop(writer, None)
        peer = session.peer
        self._peer_sessions[peer] = session
        self._admit(session, address)
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        link = self.links.get(peer)

        def on_frame(raw: dict[str, Any]) -> None:
            if link is not None and raw.get("t") in _ACK_KINDS:
                # acknowledgements the peer node sent along with its messages (`_riding`):
                # of frames this node sent it on its link (from anyone else: refused by
                # `decode_frame`, the connection closed)
                self._on_acks(link, raw)
                return
            reply = self._on_frame(peer, decode_frame(raw), session)
            if reply is None:
                if len(self._background) > self.MAX_BACKGROUND:
                    if self._arrived:
                        self._step_here()
                    self._hold(session, self._background_room())
                return
            # a request: what the frames before it made ready is stepped first
            if self._arrived:
                self._step_here()
            try:
                session.write(reply)
            except WireError as e:             # a state too large for one frame
                session.write({"t": "error", "error": f"{self.name} cannot send its "
                                                      f"reply: {e}"})
            self._hold_if_unread(session)   # (a client that asks and reads no replies)

        def on_batch() -> None:
            # what the frames read together made ready is stepped here (they make one group)
            if self._arrived:
                self._step_here()

        def on_end(why: BaseException | None) -> None:
            if isinstance(why, WireError):
                # a frame that does not verify (altered, forged, replayed: see `Session`),
                # or a peer that holds the secret and sends what no node sends: nothing of
                # the frame is used, and the connection goes (a node's link reconnects,
                # and resends what was not acknowledged)
                self._drops.warning("%s: dropped a frame from %s at %s and closed the "
                                    "connection: %s", self.name, peer, address, why,
                                    address=address)
            elif why is not None and not isinstance(why, ConnectionError | OSError):
                # a bug in handling a frame (as an exception of the reader task was): the
                # connection goes, the node goes on
                log.error("%s: handling a frame from %s at %s failed", self.name, peer,
                          address, exc_info=why)
            if not ended.done():
                ended.set_result(None)

        try:
            # frames are handled as they arrive, in the connection's protocol (no task
            # switch per frame): `on_frame` for each, `on_batch` after those read together
            await session.receive(on_frame, on_end, on_batch)
            await ended
        except asyncio.CancelledError:
            pass                                # this node is stopping
        finally:
            if self._arrived:                  # (a frame after them broke the connection)
                self._arrived = False
                self.wake.set()
            if self._peer_sessions.get(peer) is session:
                del self._peer_sessions[peer]
            self._sessions.get(peer, {}).pop(session, None)
            writer.close()

    def _hold(self, session: Session, wait: Any) -> None:
        """Read no more from `session` until `wait` (a coroutine) is done, and every other
        hold on it too: back-pressure on a connection read by callbacks, which cannot wait
        itself.  (The first of two holds to end resumed reading while the other still waited:
        a peer whose frames to drop made room in the background read on past the
        acknowledgements it did not read.)"""
        session.pause()
        held = self._held
        held[session] = held.get(session, 0) + 1

        async def hold() -> None:
            try:
                with contextlib.suppress(ConnectionError, OSError):
                    await wait
            finally:
                left = held.pop(session) - 1
                if left:
                    held[session] = left
                else:
                    session.resume()

        task = asyncio.get_running_loop().create_task(hold())
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)

    def _hold_if_unread(self, session: Session) -> None:
        """Read no more from `session` until what this node wrote to it is sent, if more is
        waiting than its transport takes (`drain`: the transport's flow control): a peer that
        sends and does not read what it is sent back (replies, acknowledgements) would grow
        this node's memory without bound.  An honest node reads its link's acknowledgements
        as they come, so its connection is held back only while they are on their way."""
        transport = session.writer.transport
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            self._hold(session, session.drain())

    def _on_frame(self, peer: str, frame: Frame,
                  session: Session | None = None) -> dict[str, Any] | None:
        """Handle one checked frame from `peer`; the reply to send, if any.  `WireError` if
        the frame must not be handled (its connection is then closed)."""
        if isinstance(frame, MsgFrame):
            return self._on_msg(peer, frame, session)
        if isinstance(frame, EpochsFrame):
            # only from the newest connection of the peer: one left over from an earlier
            # life of it, read late, would make this node forget what a later life sent
            if peer in self.links and self._peer_sessions.get(peer) is session:
                self._forget_lives(peer, set(frame.live))
            return None
        if frame.kind == "state":
            inst = frame.instance
            if inst not in self.node.local:
                return {"t": "error", "error": f"{inst!r} is not hosted on {self.name}"}
            from assay.model.types import to_json

            return {"t": "state", "instance": inst,
                    "fields": {k: to_json(v) for k, v in self.node.state(inst).items()}}
        if frame.kind == "status":
            return {"t": "status", "node": self.name, "steps": self.node.steps,
                    "busy": self._busy(), "unacked": sum(len(k.unacked)
                                                         for k in self.links.values()),
                    "violations": [{"event": e, **v.to_json()}
                                   for e, v in self.node.violations[:20]],
                    "violation_count": self.node.violation_count,
                    "epochs": len(self.seen.keys() | self.handled.keys()),
                    # the nodes this one has had messages from (a client node that came
                    # and went between two polls of the supervisor is known by it)
                    "peers": sorted({p for p, _ in self.seen.keys() | self.handled.keys()})}
        log.info("%s: stopping, as %s at %s asked", self.name, peer,
                 "?" if session is None else session.address)
        self.stopping.set()
        self.wake.set()
        return {"t": "stopping"}

    def _ports(self, dst: str, port: str) -> dict[str, type]:
        """The message classes port `dst.port` here receives by name (none: no such port)."""
        return self.allowed.get((dst, port), {})

    def _on_msg(self, peer: str, frame: MsgFrame, session: Session | None
                ) -> dict[str, Any] | None:
        """Queue a message for its step (acknowledged once that is durable), acknowledge a
        resend of one handled already, or drop one that does not fit (acknowledged too)."""
        epoch, seq = frame.epoch, frame.seq
        if peer not in self.links:
            # no node of the deployment (a control connection, say): it hosts no instance,
            # so nothing it sends is a message; nothing of it is recorded
            self._drops.warning("%s: dropped a message from %s: no such link from that "
                                "node (it is not a node of the deployment)", self.name, peer)
            return {"t": "ack", "seq": seq, "epoch": epoch}
        key = (peer, epoch)
        handled = self.handled.get(key)
        if handled is not None and seq in handled:
            return {"t": "ack", "seq": seq, "epoch": epoch}   # resent, handled durably
        seen = self.seen.get(key)
        if seen is None:
            self._check_room(peer)
            seen = self.seen[key] = Handled()
        if seq in seen:                               # resent while its step is pending:
            pending = self.pending.get((peer, epoch, seq))
            if pending is not None:                   # its ack goes where the resend came
                pending.session = session
            return None
        if len(seen) >= Handled.MAX_RANGES and seen.opens(seq):
            # a sparse numbering (2, 4, 6, ...) would grow the numbers kept, here and in the
            # store, without bound.  Refused, not taken (never a resend taken as new) and not
            # lost: the sender resends it, and an honest one resends its lowest frames not
            # acknowledged first, which fill the gaps (each meets a number kept)
            raise WireError(f"node {peer} left {len(seen)} gaps between the frame numbers "
                            f"of its life {epoch} here, the most one life may leave: a frame "
                            "that leaves another is refused until they fill")
        seen.add(seq)
        receipt = _Receipt(peer, epoch, seq, session)
        self.pending[(peer, epoch, seq)] = receipt
        try:
            env, clock = envelope_from_frame(frame, self._ports), frame.clock
        except WireError as e:
            self._drops.warning("%s: dropped a message from %s: %s", self.name, peer, e)
            self._drop(receipt)
            return None
        link = (env.src, env.src_port, env.dst, env.dst_port)
        if env.dst not in self.inbox or link not in self.kernel.link_index \
                or self.dep.placement.get(env.src) != peer:
            self._drops.warning("%s: dropped %s from node %s: no such link from that node",
                                self.name, env, peer)
            self._drop(receipt)
            return None
        # (a clock no honest run reaches is adopted only up to `CLOCK_ADOPT`: see wire.py)
        self.clock = max(self.clock, clock if clock < CLOCK_ADOPT else CLOCK_ADOPT)
        self.inbox[env.dst].append((env, receipt))
        self._arrived = True          # stepped after the frames read with it (`on_batch`)
        return None

    MAX_LIVES = 16          # lives (epochs) of one peer whose handled numbers are kept

    def _lives(self, peer: str) -> set[str]:
        """The lives (epochs) of `peer` whose frame numbers this node keeps."""
        return {e for p, e in self.seen.keys() | self.handled.keys() if p == peer}

    def _check_room(self, peer: str) -> None:
        """A new life of `peer` is kept only while it has fewer than `MAX_LIVES`: a peer says
        which of its lives have ended (an `epochs` frame, on every connection), so only one
        that never says — or made its lives up — reaches the bound."""
        if len(self._lives(peer)) >= self.MAX_LIVES:
            raise WireError(f"node {peer} has {self.MAX_LIVES} lives on record here, the most "
                            "a peer may have: it did not say which of them have ended")

    def _forget_lives(self, peer: str, live: set[str]) -> None:
        """Forget the handled numbers of the lives of `peer` other than `live`.

        Safe because `live` is what the peer may still send (`_Link.live`): its current
        life, and the lives of frames it would resend after a restart — not acknowledged, or
        acknowledged and not yet deleted from its outbox for good; a restarted node resends
        only what its outbox holds.  So a frame of a forgotten life never comes again."""
        gone = [k for k in self.seen.keys() | self.handled.keys()
                if k[0] == peer and k[1] not in live]
        if not gone:
            return
        for k in gone:
            self.seen.pop(k, None)
            self.handled.pop(k, None)
        log.info("%s: forgot %d ended lives of node %s", self.name, len(gone), peer)
        if self.store is not None:        # (a later life's rows, saved meanwhile, stay)
            self._in_background(storing(self.store, self.store.forget, peer,
                                        [e for _, e in gone]))

    MAX_BACKGROUND = 256    # saves under way in the background, at most: then reading waits

    async def _background_room(self) -> None:
        """Read no more from a connection until fewer than `MAX_BACKGROUND` saves are under
        way in the background: a peer sending frames to drop (each saved as handled, `_drop`)
        faster than the store takes their saves does not grow the node's memory without
        bound (it grew by 3.5 KB a frame)."""
        while len(self._background) > self.MAX_BACKGROUND:
            await asyncio.wait(list(self._background), return_when=asyncio.FIRST_COMPLETED)

    def _in_background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _drop(self, receipt: _Receipt) -> None:
        """A frame that is dropped counts as handled: once that is durable it is
        acknowledged, so its sender stops resending it (and the numbers handled stay a
        floor with few gaps above it)."""
        async def save() -> None:
            if self.store is not None:
                await storing(self.store, self.store.save_handled, receipt.peer, receipt.epoch,
                                     receipt.seq)
            self._handled(receipt)
            self._ack(receipt)

        self._in_background(save())

    def _ack(self, receipt: _Receipt) -> None:
        """Acknowledge a message whose step is durable (soon: see `ack_delay`), on the
        connection it came on or, if that is gone, on the newest one from its node."""
        s = receipt.session
        if s is None or s.is_closing():
            s = self._peer_sessions.get(receipt.peer)
        if s is not None and not s.is_closing():
            by_life = self._acks.get(s)
            if by_life is None:
                by_life = self._acks[s] = {}
            seqs = by_life.get(receipt.epoch)
            if seqs is None:
                by_life[receipt.epoch] = [receipt.seq]
            else:
                seqs.append(receipt.seq)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._ack_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:                 # not serving yet (restoring): at once
                self._flush_acks()
                return
            self._ack_timer = loop.call_later(self.ack_delay, self._flush_acks)
            # (a clock of its own: `loop.time()` wants `get_running_loop`, a system call)
            self._ack_due = time.monotonic() + self.ack_delay

    def _flush_acks(self) -> None:
        """Write the buffered step log lines, then the queued acknowledgements (their steps
        are durable already)."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self.logfile is not None and not self.logfile.closed:
            self.logfile.flush()
        for session, by_life in self._acks.items():
            if not session.is_closing():         # one frame per life (`acks`), one write;
                session.write_payloads(          # numbered now: in the order they are written
                    [p for epoch, seqs in by_life.items() for p in acks_payloads(epoch, seqs)])
                self._hold_if_unread(session)    # (a peer that reads no acknowledgements)
        self._acks.clear()

    # --- sending -----------------------------------------------------------------------------

    LINK_STEADY = 1.0       # seconds a link's connection stays up before backoff starts over

    async def _run_link(self, link: _Link) -> None:
        backoff = 0.05
        while not self._closing.is_set():
            try:
                reader, writer = await open_connection(link.host, link.port)
            except OSError:                      # the peer is down: not news
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            try:
                session = await authenticate(reader, writer, self.dep.secret, self.name,
                                             initiator=True, expect=link.peer)
            except (OSError, AuthError, WireError, asyncio.IncompleteReadError) as e:
                if isinstance(e, AuthError) and not isinstance(e, AuthIncomplete):
                    self._refusals.warning("%s: refused its connection to %s at %s: %s",
                                           self.name, link.peer, address_of(writer), e,
                                           address=address_of(writer))
                writer.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            since = time.monotonic()
            link.connected = True
            ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            stop: asyncio.Future[Any] = asyncio.create_task(self._closing.wait())
            try:
                # acknowledgements are handled as they arrive (`_on_acks`), until the
                # connection breaks (`ended`) or the node stops
                await session.receive(functools.partial(self._on_acks, link),
                                      functools.partial(self._link_ended, link, session, ended))
                live = link.live(self.epoch)
                if len(live) <= MAX_LIVE:        # (else the peer keeps them all: safe too)
                    session.write({"t": "epochs", "live": live})
                session.write(*link.unacked.values())        # kept from before: resend
                link.session = session                       # from now on, push writes
                await session.drain()
                await asyncio.wait({ended, stop}, return_when=asyncio.FIRST_COMPLETED)
            except (ConnectionError, OSError):
                pass
            finally:
                link.session = None
                link.connected = False
                stop.cancel()
                writer.close()
            if time.monotonic() - since >= self.LINK_STEADY:
                backoff = 0.05
            elif not self._closing.is_set():
                # a peer that authenticates and hangs up at once: reconnecting at once,
                # resending every frame kept for it each time, the link spun (500
                # connections a second); it waits as for a peer that is down
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def _link_ended(self, link: _Link, session: Session, ended: asyncio.Future[None],
                    why: BaseException | None) -> None:
        """The connection of `link` ended (`Session.receive`): the link reconnects, and
        resends what was not acknowledged."""
        if isinstance(why, WireError):
            self._drops.warning("%s: dropped a frame from %s at %s and closed the "
                                "connection: %s", self.name, link.peer, session.address, why,
                                address=session.address)
        elif why is not None and not isinstance(why, ConnectionError | OSError):
            log.error("%s: handling a frame from %s at %s failed", self.name, link.peer,
                      session.address, exc_info=why)
        if not ended.done():
            ended.set_result(None)

    def _on_acks(self, link: _Link, raw: dict[str, Any]) -> None:
        """An acknowledgement from the peer of `link`: the frames it names are handled
        there durably (`WireError` if it is no acknowledgement)."""
        ack = decode_ack(raw)
        epoch = self.epoch if ack.epoch is None else ack.epoch
        for seq in ack.seqs:
            key = (epoch, seq)
            if link.unacked.pop(key, None) is not None and self.store is not None:
                # until the outbox forgets it too, its life is one a restart of this
                # node could resend a frame of: the link still says so (see `live`).
                # It is deleted with the next group commit, or within `ack_delay` if
                # none comes (a frame acknowledged and not deleted yet is only resent
                # after a crash, and acknowledged again: the peer handled it)
                link.deleting.add(key)
                self._deletes.append((link, key))
                if self._delete_timer is None:
                    self._delete_timer = asyncio.get_running_loop().call_later(
                        self.ack_delay, self._flush_deletes)
        # (an acknowledgement enables no step: the step loop is not woken)
        self.acked.set()

    def _flush_deletes(self) -> None:
        """Delete from the outbox the frames acknowledged since the last commit (in a thread,
        in the background: nothing waits for it)."""
        self._delete_timer = None
        gone, self._deletes = self._deletes, []
        if not gone or self.store is None:
            return
        store = self.store

        async def delete() -> None:
            try:
                await storing(store, store.acked_many,
                              [(link.peer, *key) for link, key in gone])
            finally:
                for link, key in gone:
                    link.deleting.discard(key)

        self._in_background(delete())

    # --- stepping ----------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self.in_step or bool(self.timers.due) or any(
            self._takes(n) is not None or self._enabled(n) for n in self.hosted
        ) or self.timers.any_pending()

    def _takes(self, name: str) -> int | None:
        """Where in its inbox the first message `name` takes now is (a receive guard may
        defer the ones before it), or None."""
        box = self.inbox[name]
        return self.node.first_taken(name, (env for env, _ in box)) if box else None

    async def _after_step(self, name: str, out: Outcome, receipt: _Receipt | None = None,
                          record: bool = True) -> list[tuple[_Link, tuple[str, int]]]:
        self.in_step = True
        try:
            return await self._finish_step(name, out, receipt, record)
        finally:
            self.in_step = False

    async def _finish_step(self, name: str, out: Outcome, receipt: _Receipt | None,
                           record: bool = True) -> list[tuple[_Link, tuple[str, int]]]:
        """Record, save and route one step; the frames it sent to other nodes."""
        step = self._prepare(name, out, receipt, record)
        await self._commit([step])
        await self._release([step])
        return [(link, (frame["epoch"], frame["seq"])) for link, frame in step.remote]

    def _prepare(self, name: str, out: Outcome, receipt: _Receipt | None,
                 record: bool = True) -> _Step:
        """Number and record one step applied in memory; what to save of it (nothing leaves
        the node until `_commit` made it durable and `_release` routes it)."""
        handled = consumed = None
        if receipt is not None:
            key = (receipt.peer, receipt.epoch, receipt.seq)
            if receipt.peer == self.name:
                consumed = key               # from this node's own outbox
            else:
                handled = key
        if not out.applied:              # rejected by the monitor: the message is consumed
            save: StepRecord | None = None
            if (handled or consumed) is not None and self.store is not None:
                save = (name, None, [], handled, None, consumed)
            return _Step(name, out, receipt, save)
        self.clock += 1                  # this step's Lamport time, fixed before any await
        clock = self.clock
        step = _Step(name, out, receipt)
        for env in out.sends:
            if env.dst in self.inbox:
                frame = None
                if self.store is not None:
                    frame = envelope_to_wire(env, clock)
                    self.own.number(frame, self.epoch)
                step.local.append((env, frame))
            else:
                link = self.links[self.dep.placement[env.dst]]
                frame = envelope_to_wire(env, clock)
                link.number(frame, self.epoch)
                step.remote.append((link, frame))
        # the log line first: if a crash comes before the save, the restarted node drops the
        # lines beyond its last durable step (see `_open_log`)
        if record:                       # a start is no step: the model's initial state has it
            self._record(out.event, clock)
        if self.stores and name in self.stores.by_instance:
            step.ext = (self.node.state(name), clock)
        if self.store is not None:
            saved = self.kernel.persisted(name, self.node.local[name])
            # a restart is always made durable: the crash and restart lines before it are
            # then never taken for steps a later crash undid
            rows = [(k.peer, f["epoch"], f["seq"], f) for k, f in step.remote] + [
                (self.name, f["epoch"], f["seq"], f) for _, f in step.local if f is not None]
            if saved is not None or rows or handled is not None or consumed is not None \
                    or out.event.get("kind") in ("restart", "start"):
                step.save = (name, saved, rows, handled, clock, consumed)
        return step

    async def _commit(self, steps: list[_Step]) -> None:
        """Make `steps` durable — one transaction for them all (a group commit), with the
        outbox rows peers have acknowledged since the last one — before any of their messages
        leave or are acknowledged.  The commit runs in a thread, the loop reading frames
        meanwhile (committing on the loop with `--durability process`, which does not wait
        for the disk, measured slower: tests/benchmarks/RESULTS.md).  A step of an instance
        with external stores writes them first (`ExternalStores.commit`, its own transaction
        with an undo record; a group holds at most one such step, the last)."""
        if self.stores:
            for st in steps:
                if st.ext is not None:
                    await asyncio.to_thread(self.stores.commit, st.name, *st.ext)
        save = self._to_save(steps)
        if save is not None:
            assert self.store is not None
            records, gone = save
            try:
                await storing(self.store, self.store.save_steps, records,
                              [(link.peer, *key) for link, key in gone])
            finally:
                for link, key in gone:
                    link.deleting.discard(key)

    def _commit_now(self, steps: list[_Step]) -> None:
        """`_commit`, for a store whose writes return at once (`Store.fast`) or none, and no
        external stores: without leaving the caller (`_step_here`)."""
        save = self._to_save(steps)
        if save is not None:
            assert self.store is not None and self.store.fast
            records, gone = save
            try:
                self.store.save_steps(records, [(link.peer, *key) for link, key in gone])
            finally:
                for link, key in gone:
                    link.deleting.discard(key)

    def _to_save(self, steps: list[_Step]
                 ) -> tuple[list[StepRecord], list[tuple[_Link, tuple[str, int]]]] | None:
        """What a commit of `steps` saves: their records and the outbox rows acknowledged
        since the last commit (taken: the commit deletes them); None: nothing to save."""
        if self.store is None:
            return None
        if self.logfile is not None:
            # with a store, the lines are written out before their steps are saved (one write
            # against the save's commit); without one, lines go out in batches
            # (`_flush_acks`): a kill -9 loses the state then anyway
            self.logfile.flush()
        records = [st.save for st in steps if st.save is not None]
        if not records:
            return None
        gone, self._deletes = self._deletes, []
        return records, gone

    async def _release(self, steps: list[_Step]) -> None:
        """`_route` durable `steps`, then wait while a peer's connection has more buffered
        than its transport takes (back-pressure)."""
        for link in self._route(steps):
            w = link.session
            # a transport with nothing buffered is not paused (it pauses above its
            # high-water mark), so only one with bytes waiting is drained
            if w is not None and w.writer.transport.get_write_buffer_size():
                with contextlib.suppress(ConnectionError, OSError):
                    await w.drain()

    def _route(self, steps: list[_Step]) -> list[_Link]:
        """Route durable `steps`, in the order they were applied: acknowledge what they
        handled (soon: `_ack`), queue their messages to instances here, send the rest — the
        frames of all the steps to one peer node in one write, in the order they were sent
        (one system call, and one wake-up of the peer, for the group).  The links written
        to."""
        by_link: dict[str, tuple[_Link, list[dict[str, Any]]]] = {}
        for st in steps:
            if st.receipt is not None:
                self._handled(st.receipt)
            if not st.out.applied:
                continue
            for env, frame in st.local:
                self.inbox[env.dst].append((env, None if frame is None else _Receipt(
                    self.name, frame["epoch"], frame["seq"], None)))
            for link, frame in st.remote:
                out = by_link.get(link.peer)
                if out is None:
                    by_link[link.peer] = (link, [frame])
                else:
                    out[1].append(frame)
            if st.out.timer_ops:
                self.timers.apply(st.name, st.out.timer_ops)
        ride = self._ack_timer is not None and bool(by_link) \
            and self._ack_due - time.monotonic() <= self.ack_delay / 4
        for link, frames in by_link.values():
            link.push(*frames, acks=self._riding(link) if ride else None)
        if ride and not self._acks and self._ack_timer is not None:
            self._ack_timer.cancel()             # (nothing left for it to send)
            self._ack_timer = None
        return [link for link, _ in by_link.values()]

    def _riding(self, link: _Link) -> list[bytes] | None:
        """The acknowledgements owed to the peer of `link` (taken: they leave now), to go in
        the write of the frames `_route` sends it, once the timer is due within a quarter of
        `ack_delay` (sooner, more frames and log writes than the timer's would leave): the
        peer reads them with its messages, on one connection and one wake-up, where the timer
        (`_flush_acks`) would wake this node and then the peer once more — the two extra
        wake-ups were two to three times as frequent in the slowest 1 % of ping-pong rounds
        as in the others.  None if the link is not up (they wait for the timer, to go on the
        connections they came on)."""
        if not link.up():
            return None
        out: list[bytes] = []
        for session in [s for s in self._acks if s.peer == link.peer]:
            by_life = self._acks.pop(session)
            out += [p for epoch, seqs in by_life.items() for p in acks_payloads(epoch, seqs)]
        if out and self.logfile is not None and not self.logfile.closed:
            self.logfile.flush()                 # the steps' lines before their acks
        return out

    def _buffered(self) -> bool:
        """Whether a connection to a peer node has bytes its transport has not sent yet."""
        for link in self.links.values():
            s = link.session
            if s is not None and s.writer.transport.get_write_buffer_size():
                return True
        return False

    def _handled(self, receipt: _Receipt | None) -> None:
        if receipt is not None and receipt.peer != self.name:    # (own frames: the outbox)
            key = (receipt.peer, receipt.epoch)
            handled = self.handled.get(key)
            if handled is None:
                handled = self.handled[key] = Handled()
            handled.add(receipt.seq)
            self.pending.pop((receipt.peer, receipt.epoch, receipt.seq), None)

    def _enabled(self, name: str) -> bool:
        return name not in self.driven and self.node.has_actions(name)

    async def fire_now(self, action: Fire) -> tuple[Outcome, list[tuple[_Link, tuple[str, int]]]]:
        """Fire `action` of a driven instance now; the step and the frames it sent."""
        async with self.step_lock:
            out = self.node.fire(action)
            keys = await self._after_step(action.instance, out)
        self.wake.set()
        return out, keys

    async def _step_loop(self) -> None:
        # fairness: the loop lets frames in (and timers fire) at least every `FAIR` seconds
        # of stepping; a step's own frames leave as it sends them, so the steps that are
        # ready now run back to back in the meantime (no event-loop turn between them)
        yielded = time.monotonic()
        while not self.stopping.is_set():
            due = bool(self.timers.due)
            ready = [] if due else self._ready()
            if not due and not ready:
                self.wake.clear()
                self._idle()                     # (what the steps sent is on its way)
                await self.wake.wait()
                yielded = time.monotonic()
                continue
            if time.monotonic() - yielded > self.FAIR:
                await asyncio.sleep(0)
                yielded = time.monotonic()
                continue
            # a free lock is taken without a task switch: what is ready is still ready
            first = ready if not due and not self.step_lock.locked() else None
            async with self.step_lock:
                self.in_step = True
                try:
                    group = await self._run_group(first)
                finally:
                    self.in_step = False
            self._done(group)

    def _done(self, group: list[tuple[_Step, Envelope | None]]) -> None:
        """After a group is routed: acknowledge (soon) the messages it handled, and tell the
        client what was delivered to a driven instance."""
        for st, delivered in group:
            if st.receipt is not None:
                self._ack(st.receipt)
            if delivered is not None and st.name in self.driven \
                    and self.on_delivered is not None:
                self.on_delivered(delivered, st.out)

    def _step_here(self) -> None:
        """Step what the messages just read made ready, where they were read (the
        connection's `data_received`, `Session.receive`: waking the step loop would cost a
        turn of the event loop per message) — where that needs no wait: no step under way,
        commits that return at once (no store, or one with `--durability process`), no
        external stores, and nothing buffered for a peer (a
        slow peer's back-pressure: the step loop, which waits for its connection to drain,
        takes the steps then).  Else, and when more is ready than one group takes, the step
        loop is woken.  A reader never waits to write: two nodes flooding each other would
        each wait for the other to read."""
        self._arrived = False
        if self.in_step or self.step_lock.locked() or self.stopping.is_set() \
                or self.stores is not None or (self.store is not None and not self.store.fast) \
                or self._buffered():
            self.wake.set()
            return
        self.in_step = True
        try:
            group, more = self._take_group(None)
            steps = [st for st, _ in group]
            self._commit_now(steps)
            self._route(steps)
        except Exception as e:     # noqa: BLE001 - as the step loop's: the node stops
            self._fail(e)
            return
        finally:
            self.in_step = False
        self._done(group)
        # `more` was asked before `_route` queued the group's messages to instances here:
        # one of those is ready now, and nothing else wakes the step loop for it
        if more or self.timers.due or any(st.local and st.out.applied for st in steps):
            self.wake.set()
        else:
            try:
                self._idle()                     # (what the group sent is on its way)
            except Exception as e:     # noqa: BLE001 - a step found nondeterministic
                self._fail(e)

    def _idle(self) -> None:
        """The node has written what its steps sent and is about to wait: the work that
        need not be on a message's way is done now, while the peers handle those messages —
        the determinism checks' second runs and the kernel's memo tables cut back
        (`Node.tidy`; a nondeterministic step raises its `SpecError` here, and the node
        stops), then a young garbage collection that is nearly due (`collect_young`: the
        freed tables no longer count towards it)."""
        self.node.tidy()
        collect_young()

    GROUP = 64              # steps at most in one group commit

    def _ready(self) -> list[tuple[str, int | None]]:
        """The hosted instances that can step now, each with where in its inbox the message
        it would take is (`_takes`; None: it has none, and an action is enabled)."""
        out = []
        for n in self.hosted:
            k = self._takes(n)
            if k is not None or self._enabled(n):
                out.append((n, k))
        return out

    def _next(self, ready: list[tuple[str, int | None]] | None = None
              ) -> tuple[str, Outcome, _Receipt | None, Envelope | None] | None:
        """Take one step now (a due timer first, else an instance that is ready, at random),
        applied in memory; None if nothing is ready.  `ready`: `_ready()`, if nothing has
        happened since it was asked."""
        if self.timers.due:
            name, delay, message = self.timers.due.popleft()
            return name, self.node.timer(name, delay, message), None, None
        if ready is None:
            ready = self._ready()
        if not ready:
            return None
        name, k = ready[0] if len(ready) == 1 else ready[self.rng.randrange(len(ready))]
        if k is not None and (not self._enabled(name) or self.rng.random() < .5):
            delivered, receipt = self.inbox[name][k]
            del self.inbox[name][k]
            return name, self.node.deliver(delivered), receipt, delivered
        out = self.node.fire_any(name, self.rng)
        assert out is not None
        return name, out, None, None

    async def _run_group(self, ready: list[tuple[str, int | None]] | None = None
                         ) -> list[tuple[_Step, Envelope | None]]:
        """The steps that are ready together, applied one after the other in memory, made
        durable in one commit (with a store), then routed (their frames to one peer node in
        one write).  A crash before the commit loses them all and nothing of them has left
        the node: none of their messages was sent nor acknowledged, so their senders resend
        them and the group runs again.  A group ends when nothing more is ready, after
        `GROUP` steps, or after `FAIR` seconds (the frames of its first step wait that long
        at most)."""
        group, _ = self._take_group(ready)
        steps = [st for st, _ in group]
        await self._commit(steps)
        await self._release(steps)
        return group

    def _take_group(self, ready: list[tuple[str, int | None]] | None
                    ) -> tuple[list[tuple[_Step, Envelope | None]], bool]:
        """The steps of one group (`_run_group`), applied in memory and prepared; and
        whether it ended at a bound (`GROUP`, `FAIR`, external stores) rather than because
        nothing more was ready."""
        group: list[tuple[_Step, Envelope | None]] = []
        until = time.monotonic() + self.FAIR
        while True:
            taken = self._next(ready)
            ready = None                    # the step changed what is ready
            if taken is None:
                return group, False
            name, out, receipt, delivered = taken
            group.append((self._prepare(name, out, receipt), delivered))
            # a step that writes external stores ends its group: a kill between the stores'
            # commit and the group's leaves the database one step ahead, which the undo
            # record of that step takes back (extstore.py)
            if len(group) >= self.GROUP or time.monotonic() > until \
                    or group[-1][0].ext is not None:
                return group, True

    async def serve(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
                    started: asyncio.Event | None = None) -> None:
        """Run until told to stop (a `stop` frame, `stop()`, or one of `signals`);
        `started` is set once the node listens."""
        try:
            server = await start_server(self._on_connection, self.me.host, self.me.port)
        except OSError as e:
            from assay.errors import UsageError

            raise UsageError(f"node {self.name} cannot listen on {self.me.host}:{self.me.port}: "
                             f"{e.strerror}") from None
        loop = asyncio.get_running_loop()
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        for inst, out in self._starts:           # the start hooks' sends and timers
            # (recorded only when the hook chose: the way it took picks the initial state)
            await self._after_step(inst, out, record="choices" in out.event)
        self._starts = []
        for inst, out in self._restarts:         # the restart hooks' sends and timers
            await self._after_step(inst, out)
        self._restarts = []
        tasks = [asyncio.create_task(self._run_link(k)) for k in self.links.values()]
        stepper = asyncio.create_task(self._step_loop())
        stepper.add_done_callback(self._stepper_done)
        log.info("%s: serving %s on %s:%d", self.name, ", ".join(self.hosted), self.me.host,
                 self.me.port)
        if started is not None:
            started.set()
        await self.stopping.wait()
        # a clean stop: the step under way finishes (saved, logged, routed), ...
        try:
            await asyncio.wait_for(asyncio.shield(stepper), 5.0)
        except (TimeoutError, asyncio.CancelledError):
            stepper.cancel()
        except Exception:               # noqa: BLE001 - reported by _stepper_done
            pass
        if self.failed is None:         # the determinism checks still due (`_idle`)
            try:
                self.kernel.check_deferred()
            except Exception as e:     # noqa: BLE001 - a step found nondeterministic
                self._fail(e)
        self._flush_acks()
        # ... what it sent gets a moment to be acknowledged (with a store, what is not is
        # resent after the next start), and only then do the links close
        for _ in range(20):
            if not any(k.unacked for k in self.links.values()):
                break
            await asyncio.sleep(0.05)
        self._closing.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(stepper, *tasks, return_exceptions=True)
        server.close()
        for w in list(self._accepted):         # peers see the node go, and reconnect later
            w.close()
        for t in list(self._holds):            # (connections not read: closed just now)
            t.cancel()
        self.timers.cancel_all()
        if self._delete_timer is not None:
            self._delete_timer.cancel()
        self._flush_deletes()
        # saves of dropped frames and forgotten lives under way finish before the store closes
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.store is not None:
            self.store.close()
        if self.stores is not None:
            self.stores.close()
        if self.logfile is not None:
            self.logfile.close()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def _stepper_done(self, task: asyncio.Task[None]) -> None:
        """The step loop ends only when the node stops; if it died, say why and stop."""
        e = None if task.cancelled() else task.exception()
        if e is not None:
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        """A step failed (in the step loop or a reader): say why and stop the node."""
        from assay.errors import AssayError

        # an AssayError (a store changed behind its back) is no bug: no traceback
        log.error("%s: stepping failed, stopping the node", self.name,
                  exc_info=None if isinstance(e, AssayError) else e)
        self.failed = e
        self.stop()

    def _record(self, event: dict[str, Any], clock: int | None = None) -> None:
        """One applied step (or a crash and restart) with its Lamport clock, to the log."""
        if clock is None:
            self.clock += 1
            clock = self.clock
        if self.logfile is not None:
            self.logfile.write(log_line(clock, self.name, event))
            self._schedule_flush()           # written within ack_delay, before any ack


async def control(host: str, port: int, secret: bytes, frame: dict[str, Any],
                  timeout: float = 5.0, node: str | None = None) -> dict[str, Any] | None:
    """Send one control frame (state, status, stop) to a node (named `node`, if the caller
    knows: another name answering there is refused) and return its reply."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        session = await authenticate(reader, writer, secret, CONTROL, initiator=True,
                                     expect=node)
        session.write(frame)
        await session.drain()
        return decode_reply(await asyncio.wait_for(session.read(), timeout))
    finally:
        writer.close()
