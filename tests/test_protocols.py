"""Session types on ports: compilation, well-formedness, kernel enforcement, compatibility."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, on
from assay import protocol as p
from assay.checker import check
from assay.errors import SpecError
from assay.model.load import build
from assay.verifier.compat import compatible, connections

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "protocols"


class A(Message): ...
class B(Message): ...
class C(Message): ...


def accepts(proto: p.Protocol, word: list[tuple[str, type]]) -> bool:
    auto = proto.automaton()
    state = 0
    for d, m in word:
        nxt = auto.step(state, d, m)
        if nxt is None:
            return False
        state = nxt
    return state in auto.accepting


# --- the language of a protocol ---------------------------------------------------------------

def test_sequence_choice_option_and_repetition_accept_their_words():
    proto = p.send(A) >> (p.recv(B) | p.recv(C)) >> p.send(A).many() >> p.recv(B).opt()
    assert accepts(proto, [("send", A), ("recv", B)])
    assert accepts(proto, [("send", A), ("recv", C), ("send", A), ("send", A), ("recv", B)])
    assert not accepts(proto, [("send", A)])                    # the choice is not optional
    assert not accepts(proto, [("recv", B)])                    # order matters
    assert not accepts(proto, [("send", A), ("recv", B), ("recv", B), ("recv", B)])


def test_loop_repeats_until_end():
    proto = p.loop(lambda again: p.send(A) >> p.recv(B) >> again | p.end)
    assert accepts(proto, [])
    assert accepts(proto, [("send", A), ("recv", B)] * 3)
    assert not accepts(proto, [("send", A)])


def test_dual_flips_every_direction():
    proto = p.send(A) >> (p.recv(B) | p.send(C))
    d = proto.dual()
    assert accepts(d, [("recv", A), ("send", B)])
    assert accepts(d, [("recv", A), ("recv", C)])
    assert not accepts(d, [("send", A), ("send", B)])
    assert str(d) == "recv(A) >> (send(B) | recv(C))"


def test_end_stops_the_session():
    proto = p.send(A) >> p.end
    assert accepts(proto, [("send", A)])
    assert proto.automaton().expects(1) == ["end"]


@pytest.mark.parametrize("fixture", ["empty_choice.py", "unguarded_loop.py"])
def test_ill_formed_protocol_is_a_spec_error_at_its_line(fixture):
    path = FIX / fixture
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "<- error here" in t)
    with pytest.raises(SpecError) as e:
        build(path)
    assert e.value.location is not None and e.value.location.line == line
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"{fixture}:{line}: error:" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_repetition_of_something_empty_is_rejected():
    with pytest.raises(SpecError, match="without exchanging a message"):
        p.send(A).opt().many().automaton()


def test_port_with_something_else_than_a_protocol_is_rejected():
    class Bad(Component):
        out = Port("send A then B")

    s = System("bad")
    with pytest.raises(SpecError, match="is not a protocol"):
        s.add("x", Bad)


# --- enforcement in the kernel -------------------------------------------------------------------

SIDE = p.send(A) >> p.recv(B)          # the client's side


class Client(Component):
    srv = Port(SIDE)
    sent: int = 0
    limit: int = 1

    @action(when=lambda self: self.sent < self.limit)
    def go(self):
        self.sent += 1
        self.srv.send(A())

    @on(B)
    def got(self, m):
        pass


class Server(Component):
    cl = Port(SIDE.dual(), many=True)
    replies: int = 1

    @on(A)
    def a(self, m):
        for _ in range(self.replies):
            self.cl.send(B(), to=m.sender)


def client_server(limit: int = 1, replies: int = 1, clients: int = 2) -> System:
    s = System("cs", network="unordered")
    srv = s.add("srv", Server, replies=replies)
    for i in range(clients):
        s.connect(s.add(f"c{i}", Client, limit=limit).srv, srv.cl)
    s.terminal(lambda g: True)
    return s


def test_protocol_following_system_holds():
    r = check(client_server())
    assert r.verdict == "ok", r.violation


def test_send_out_of_protocol_blames_the_sender():
    r = check(client_server(limit=2))                    # a client sends A twice
    assert r.verdict == "violation"
    v = r.violation
    assert v.kind == "protocol" and v.blame.endswith(".go") and v.blame.startswith("c")
    assert "does not allow" in v.message and "recv B" in v.message


def test_unexpected_message_blames_the_sender_of_it():
    r = check(client_server(replies=2))                  # the server answers twice
    assert r.verdict == "violation"
    v = r.violation
    assert v.kind == "protocol"
    # either the server's own protocol (send B twice) or the client's (recv B twice) stops it
    assert v.blame in ("srv.a", "srv")


def test_one_session_per_peer_on_a_many_port():
    # each client's session with the server is separate: two clients, one A each, is fine
    r = check(client_server(clients=3))
    assert r.verdict == "ok", r.violation


# --- compatibility of connections ----------------------------------------------------------------

TM = (p.recv(A) >> (p.send(B) | p.send(C)) | p.send(C) >> p.recv(A).opt())


@pytest.mark.parametrize("network", ["unordered", "fifo"])
def test_a_protocol_and_its_dual_are_compatible_with_crossing_messages(network):
    res = compatible("tm", TM.automaton(), "rm", TM.dual().automaton(), network)
    assert res.ok and not res.bounded


def test_incompatible_ports_give_the_shortest_witness():
    rm = (p.send(A) >> p.send(A).opt() >> (p.recv(B) | p.recv(C))
          | p.recv(C) >> p.send(A).opt())
    res = compatible("tm", TM.automaton(), "rm", rm.automaton(), "unordered")
    assert not res.ok
    assert sorted(res.witness) == ["rm sends A", "rm sends A", "tm receives A"]   # shortest
    assert "tm cannot receive" in res.problem


def test_waiting_for_each_other_is_incompatible():
    res = compatible("a", p.recv(A).automaton(), "b", p.recv(A).automaton(), "fifo")
    assert not res.ok and "wait forever" in res.problem and res.witness == ()


def test_order_matters_on_unordered_networks_but_not_on_fifo():
    a = p.send(A) >> p.send(B)
    assert compatible("x", a.automaton(), "y", a.dual().automaton(), "fifo").ok
    res = compatible("x", a.automaton(), "y", a.dual().automaton(), "unordered")
    assert not res.ok and res.witness == ("x sends A", "x sends B")


def test_unbounded_sending_is_reported_as_bounded():
    loop = p.loop(lambda again: p.send(A) >> again | p.end)
    res = compatible("x", loop.automaton(), "y", loop.dual().automaton(), "fifo", bound=2)
    assert res.ok and res.bounded and res.bound == 2


def test_shipped_specs_connections():
    system, _, _ = build(ROOT / "specs" / "two_phase_commit.py")
    assert all(c.ok for c in connections(system))
    system, _, _ = build(ROOT / "specs" / "two_phase_commit_bug_protocol.py")
    bad = connections(system)
    assert bad and not any(c.ok for c in bad)
    assert "tm cannot receive" in bad[0].problem and len(bad[0].witness) == 3
    # and check catches the same mistake at run time, blaming the RM
    r = check(system)
    assert r.verdict == "violation" and r.violation.kind == "protocol"
    assert r.violation.blame.startswith("rm")


# --- properties ---------------------------------------------------------------------------------

MSGS = [A, B, C]


def protocols(direction_free: bool):
    """Generated protocols; with `direction_free=False`, every choice offers options that all
    start with the same direction (no mixed choice), a classic condition for duality to
    imply compatibility on fifo links."""
    leaf = st.builds(lambda d, m: (p.send(m) if d else p.recv(m)), st.booleans(),
                     st.sampled_from(MSGS))

    def extend(inner):
        seq = st.builds(lambda a, b: a >> b, inner, inner)
        if direction_free:
            ch = st.builds(lambda a, b: a | b, inner, inner)
        else:
            ch = st.builds(lambda d, ms, rests: p.choice(*[
                (p.send(m) if d else p.recv(m)) >> r for m, r in zip(ms, rests)]),
                st.booleans(), st.lists(st.sampled_from(MSGS), min_size=2, max_size=3,
                                        unique=True),
                st.lists(inner, min_size=3, max_size=3))
        if direction_free:
            return seq | ch | st.builds(lambda a: a.opt(), inner)
        return seq | ch             # .opt() is a choice with "nothing", a mixed choice

    return st.recursive(leaf, extend, max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(proto=protocols(direction_free=True),
       word=st.lists(st.tuples(st.sampled_from(["send", "recv"]), st.sampled_from(MSGS)),
                     max_size=6))
def test_dual_of_dual_has_the_same_language(proto, word):
    flip = [("recv" if d == "send" else "send", m) for d, m in word]
    assert accepts(proto, word) == accepts(proto.dual().dual(), word)
    assert accepts(proto, word) == accepts(proto.dual(), flip)


@settings(max_examples=60, deadline=None)
@given(proto=protocols(direction_free=False))
def test_without_mixed_choice_a_protocol_and_its_dual_are_compatible_on_fifo(proto):
    res = compatible("x", proto.automaton(), "y", proto.dual().automaton(), "fifo", bound=4)
    assert res.ok, (str(proto), res.problem, res.witness)
