"""The kernel's step semantics: networks, violations and blame, ports, atomic handlers, purity
and fingerprints.

Components are defined at module level (the kernel reads their source for some checks).
Each rule is shown on a spec that breaks it (the kernel reports it, with the right blame) and,
where it makes sense, on one that keeps it (no report).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated

import pytest

from assay import (
    Component,
    Message,
    Peer,
    Port,
    Range,
    System,
    action,
    ensures,
    invariant,
    on,
    requires,
)
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Deliver, Envelope, Fire, Kernel

HERE = Path(__file__).resolve()


def line_of(marker: str) -> int:
    """The line of this file that carries the comment `# <marker>`."""
    lines = [i for i, text in enumerate(HERE.read_text().splitlines(), 1)
             if text.rstrip().endswith(f"# {marker}")]
    assert len(lines) == 1, f"marker {marker!r} found {len(lines)} times"
    return lines[0]


def initial(k: Kernel):
    states = k.initial_states()
    assert len(states) == 1
    state, violations = states[0]
    assert violations == ()
    return state


def matching(k: Kernel, state, text: str) -> list[int]:
    return [e for e in k.enabled_events(state) if text in str(k.event(e))]


def do(k: Kernel, state, text: str):
    """Take the one enabled event whose description contains `text`."""
    evs = matching(k, state, text)
    assert len(evs) == 1, [str(k.event(e)) for e in k.enabled_events(state)]
    return k.step(state, evs[0])


def run_ok(k: Kernel, state, *texts: str):
    for t in texts:
        res = do(k, state, t)
        assert res.violations == (), res.violations
        state = res.state
    return state


# --- messages and basic parties -------------------------------------------------------------------


class Seq(Message):
    n: int


class Req(Message):
    n: int


class Ack(Message):
    n: int


class Hello(Message):
    pass


class Pair(Component):
    """Sends Seq(1) then Seq(2) on the same link, in one action."""

    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Seq(1))
        self.out.send(Seq(2))


class Twice(Component):
    """Sends the same message twice."""

    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Seq(7))
        self.out.send(Seq(7))


class InOrder(Component):
    """Expects Seq(1), Seq(2), ... in order; remembers if one came out of order."""

    inp = Port()
    expected: int = 1
    received: int = 0
    out_of_order: bool = False

    @on(Seq)
    def seq(self, m):
        if m.n != self.expected:
            self.out_of_order = True
        self.expected = m.n + 1
        self.received += 1


def pair_system(network: str, sender: type[Component] = Pair) -> System:
    s = System("pair", network=network)
    a = s.add("a", sender)
    b = s.add("b", InOrder)
    s.connect(a.out, b.inp)

    @s.always
    def in_order(g):
        return not g["b"].out_of_order

    s.terminal(lambda g: g["a"].sent and not g.in_flight())
    return s


# --- networks: unordered ------------------------------------------------------------------------


def test_unordered_a_message_is_consumed_on_delivery():
    k = Kernel(pair_system("unordered"))
    st = run_ok(k, initial(k), "a fires go")
    assert sorted(e.message.n for e in k.in_flight(st)) == [1, 2]
    st = run_ok(k, st, "receives Seq(n=1)")
    assert [e.message for e in k.in_flight(st)] == [Seq(2)]
    assert matching(k, st, "Seq(n=1)") == []
    st = run_ok(k, st, "receives Seq(n=2)")
    assert k.in_flight(st) == []
    assert k.enabled_events(st) == []
    assert k.local_values(st, "b")["received"] == 2


def test_unordered_identical_messages_in_flight_form_a_multiset():
    k = Kernel(pair_system("unordered", Twice))
    st = run_ok(k, initial(k), "a fires go")
    assert [e.message for e in k.in_flight(st)] == [Seq(7), Seq(7)]
    assert len(matching(k, st, "Seq(n=7)")) == 1          # one event, two copies
    st = run_ok(k, st, "Seq(n=7)")
    assert [e.message for e in k.in_flight(st)] == [Seq(7)]    # the other is still there
    st = run_ok(k, st, "Seq(n=7)")
    assert k.in_flight(st) == []
    assert k.local_values(st, "b")["received"] == 2


def test_unordered_delivers_in_any_order():
    k = Kernel(pair_system("unordered"))
    st = run_ok(k, initial(k), "a fires go")
    assert len(matching(k, st, "b receives Seq")) == 2
    st = run_ok(k, st, "receives Seq(n=2)", "receives Seq(n=1)")
    assert k.local_values(st, "b")["out_of_order"] is True


def test_unordered_reordering_breaks_a_spec_that_relies_on_order():
    r = check(pair_system("unordered"))
    assert r.verdict == "violation"
    assert r.violation.kind == "property" and r.violation.name == "in_order"
    assert [s.description for s in r.steps] == [
        "a fires go", "b receives Seq(n=2) from a (on inp)"]


# --- networks: fifo -------------------------------------------------------------------------------


def test_fifo_delivers_messages_of_one_link_in_send_order_only():
    k = Kernel(pair_system("fifo"))
    st = run_ok(k, initial(k), "a fires go")
    assert [e.message for e in k.in_flight(st)] == [Seq(1), Seq(2)]
    assert matching(k, st, "Seq(n=2)") == []
    assert len(matching(k, st, "Seq(n=1)")) == 1
    st = run_ok(k, st, "Seq(n=1)")
    assert len(matching(k, st, "Seq(n=2)")) == 1


def test_fifo_refuses_to_step_a_message_that_is_not_at_the_head():
    from assay.errors import TraceError

    k = Kernel(pair_system("fifo"))
    st = run_ok(k, initial(k), "a fires go")
    second = Deliver(Envelope("a", "out", "b", "inp", Seq(2)))
    with pytest.raises(TraceError):
        k.step(st, second)


def test_fifo_keeps_a_spec_that_relies_on_order_correct():
    r = check(pair_system("fifo"))
    assert r.verdict == "ok", r.violation


class Solo(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Hello())


class Sink(Component):
    inp = Port(many=True)
    got: frozenset = frozenset()

    @on(Hello)
    def hello(self, m):
        self.got = self.got | {m.sender}


def test_fifo_links_are_independent():
    s = System("two_links", network="fifo")
    sink = s.add("sink", Sink)
    for n in ("x", "y"):
        s.connect(s.add(n, Solo).out, sink.inp)
    k = Kernel(s)
    st = run_ok(k, initial(k), "x fires go", "y fires go")
    assert len(matching(k, st, "sink receives Hello()")) == 2
    st = run_ok(k, st, "from y", "from x")
    assert k.local_values(st, "sink")["got"] == {"x", "y"}


# --- networks: duplicating ---------------------------------------------------------------------


class Counter(Component):
    """Counts Seq messages in a field bounded to [0, 2]: fine if each is delivered once."""

    inp = Port()
    count: Annotated[int, Range(0, 2)] = 0

    @on(Seq)
    def seq(self, m):
        self.count += 1


def counter_system(network: str) -> System:
    s = System("counter", network=network)
    a = s.add("a", Pair)
    c = s.add("c", Counter)
    s.connect(a.out, c.inp)
    s.terminal(lambda g: g["a"].sent and (not g.in_flight() or g["c"].count == 2))
    return s


def test_duplicating_a_delivered_message_stays_deliverable():
    k = Kernel(counter_system("duplicating"))
    st = run_ok(k, initial(k), "a fires go", "Seq(n=1)")
    assert Seq(1) in [e.message for e in k.in_flight(st)]
    assert len(matching(k, st, "Seq(n=1)")) == 1
    res = do(k, st, "Seq(n=1)")
    assert res.violations == ()
    assert k.local_values(res.state, "c")["count"] == 2


def test_duplicating_redelivery_breaks_a_receiver_that_counts_on_exactly_once():
    r = check(counter_system("duplicating"))
    assert r.verdict == "violation"
    assert r.violation.kind == "type" and r.violation.blame == "c.seq"


def test_unordered_delivers_each_message_once_so_the_counter_stays_in_range():
    r = check(counter_system("unordered"))
    assert r.verdict == "ok", r.violation


# --- violations and blame: contracts --------------------------------------------------------------


class Client(Component):
    """Sends one Req with its configured value, and takes the Ack."""

    server = Port()
    value: int = 1
    sent: bool = False
    acked: int = 0

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.server.send(Req(self.value))

    @on(Ack)
    def ack(self, m):
        self.acked = m.n


class Server(Component):
    """Requires a positive request; ensures it adds it to the total."""

    clients = Port(many=True)
    total: int = 0

    @on(Req)
    @requires(lambda self, m: m.n > 0)
    @ensures(lambda old, self, m: self.total == old.total + m.n)
    def req(self, m):
        self.total += m.n
        self.clients.send(Ack(m.n), to=m.sender)


class SloppyServer(Component):
    """Breaks its own postcondition: adds 1 whatever the request says."""

    clients = Port(many=True)
    total: int = 0

    @on(Req)
    @ensures(lambda old, self, m: self.total == old.total + m.n)
    def req(self, m):
        self.total += 1
        self.clients.send(Ack(m.n), to=m.sender)


class CappedServer(Component):
    """Keeps its total at most 3 (an invariant) — which a large request breaks."""

    clients = Port(many=True)
    total: int = 0

    invariant(lambda self: self.total <= 3)

    @on(Req)
    def req(self, m):
        self.total += m.n
        self.clients.send(Ack(m.n), to=m.sender)


def client_server(server: type[Component], *values: int, network: str = "unordered") -> System:
    s = System("cs", network=network)
    srv = s.add("srv", server)
    for i, v in enumerate(values):
        s.connect(s.add(f"rm{i}", Client, value=v).server, srv.clients)
    s.terminal(lambda g: not g.in_flight() and all(c.sent for c in g.instances(Client)))
    return s


def test_requires_failure_blames_the_sender_instance():
    r = check(client_server(Server, 1, 0))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("requires", "rm1")
    assert "srv.req" in v.message
    assert v.location is not None and Path(v.location.file) == HERE


def test_requires_that_holds_passes():
    r = check(client_server(Server, 1, 2))
    assert r.verdict == "ok", r.violation


def test_requires_failure_leaves_the_receiver_unchanged_and_sends_nothing():
    k = Kernel(client_server(Server, 0))
    st = run_ok(k, initial(k), "rm0 fires go")
    res = do(k, st, "srv receives Req(n=0)")
    assert [v.kind for v in res.violations] == ["requires"]
    assert res.sends == ()
    assert k.local_values(res.state, "srv") == {"total": 0}


def test_ensures_failure_blames_instance_and_handler():
    r = check(client_server(SloppyServer, 2))
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("ensures", "srv.req")


def test_ensures_that_holds_passes():
    r = check(client_server(SloppyServer, 1))
    assert r.verdict == "ok", r.violation


def test_invariant_broken_by_a_handler_blames_instance_and_handler():
    r = check(client_server(CappedServer, 2, 2))
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("invariant", "srv.req")
    assert len(r.steps) == 4


def test_invariant_kept_by_every_handler_passes():
    r = check(client_server(CappedServer, 1, 2))
    assert r.verdict == "ok", r.violation


class BadStart(Component):
    p = Port()
    x: int = 0

    invariant(lambda self: self.x > 0)


class GoodStart(Component):
    p = Port()
    x: int = 1

    invariant(lambda self: self.x > 0)


def test_invariant_false_in_the_initial_state_is_reported_as_initial():
    s = System("start")
    s.add("i", BadStart)
    k = Kernel(s)
    [(_, violations)] = k.initial_states()
    assert [(v.kind, v.blame) for v in violations] == [("invariant", "i (initial state)")]
    r = check(s)
    assert r.verdict == "violation"
    assert r.violation.blame == "i (initial state)"
    assert r.steps == ()


def test_invariant_true_in_the_initial_state_is_not_reported():
    s = System("start")
    s.add("i", GoodStart)
    s.terminal(lambda g: True)
    assert Kernel(s).initial_states()[0][1] == ()
    assert check(s).verdict == "ok"


# --- violations: exceptions -----------------------------------------------------------------------


def helper_that_fails(n):
    raise KeyError(n)  # HELPER_RAISE


class Crasher(Component):
    clients = Port(many=True)
    total: int = 0

    @on(Req)
    def req(self, m):
        if m.n == 0:
            raise ValueError("zero request")  # HANDLER_RAISE
        if m.n == 9:
            helper_that_fails(m.n)
        self.total += m.n


def test_exception_in_a_handler_is_a_violation_blaming_the_handler_at_the_raising_line():
    r = check(client_server(Crasher, 1, 0))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("exception", "srv.req")
    assert "ValueError" in v.message and "zero request" in v.message
    assert Path(v.location.file).resolve() == HERE
    assert v.location.line == line_of("HANDLER_RAISE")


def test_exception_location_is_the_innermost_spec_line():
    r = check(client_server(Crasher, 9))
    v = r.violation
    assert (v.kind, v.blame) == ("exception", "srv.req")
    assert Path(v.location.file).resolve() == HERE
    assert v.location.line == line_of("HELPER_RAISE")


def test_handler_that_does_not_raise_passes():
    assert check(client_server(Crasher, 1, 2)).verdict == "ok"


class FragileEnsures(Component):
    clients = Port(many=True)
    total: int = 0

    @on(Req)
    @ensures(lambda old, self, m: self.total // m.n >= 0)    # ZeroDivisionError for n == 0
    def req(self, m):
        self.total += 1


class FragileRequires(Component):
    clients = Port(many=True)
    total: int = 0

    @on(Req)
    @requires(lambda self, m: 10 // m.n > 0)    # ZeroDivisionError for n == 0
    def req(self, m):
        self.total += 1


class FragileInvariant(Component):
    clients = Port(many=True)
    total: int = 1

    invariant(lambda self: 10 // self.total > 0)   # ZeroDivisionError for total == 0  # INV

    @on(Req)
    def req(self, m):
        self.total = m.n


def test_exception_in_an_ensures_lambda_is_a_violation_not_a_crash():
    r = check(client_server(FragileEnsures, 0))
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("exception", "srv.req")
    assert "ZeroDivisionError" in r.violation.message


def test_exception_in_an_invariant_lambda_is_a_violation_not_a_crash():
    r = check(client_server(FragileInvariant, 0))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("exception", "srv.req")
    assert v.location.line == line_of("INV")


def test_exception_in_a_requires_lambda_is_a_violation_not_a_crash():
    r = check(client_server(FragileRequires, 0))
    assert r.verdict == "violation"
    assert r.violation.kind == "exception"
    assert "ZeroDivisionError" in r.violation.message


def test_exception_in_a_requires_lambda_blames_the_handler_not_the_sender():
    # Violation's contract: "`instance.handler` for ... an exception"; the sender sent a
    # well-typed message, the receiver's precondition crashed on it
    r = check(client_server(FragileRequires, 0))
    assert r.violation.blame == "srv.req"


def test_contracts_that_do_not_raise_pass():
    for cls in (FragileEnsures, FragileRequires, FragileInvariant):
        assert check(client_server(cls, 1, 2)).verdict == "ok", cls


# --- violations: state rules ----------------------------------------------------------------------


class Typo(Component):
    clients = Port(many=True)
    state: int = 0

    @on(Req)
    def req(self, m):
        self.stat = m.n          # typo-assign


class TypoThroughSetattr(Component):
    """The same typo where no reading of the source sees it: only running the handler does."""

    clients = Port(many=True)
    state: int = 0

    @on(Req)
    def req(self, m):
        setattr(self, "stat", m.n)  # noqa: B010  # typo-setattr


class TypoRead(Component):
    clients = Port(many=True)
    state: int = 0

    @on(Req)
    def req(self, m):
        me = self
        self.state = me.stat + m.n          # typo-read


class MessageTypo(Component):
    clients = Port(many=True)

    @on(Req)
    def req(self, m):
        self.clients.send(m.nn, to=m.sender)          # typo-message-field


class BuildsAckWrongly(Component):
    clients = Port(many=True)

    @on(Req)
    def req(self, m):
        make = Ack
        self.clients.send(make(), to=m.sender)          # ack-missing-field


class ReadsAFieldOfNone(Component):
    """An AttributeError on a value of the model (None), not on the spec's own names: the
    model's behaviour, a violation."""

    clients = Port(many=True)
    state: int = 0

    @on(Req)
    def req(self, m):
        found = None if m.n == 1 else m
        self.state = found.n


class Hoarder(Component):
    clients = Port(many=True)
    seen: frozenset = frozenset()
    log: tuple = ()

    @on(Req)
    def req(self, m):
        if m.n == 1:
            self.seen = {m.sender}              # a set: mutable
        elif m.n == 2:
            self.log = [m.n]                    # a list: mutable
        else:
            self.seen = self.seen | {m.sender}
            self.log = self.log + (m.n,)


def test_assigning_an_unknown_attribute_is_a_spec_error_when_the_class_is_compiled():
    with pytest.raises(SpecError) as info:
        client_server(Typo, 1)
    e = info.value
    assert "Typo.req assigns self.stat, which is not a field of Typo" in e.message
    assert e.location is not None and e.location.line == line_of("typo-assign")
    assert "did you mean 'state'?" in e.notes


def test_assigning_a_port_is_a_spec_error_that_says_so():
    class AssignsAPort(Component):
        clients = Port(many=True)

        @on(Req)
        def req(self, m):
            self.clients = m.n          # assigns-a-port

    with pytest.raises(SpecError) as info:
        client_server(AssignsAPort, 1)
    assert "assigns self.clients, which is a port of AssignsAPort, not a field" in \
        info.value.message
    assert info.value.location.line == line_of("assigns-a-port")


@pytest.mark.parametrize("cls,marker,says", [
    (TypoThroughSetattr, "typo-setattr", "srv.req assigns self.stat, which is not a field"),
    (TypoRead, "typo-read", "srv.req reads self.stat, which is not a field of TypoRead"),
    (MessageTypo, "typo-message-field", "srv.req reads 'nn' of a Req, which has no such field"),
    (BuildsAckWrongly, "ack-missing-field", "Ack is missing field 'n'"),
])
def test_ill_formed_handler_code_is_a_spec_error_at_its_line_not_a_violation(cls, marker, says):
    system = client_server(cls, 1)          # nothing to see in the source: it loads
    for strategy in ("bfs", "dfs"):
        with pytest.raises(SpecError) as info:
            check(system, strategy=strategy)
        e = info.value
        assert says in e.message
        assert e.location is not None and Path(e.location.file) == HERE
        assert e.location.line == line_of(marker)
        assert e.__cause__ is None and (e.__suppress_context__ or e.__context__ is None)


RUNS: list[int] = []


class CountingServer(Component):
    """Deterministic: it records its runs outside the model, but its result does not read
    them."""

    clients = Port(many=True)
    total: int = 0

    @on(Req)
    def req(self, m):
        RUNS.append(m.n)
        self.total = min(self.total + m.n, 5)


def test_each_handler_runs_twice_on_its_first_visit_and_never_again():
    RUNS.clear()
    k = Kernel(client_server(CountingServer, 1, 2))
    assert check(k).verdict == "ok"
    srv = k.index["srv"]
    firsts = [key for key in k._dmemo if k.env_dst[key & 0xFFFFFFFF] == srv]
    assert firsts and len(RUNS) == 2 * len(firsts)
    assert check(k).verdict == "ok"          # every step memoised: no run at all
    assert len(RUNS) == 2 * len(firsts)


def test_an_attribute_error_on_a_value_of_the_model_stays_a_violation():
    r = check(client_server(ReadsAFieldOfNone, 1, 1))
    assert r.verdict == "violation"
    assert (r.violation.kind, r.violation.blame) == ("exception", "srv.req")
    assert "AttributeError" in r.violation.message


def test_storing_a_set_in_a_field_is_a_type_violation():
    r = check(client_server(Hoarder, 1))
    assert (r.violation.kind, r.violation.blame) == ("type", "srv.req")
    assert "seen" in r.violation.message


def test_storing_a_list_in_a_field_is_a_type_violation():
    r = check(client_server(Hoarder, 2))
    assert (r.violation.kind, r.violation.blame) == ("type", "srv.req")
    assert "log" in r.violation.message


def test_storing_immutable_values_passes():
    assert check(client_server(Hoarder, 3, 4)).verdict == "ok"


# --- violations: sending --------------------------------------------------------------------------


class Echo(Component):
    """Takes Req on one port and acknowledges; never handles Ack."""

    inp = Port()
    got: int = 0

    @on(Req)
    def req(self, m):
        self.got = m.n


class SendsJunk(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send("Req(1)")  # JUNK


class SendsBadField(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Req("one"))


class SendsAck(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Ack(1))


class SendsReq(Component):
    out = Port()
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.out.send(Req(1))


def sender_system(sender: type[Component]) -> System:
    s = System("send")
    c = s.add("c", sender)
    e = s.add("e", Echo)
    s.connect(c.out, e.inp)
    s.terminal(lambda g: g["c"].sent and not g.in_flight())
    return s


def test_sending_a_non_message_is_a_violation_blaming_the_sender():
    r = check(sender_system(SendsJunk))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("type", "c.go")
    assert "not a Message" in v.message
    assert v.location.line == line_of("JUNK")


def test_sending_a_message_with_a_wrongly_typed_field_is_a_violation_blaming_the_sender():
    r = check(sender_system(SendsBadField))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("type", "c.go")
    assert "'n'" in v.message and "'one'" in v.message


def test_a_bad_send_sends_nothing_and_changes_nothing():
    k = Kernel(sender_system(SendsBadField))
    st = initial(k)
    res = do(k, st, "c fires go")
    assert res.violations and res.sends == ()
    assert k.local_values(res.state, "c") == {"sent": False}
    assert k.in_flight(res.state) == []


def test_a_message_without_a_handler_at_the_receiver_is_unhandled_blaming_the_sender():
    r = check(sender_system(SendsAck))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("unhandled", "c")
    assert "Ack" in v.message and "e" in v.message


def test_a_well_typed_handled_message_passes():
    assert check(sender_system(SendsReq)).verdict == "ok"


# --- many-ports: send, to=, broadcast, peers ------------------------------------------------------


class Hub(Component):
    """Talks to leaves: by name (`target`), without naming one (bug), or to all."""

    leaves = Port(many=True)
    mode: str = "all"
    target: str = "l0"
    done: bool = False
    known: frozenset = frozenset()
    acks: frozenset = frozenset()

    @action(when=lambda self: not self.done)
    def go(self):
        self.done = True
        self.known = self.leaves.peers
        if self.mode == "all":
            self.leaves.broadcast(Req(1))
        elif self.mode == "one":
            self.leaves.send(Req(1), to=self.target)  # SEND_TO
        else:
            self.leaves.send(Req(1))  # SEND_NO_TO

    @on(Ack)
    def ack(self, m):
        self.acks = self.acks | {m.sender}


class Leaf(Component):
    hub = Port()
    got: int = 0
    hub_name: str = ""

    @on(Req)
    def req(self, m):
        self.got += 1
        self.hub_name = m.sender
        self.hub.send(Ack(m.n))


def hub_system(mode: str, target: str = "l0", leaves: int = 3) -> System:
    s = System("hub")
    h = s.add("hub", Hub, mode=mode, target=target)
    for i in range(leaves):
        s.connect(h.leaves, s.add(f"l{i}", Leaf).hub)
    s.terminal(lambda g: g["hub"].done and not g.in_flight())
    return s


def test_broadcast_reaches_every_peer():
    k = Kernel(hub_system("all"))
    res = do(k, initial(k), "hub fires go")
    assert sorted(e.dst for e in res.sends) == ["l0", "l1", "l2"]
    assert all(e.message == Req(1) for e in res.sends)
    r = check(hub_system("all"))
    assert r.verdict == "ok", r.violation


def test_broadcast_delivers_to_each_leaf_once():
    k = Kernel(hub_system("all"))
    st = run_ok(k, initial(k), "hub fires go", "l0 receives", "l1 receives", "l2 receives",
                "from l0", "from l1", "from l2")
    assert [k.local_values(st, f"l{i}")["got"] for i in range(3)] == [1, 1, 1]
    assert k.local_values(st, "hub")["acks"] == {"l0", "l1", "l2"}


def test_send_to_a_connected_peer_reaches_only_that_peer():
    k = Kernel(hub_system("one", target="l1"))
    res = do(k, initial(k), "hub fires go")
    assert [(e.src, e.src_port, e.dst, e.dst_port) for e in res.sends] == [
        ("hub", "leaves", "l1", "hub")]
    assert check(hub_system("one", target="l1")).verdict == "ok"


def test_send_to_a_peer_that_is_not_connected_is_a_port_violation():
    r = check(hub_system("one", target="l7"))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("port", "hub.go")
    assert "l7" in v.message
    assert v.location.line == line_of("SEND_TO")


def test_send_without_to_on_a_many_port_is_a_port_violation():
    r = check(hub_system("anon"))
    assert r.verdict == "violation"
    v = r.violation
    assert (v.kind, v.blame) == ("port", "hub.go")
    assert "to=" in v.message
    assert v.location.line == line_of("SEND_NO_TO")


def test_sender_and_peers_are_peers_equal_to_instance_names():
    k = Kernel(hub_system("all", leaves=2))
    st = run_ok(k, initial(k), "hub fires go", "l1 receives", "from l1")
    hub = k.local_values(st, "hub")
    assert hub["known"] == frozenset({"l0", "l1"})
    assert all(isinstance(p, Peer) for p in hub["known"])
    [acker] = hub["acks"]
    assert acker == "l1" and isinstance(acker, Peer)
    leaf = k.local_values(st, "l1")
    assert leaf["hub_name"] == "hub" and isinstance(leaf["hub_name"], Peer)


def test_a_delivered_message_carries_its_sender_but_the_envelope_does_not_need_it():
    k = Kernel(hub_system("all", leaves=1))
    st = run_ok(k, initial(k), "hub fires go")
    [env] = k.in_flight(st)
    assert (env.src, env.dst) == ("hub", "l0")
    assert env.message == Req(1)


# --- atomic handlers ------------------------------------------------------------------------------


class Chatty(Component):
    """Sends twice, then (when told so) raises: all or nothing."""

    clients = Port(many=True)
    total: int = 0
    crash: bool = False

    @on(Req)
    def req(self, m):
        self.clients.send(Ack(1), to=m.sender)
        self.total += m.n
        self.clients.send(Ack(2), to=m.sender)
        if self.crash:
            raise RuntimeError("after sending")


class Overflow(Component):
    """Sends, then stores a value outside the field's range."""

    clients = Port(many=True)
    total: Annotated[int, Range(0, 1)] = 0

    @on(Req)
    def req(self, m):
        self.clients.send(Ack(1), to=m.sender)
        self.total += m.n


def test_handler_sends_enter_the_network_together_when_it_returns():
    s = client_server(Chatty, 5)
    k = Kernel(s)
    st = run_ok(k, initial(k), "rm0 fires go")
    before = k.in_flight(st)
    res = do(k, st, "srv receives Req(n=5)")
    assert res.violations == ()
    assert [e.message for e in res.sends] == [Ack(1), Ack(2)]
    assert sorted(e.message.n for e in k.in_flight(res.state)) == [1, 2]
    assert k.local_values(res.state, "srv") == {"total": 5, "crash": False}
    assert k.in_flight(st) == before                    # the input state is untouched


def test_handler_that_raises_after_sending_sends_nothing_and_changes_nothing():
    s = System("cs")
    srv = s.add("srv", Chatty, crash=True)
    s.connect(s.add("rm0", Client, value=5).server, srv.clients)
    k = Kernel(s)
    st = run_ok(k, initial(k), "rm0 fires go")
    res = do(k, st, "srv receives Req(n=5)")
    assert [v.kind for v in res.violations] == ["exception"]
    assert res.sends == ()
    assert k.local_values(res.state, "srv") == {"total": 0, "crash": True}
    assert all(not isinstance(e.message, Ack) for e in k.in_flight(res.state))


def test_handler_that_breaks_a_field_type_after_sending_sends_nothing():
    k = Kernel(client_server(Overflow, 2))
    st = run_ok(k, initial(k), "rm0 fires go")
    res = do(k, st, "srv receives Req(n=2)")
    assert [(v.kind, v.blame) for v in res.violations] == [("type", "srv.req")]
    assert res.sends == ()
    assert k.local_values(res.state, "srv") == {"total": 0}
    assert k.in_flight(res.state) == []


def test_handler_that_keeps_the_field_type_sends():
    k = Kernel(client_server(Overflow, 1))
    st = run_ok(k, initial(k), "rm0 fires go")
    res = do(k, st, "srv receives Req(n=1)")
    assert res.violations == () and [e.message for e in res.sends] == [Ack(1)]


# --- purity and fingerprints ----------------------------------------------------------------------


def test_step_is_pure_the_same_state_and_event_give_equal_results():
    k = Kernel(client_server(Server, 1, 2))
    st = run_ok(k, initial(k), "rm0 fires go", "rm1 fires go")
    snapshot = copy.deepcopy(st)
    fp = k.fingerprint(st)
    for ev in k.enabled_events(st):
        a = k.step(st, ev)
        b = k.step(st, ev)
        assert a == b
        assert k.fingerprint(a.state) == k.fingerprint(b.state)
    assert st == snapshot and k.fingerprint(st) == fp
    assert k.enabled_events(st) == k.enabled_events(snapshot)


def test_step_gives_the_same_result_in_a_fresh_kernel():
    k1 = Kernel(client_server(Server, 1, 2))
    k2 = Kernel(client_server(Server, 1, 2))
    s1 = run_ok(k1, initial(k1), "rm1 fires go", "rm0 fires go", "from rm0")
    k2.successors(initial(k2))                      # intern things in another order
    s2 = run_ok(k2, initial(k2), "rm0 fires go", "rm1 fires go", "from rm0")
    assert k1.fingerprint(s1) == k2.fingerprint(s2)
    assert k1.local_values(s1, "srv") == k2.local_values(s2, "srv") == {"total": 1}


def test_step_by_named_event_equals_step_by_id():
    k = Kernel(client_server(Server, 1))
    st = initial(k)
    [ev] = k.enabled_events(st)
    assert k.event(ev) == Fire("rm0", "go")
    assert k.step(st, Fire("rm0", "go")) == k.step(st, ev)
    st2 = k.step(st, ev).state
    [d] = k.enabled_events(st2)
    assert k.step(st2, k.event(d)) == k.step(st2, d)


def test_successors_agree_with_step():
    k = Kernel(client_server(Server, 1, 2))
    st = run_ok(k, initial(k), "rm0 fires go", "rm1 fires go")
    succ, enabled = k.successors(st)
    assert enabled == len(k.enabled_events(st))
    for ev, t, viol in succ:
        res = k.step(st, ev)
        assert (res.state, res.violations) == (t, viol)


def test_equal_states_reached_by_different_paths_have_equal_fingerprints():
    k = Kernel(client_server(Server, 1, 2))
    a = run_ok(k, initial(k), "rm0 fires go", "rm1 fires go")
    b = run_ok(k, initial(k), "rm1 fires go", "rm0 fires go")
    assert a == b
    assert k.fingerprint(a) == k.fingerprint(b)


class EitherOrder(Component):
    """Sends Seq(1) and Seq(2) on one link, in either order."""

    out = Port()
    sent1: bool = False
    sent2: bool = False

    @action(when=lambda self: not self.sent1)
    def one(self):
        self.sent1 = True
        self.out.send(Seq(1))

    @action(when=lambda self: not self.sent2)
    def two(self):
        self.sent2 = True
        self.out.send(Seq(2))


class Ignore(Component):
    inp = Port()

    @on(Seq)
    def seq(self, m):
        pass


def either_order(network: str) -> Kernel:
    s = System("either", network=network)
    a = s.add("a", EitherOrder)
    s.connect(a.out, s.add("b", Ignore).inp)
    return Kernel(s)


def test_unordered_states_and_fingerprints_ignore_send_order():
    k = either_order("unordered")
    a = run_ok(k, initial(k), "a fires one", "a fires two")
    b = run_ok(k, initial(k), "a fires two", "a fires one")
    assert a == b
    assert k.fingerprint(a) == k.fingerprint(b)


def test_fifo_states_and_fingerprints_keep_send_order():
    k = either_order("fifo")
    a = run_ok(k, initial(k), "a fires one", "a fires two")
    b = run_ok(k, initial(k), "a fires two", "a fires one")
    assert [e.message for e in k.in_flight(a)] == [Seq(1), Seq(2)]
    assert [e.message for e in k.in_flight(b)] == [Seq(2), Seq(1)]
    assert a != b
    assert k.fingerprint(a) != k.fingerprint(b)


def test_fingerprint_counts_copies_of_a_message_in_flight():
    s = System("twice")
    a = s.add("a", Twice)
    s.connect(a.out, s.add("b", Ignore).inp)
    k = Kernel(s)
    two = run_ok(k, initial(k), "a fires go")
    one = run_ok(k, two, "b receives")
    assert k.local_values(one, "b") == k.local_values(two, "b") == {}
    assert len(k.in_flight(two)) == 2 and len(k.in_flight(one)) == 1
    assert k.fingerprint(one) != k.fingerprint(two)


def test_different_states_have_different_fingerprints():
    k = Kernel(client_server(Server, 1, 2))
    seen: dict[str, object] = {}
    frontier = [initial(k)]
    while frontier:
        st = frontier.pop()
        fp = k.fingerprint(st)
        if fp in seen:
            assert seen[fp] == st
            continue
        seen[fp] = st
        frontier.extend(t for _, t, _ in k.successors(st)[0])
    assert len(seen) == len(set(seen.values())) > 5
    assert all(len(fp) == 16 for fp in seen)


def test_in_flight_messages_are_part_of_the_fingerprint():
    k = Kernel(client_server(Server, 1))
    a = run_ok(k, initial(k), "rm0 fires go")
    b = run_ok(k, a, "srv receives")
    assert k.local_values(a, "rm0") == k.local_values(b, "rm0")
    assert k.fingerprint(a) != k.fingerprint(b)


class Flag(Component):
    p = Port()
    t: tuple = (1,)

    @action(when=lambda self: self.t == (1,) and self.t[0] is not True)
    def flip(self):
        self.t = (True,)


def test_values_equal_in_python_but_of_different_types_are_different_states():
    # (1,) == (True,) in Python, but a bool is not an int: the kernel must keep them apart
    s = System("flag")
    s.add("f", Flag)
    k = Kernel(s)
    st = initial(k)
    res = do(k, st, "f fires flip")
    assert res.violations == ()
    assert k.local_values(res.state, "f")["t"][0] is True
    assert res.state != st
    assert k.fingerprint(res.state) != k.fingerprint(st)
