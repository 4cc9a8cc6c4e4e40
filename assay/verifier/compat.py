"""Compatibility of connected ports: do the two ends' protocols fit, on this network?

The two automata run against each other with the connection's buffers in between, under the
system's network model (fifo: per-direction queues; unordered: multisets; duplicating: sets
whose messages stay deliverable), each buffer bounded.  This is the kernel's own rule: a
message that the network may deliver while the receiver's protocol does not expect it is a
violation.  So a connection is incompatible when, in some reachable configuration,

- a deliverable message is one the receiver cannot receive at its current position, or
- neither side can move and they are not both where their protocols may end (they wait for
  each other forever), or
- one side is where its protocol may end (an `opt()`, the `p.end` of a loop) while the other
  is not and can only receive, with nothing in flight that could move either: ending is a
  choice the protocol allows that side's code, even where it could also send, and it leaves
  the other waiting forever.

Breadth-first search gives the shortest witness.  A buffer bound that was reached makes the
verdict "compatible up to the bound" (said so), never a proof.

The connection's links are modelled as the kernel runs them: a lossy link may lose any message
in flight on it (on fifo, at any position), so a protocol that cannot go on after a loss —
a request lost, both sides waiting — does not fit there; a link's capacity bounds its buffer
(a send to a full link waits, or is lost with `full="drop"`), and a capacity no larger than the
search's bound makes the search exhaustive, so the verdict a proof.

Crashes (`restarts`): the kernel, and the runtime restoring a node, restart a crashed instance's
sessions at their protocol's start — unless the port is `persistent=True`, whose sessions keep
their positions — while its peer's session goes on where it was and the messages in flight stay
in flight.  With `restarts=(ra, rb)` a side whose flag is set may crash and restart: its
position goes back to the start, the rest stays (the time it is down adds no configuration: the
peer's moves then are moves it could make just before).  A side whose port is persistent loses
nothing in a crash, so its flag is off.  Like the rest of this search, this is about the
protocols, not one component's code: a side may crash at any position of its protocol, also
where the protocol has it send next (code that sends later, from an action, rests there; a
handler that receives and sends in one step never crashes between the two), so an
incompatibility found after a crash is one of the protocols, not a refutation of this code:
`check --faults crash=1` (or `simulate --faults crash=...`), which run the kernel's semantics,
tell whether this code runs into it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from assay.model.protocol import RECV, SEND, Automaton

# the reason `verify` gives a compatibility proved for runs without a crash only, and the
# start of the reason of one left unknown with `--crashes` (see `connection_obligations`)
CRASH_NOTE = ("not shown across a crash (assay verify --crashes shows a run of the protocols; "
              "assay check --faults crash=1 decides)")
CRASH_BREAKS = "a crash and restart may break the fit"


@dataclass(frozen=True)
class Compatibility:
    a: str                          # "instance.port"
    b: str
    ok: bool
    problem: str | None = None      # what goes wrong at the end of the witness
    witness: tuple[str, ...] = ()   # the shortest sequence of sends and receives leading there
    bounded: bool = False           # a buffer reached its bound: ok only up to it
    bound: int = 0
    configurations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "ok": self.ok, "problem": self.problem,
                "witness": list(self.witness), "bounded": self.bounded, "bound": self.bound,
                "configurations": self.configurations}


def compatible(a_name: str, a: Automaton, b_name: str, b: Automaton, network: str,
               bound: int = 3, *, capacity: int | None = None, full: str = "block",
               lossy: bool = False, restarts: tuple[bool, bool] = (False, False)
               ) -> Compatibility:
    """Whether `a` and `b`, at the two ends of one connection, can speak to each other (over
    links of that capacity, lossy or not; `restarts[k]`: side k may crash and restart its
    session from the start: see the module docstring)."""
    sides = (a, b)
    names = (a_name, b_name)
    start = (0, 0, (), ())                 # positions of a and b, buffers a->b and b->a
    parent: dict[Any, tuple[Any, str] | None] = {start: None}
    queue = deque([start])
    hit_bound = False

    def path(c: Any) -> tuple[str, ...]:
        out = []
        node = parent[c]
        while node is not None:
            c, what = node
            out.append(what)
            node = parent[c]
        return tuple(reversed(out))

    def add(buf: tuple[type, ...], m: type) -> tuple[type, ...]:
        if network == "fifo":
            return (*buf, m)
        if network == "duplicating":
            return buf if m in buf else tuple(sorted((*buf, m), key=_key))
        return tuple(sorted((*buf, m), key=_key))

    def deliverable(buf: tuple[type, ...]) -> list[type]:
        if network == "fifo":
            return list(buf[:1])
        return list(dict.fromkeys(buf))

    def remove(buf: tuple[type, ...], m: type) -> tuple[type, ...]:
        if network == "duplicating":
            return buf
        i = buf.index(m)
        return buf[:i] + buf[i + 1:]

    while queue:
        conf = queue.popleft()
        pos = (conf[0], conf[1])
        bufs = (conf[2], conf[3])              # bufs[k]: messages travelling from side k
        moved = False
        for k in (0, 1):
            me = sides[k]
            incoming = bufs[1 - k]
            for m in deliverable(incoming):    # the network may deliver m to side k now
                nxt = me.step(pos[k], RECV, m)
                if nxt is None:
                    expects = ", ".join(me.expects(pos[k])) or "nothing"
                    return Compatibility(
                        a_name, b_name, False,
                        f"{names[1 - k]} sent {m.__name__}, which {names[k]} cannot receive "
                        f"at this point (it expects: {expects})", path(conf), hit_bound, bound,
                        len(parent))
                new_pos = list(pos)
                new_pos[k] = nxt
                new_bufs: list[tuple[type, ...]] = list(bufs)
                new_bufs[1 - k] = remove(incoming, m)
                moved |= _visit(parent, queue, conf, (*new_pos, *new_bufs),
                                f"{names[k]} receives {m.__name__}")
            for d, m, nxt in sorted(me.labels(pos[k]), key=lambda x: (x[0], _key(x[1]))):
                if d != SEND:
                    continue
                out = bufs[k]
                full_link = capacity is not None and len(out) >= capacity
                if full_link and full == "block":
                    continue                   # the send waits for room
                if not full_link and network != "duplicating" and len(out) >= bound:
                    hit_bound = True
                    continue
                new_pos = list(pos)
                new_pos[k] = nxt
                new_bufs = list(bufs)
                if not full_link:
                    new_bufs[k] = add(out, m)
                moved |= _visit(parent, queue, conf, (*new_pos, *new_bufs),
                                f"{names[k]} sends {m.__name__}"
                                + (", lost: the link is full" if full_link else ""))
            if lossy:                          # the network loses a message sent by side k
                out = bufs[k]
                for i, m in enumerate(out):
                    if i and out[i - 1] is m:
                        continue               # the same result as losing its neighbour
                    new_bufs = list(bufs)
                    new_bufs[k] = out[:i] + out[i + 1:]
                    _visit(parent, queue, conf, (*pos, *new_bufs),
                           f"the network loses {m.__name__} sent by {names[k]}")
            if restarts[k] and pos[k] != 0:    # side k crashes and restarts its session
                new_pos = list(pos)
                new_pos[k] = 0
                _visit(parent, queue, conf, (*new_pos, *bufs),
                       f"{names[k]} crashes and restarts: its session starts again")
        if not _can_move(sides, pos, bufs, network) and not (
                pos[0] in a.accepting and pos[1] in b.accepting):
            waiting = [f"{names[k]} expects {', '.join(sides[k].expects(pos[k])) or 'nothing'}"
                       for k in (0, 1) if pos[k] not in sides[k].accepting]
            return Compatibility(a_name, b_name, False,
                                 "both sides wait forever: " + "; ".join(waiting), path(conf),
                                 hit_bound, bound, len(parent))
        for k in (0, 1):                       # side k may end here; is the other stuck?
            if _left_waiting(sides, pos, bufs, k):
                w = 1 - k
                return Compatibility(
                    a_name, b_name, False,
                    f"{names[k]} may end its session here while {names[w]} still expects "
                    f"{', '.join(sides[w].expects(pos[w]))}: {names[w]} waits forever",
                    path(conf), hit_bound, bound, len(parent))
    return Compatibility(a_name, b_name, True, None, (), hit_bound, bound, len(parent))


def _visit(parent: dict, queue: deque, conf: Any, nxt: tuple, what: str) -> bool:
    if nxt not in parent:
        parent[nxt] = (conf, what)
        queue.append(nxt)
    return True


def _can_move(sides: tuple[Automaton, Automaton], pos: tuple[int, int],
              bufs: tuple[tuple[type, ...], ...], network: str) -> bool:
    for k in (0, 1):
        if any(d == SEND for d, _, _ in sides[k].labels(pos[k])):
            return True
        if bufs[1 - k] and network != "duplicating":
            return True
        if bufs[1 - k] and any(sides[k].step(pos[k], RECV, m) is not None for m in bufs[1 - k]):
            return True
    return False


def _left_waiting(sides: tuple[Automaton, Automaton], pos: tuple[int, int],
                  bufs: tuple[tuple[type, ...], ...], k: int) -> bool:
    """Whether side k, where its protocol may end, leaves the other side waiting forever if it
    ends there: the other is not where its protocol may end, it can only receive, and nothing
    in flight either way can still move it (or oblige side k to go on).  An end that a protocol
    allows is a choice its code may make (`p.send(X).opt()`, the `p.end` of a loop), so a
    peer that must still receive something does not fit it, even if side k could also send."""
    w = 1 - k
    me, other = sides[k], sides[w]
    if pos[k] not in me.accepting or pos[w] in other.accepting:
        return False
    if any(d == SEND for d, _, _ in other.labels(pos[w])):
        return False
    # a message still in flight to either side (received or refused: the search goes on
    # from each delivery, or stops at the refusal) decides later, not here
    return not any(other.step(pos[w], RECV, m) is not None for m in bufs[k]) and \
        not any(me.step(pos[k], RECV, m) is not None for m in bufs[w])


def _key(m: type) -> tuple[str, str]:
    return (m.__module__, m.__qualname__)


def connections(system: Any, bound: int = 3, crashes: bool = False) -> list[Compatibility]:
    """Check every connection of `system` whose two ports both carry a protocol (`crashes`:
    also where either instance crashes and restarts, any number of times).

    A port without a protocol accepts any typed message, so a connection with one is
    reported as compatible only when both ends have protocols; otherwise it is skipped
    (listed with ok=True and a note in `problem`)."""
    from assay.model.component import component_info

    out = []
    # with interceptors (`connect(..., via=)`) the endpoints' ports must fit (end to end) and
    # so must each hop of the chain: an endpoint's port with its interceptor's side
    for c in (*system.connections, *system.hops):
        ia = component_info(system.instances[c.a.instance])
        ib = component_info(system.instances[c.b.instance])
        a, b = ia.automata.get(c.a.port), ib.automata.get(c.b.port)
        an, bn = f"{c.a.instance}.{c.a.port}", f"{c.b.instance}.{c.b.port}"
        # (an instance connected to itself: its two ports are the two sides)
        a_side, b_side = (an, bn) if c.self_loop else (c.a.instance, c.b.instance)
        if a is None or b is None:
            missing = an if a is None else bn
            out.append(Compatibility(an, bn, True, f"not checked: {missing} has no protocol"))
            continue
        restarts = (crashes and not _persistent(ia, c.a.port),
                    crashes and not _persistent(ib, c.b.port))
        res = compatible(a_side, a, b_side, b, system.network, bound, capacity=c.capacity,
                         full=c.full, lossy=c.lossy, restarts=restarts)
        out.append(replace(res, a=an, b=bn))
    return out


def _persistent(info: Any, port: str) -> bool:
    """Whether the sessions of that port keep their positions across a crash (as the
    kernel's `Runner.restarted` keeps them)."""
    p = info.ports.get(port)
    return bool(p is not None and p.persistent)
