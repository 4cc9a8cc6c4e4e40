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


# --- conformance of handler code: `assay verify` proves every send keeps to its protocol ------

from collections import deque  # noqa: E402

from assay.kernel import Faults, Kernel  # noqa: E402
from assay.verifier.conformance import inferred_relation, summary  # noqa: E402
from assay.verifier.verify import verify  # noqa: E402

VFIX = ROOT / "tests" / "fixtures" / "verify"
PFIX = FIX                                 # tests/fixtures/protocols


def _verified(path):
    system, _, _ = build(path)
    return verify(system), system


def _line_of(path, text):
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def test_a_second_reply_between_dual_ports_is_refuted_with_a_run_and_check_finds_it_too():
    path = VFIX / "bug_protocol_send.py"
    r, system = _verified(path)
    # the ports are exact duals: the connections alone are fine ...
    conns = r.find(kind="compatibility")
    assert len(conns) == 2 and all(o.verdict == "proved" for o in conns)
    # ... but the handler's second send is not allowed where it is made
    (o,) = [o for o in r.obligations if o.verdict != "proved"]
    assert (o.component, o.target, o.kind, o.verdict) == ("Server", "serve", "protocol",
                                                          "refuted")
    bug = _line_of(path, "# BUG")
    assert o.location.line == bug and o.counterexample.line == bug
    assert "which its protocol does not allow here" in o.reason
    assert type(o.counterexample.message).__name__ == "Request"
    assert o.counterexample.message.n > 1                  # the path with the second send
    assert o.witness[0].startswith("server starts with")
    assert "receives Request(n=" in o.witness[-1] and "does not allow" in o.witness[-1]
    pre, post, _ = o.evaluate(o.counterexample.scenario)   # the scenario breaks it again
    assert pre and not post
    assert summary(r)[0] == "refuted"
    res = check(system)
    assert res.verdict == "violation" and res.violation.kind == "protocol"
    assert res.violation.blame == "server.serve" and res.violation.location.line == bug


def test_the_fixed_twin_is_proved_and_the_protocols_fit():
    r, _ = _verified(VFIX / "ok_protocol_send.py")
    assert r.verdict == "proved"
    sends = r.find(kind="protocol")
    # the reply follows the receive (the automaton decides); the client asks only when not
    # waiting, which assay relates to the start of its session
    assert sorted(o.target for o in sends) == ["ask", "serve"]
    # (for runs without a crash: a restarted client starts its session again, see
    # tests/test_redteam_verify4.py)
    assert summary(r) == ("proved", "✓ protocols fit: 2 connections compatible, 2 sends "
                                    "allowed by their port's protocol; without a crash only: "
                                    "after a crash and restart client0.srv ~ server.clients, "
                                    "client1.srv ~ server.clients may not fit (assay verify "
                                    "--crashes)")


def test_an_action_that_answers_before_the_request_is_refuted_from_the_initial_state():
    path = PFIX / "bug_eager_reply.py"
    r, system = _verified(path)
    (o,) = [o for o in r.obligations if o.verdict != "proved"]
    assert (o.target, o.kind, o.verdict) == ("answer", "protocol", "refuted")
    assert len(o.witness) == 2 and o.witness[1].startswith("fires answer(client0)")
    assert o.counterexample.fields == {"pending": frozenset()}
    res = check(system)
    assert res.violation.kind == "protocol" and res.violation.blame == "server.answer"


def test_one_session_per_peer_an_action_answering_the_pending_peers_is_proved():
    r, system = _verified(PFIX / "ok_eager_reply.py")
    assert r.verdict == "proved", [(o.target, o.reason) for o in r.obligations
                                   if o.verdict != "proved"]
    (o,) = r.find("Server", "answer", "protocol")
    assert o.title.startswith("send Reply on clients")
    assert check(system).verdict == "ok"


def test_a_correlation_outside_the_inferred_relation_is_unknown_with_the_reason():
    r, system = _verified(PFIX / "unknown_relay.py")
    (o,) = [o for o in r.obligations if o.verdict != "proved"]
    assert (o.component, o.target, o.kind, o.verdict) == ("Relay", "ack", "protocol",
                                                          "unknown")
    assert "a local state where it breaks exists" in o.reason
    assert "no run of Relay from its initial states" in o.reason and "(all)" in o.reason
    assert summary(r) == ("unknown", "? protocols not shown to fit: 1 send not proved to keep "
                                     "to its protocol")
    assert check(system).verdict == "ok"          # the relay is right; assay cannot show it


def test_shipped_specs_prove_their_sends_keep_to_their_protocols():
    r, _ = _verified(ROOT / "specs" / "two_phase_commit.py")
    sends = {(o.component, o.target): o.verdict for o in r.find(kind="protocol")}
    assert sends == {("TransactionManager", "commit"): "proved",
                     ("TransactionManager", "abort"): "proved",
                     ("ResourceManager", "prepare"): "proved"}
    r, _ = _verified(ROOT / "specs" / "account_service.py")
    sends = [(o.component, o.target, o.verdict) for o in r.find(kind="protocol")]
    assert sorted(sends) == [("Bank", "deposit", "proved"), ("Bank", "withdraw", "proved"),
                             ("Bank", "withdraw", "proved"), ("Client", "deposit", "proved"),
                             ("Client", "withdraw", "proved")]


def test_protocols_fit_only_when_compatibility_and_conformance_are_both_proved():
    r, _ = _verified(ROOT / "specs" / "two_phase_commit.py")
    # (`check --faults crash=1` breaks the protocol: a restarted rm gets the tm's Abort)
    assert summary(r) == ("proved", "✓ protocols fit: 3 connections compatible, 3 sends "
                                    "allowed by their port's protocol; without a crash only: "
                                    "after a crash and restart rm0.tm ~ tm.rms, rm1.tm ~ "
                                    "tm.rms, rm2.tm ~ tm.rms may not fit (assay verify "
                                    "--crashes)")
    r, _ = _verified(ROOT / "specs" / "two_phase_commit_bug_protocol.py")
    assert summary(r)[0] == "refuted"                 # incompatible automata
    r, _ = _verified(ROOT / "specs" / "register.py")
    assert summary(r) is None                         # no protocols: nothing said about them
    system, _, _ = build(ROOT / "specs" / "two_phase_commit.py")
    assert summary(verify(system, component="TransactionManager")) == (
        "proved", "✓ protocols fit: 2 sends allowed by their port's protocol "
                  "(connections not checked)")


def _reachable_locals(kernel, limit=3000):
    """Every local state of every instance in the states a BFS reaches without a violation."""
    seen, queue, out = set(), deque(), set()
    for s, viol in kernel.initial_states():
        if not viol and s not in seen:
            seen.add(s)
            queue.append(s)
    while queue and len(seen) < limit:
        s = queue.popleft()
        for i, lid in enumerate(s[0]):
            out.add((i, lid))
        for ev in kernel.enabled_events(s):
            nxt, _, viol = kernel.apply(s, ev)
            if nxt not in seen and not viol:
                seen.add(nxt)
                queue.append(nxt)
    return out


@pytest.mark.parametrize("path, faults", [
    ("specs/two_phase_commit.py", None), ("specs/two_phase_commit.py", "crash=1"),
    ("specs/account_service.py", "crash=1"), ("tests/fixtures/verify/ok_protocol_send.py", None),
    ("tests/fixtures/protocols/ok_eager_reply.py", None),
    ("tests/fixtures/protocols/unknown_relay.py", None),
])
def test_every_reachable_local_state_is_in_the_inferred_relation(path, faults):
    system, _, _ = build(ROOT / path)
    kernel = Kernel(system, Faults.parse(faults) if faults else None)
    relations = {cls: inferred_relation(system, cls) for cls in set(system.instances.values())}
    checked = 0
    for i, lid in _reachable_locals(kernel):
        inst = kernel.instances[i]
        runner, info = inst.runner, inst.info
        local = inst.table.values[lid]
        values = dict(zip(info.fields, local[:-1] if runner.session_keys else local))
        ports = {p: tuple(sorted(x for x, _ in w.peers)) for p, w in runner.wirings.items()}
        why = relations[system.instances[inst.name]](values, runner.sessions(local), ports)
        assert why is None, (inst.name, values, runner.sessions(local), why)
        checked += 1
    assert checked > 10


def _spec(tmp_path, text, name="spec"):
    path = tmp_path / f"{name}.py"          # one file per variant: modules are cached by path
    path.write_text("from assay import Component, Message, Port, System, action, on, "
                    "on_restart, persistent\nfrom assay import protocol as p\n" + text)
    return path


HELLO = """
class Hello(Message): ...
class Bye(Message): ...

SIDE = p.send(Hello) >> p.recv(Bye)

class Greeter(Component):
    out = Port(SIDE{persistent})
    n: int = persistent(0)

    @on_restart
    def again(self):
        self.n += 1
        self.out.send(Hello())

    @action(when=lambda self: self.n == 0)
    def hello(self):
        self.n = 1
        self.out.send(Hello())

    @on(Bye)
    def bye(self, m):
        pass

class Peer_(Component):
    inp = Port(SIDE.dual())

    @on(Hello)
    def hello(self, m):
        self.inp.send(Bye())

def system():
    s = System("greet")
    s.connect(s.add("g", Greeter).out, s.add("p", Peer_).inp)
    return s
"""


def test_a_restart_hook_sends_on_fresh_sessions_but_not_on_persistent_ones(tmp_path):
    r, _ = _verified(_spec(tmp_path, HELLO.format(persistent="")))
    (o,) = r.find("Greeter", "restart", "protocol")
    assert o.verdict == "proved"            # a restarted session is at its start again
    r, _ = _verified(_spec(tmp_path, HELLO.format(persistent=", persistent=True"), "kept"))
    (o,) = r.find("Greeter", "restart", "protocol")
    assert o.verdict == "refuted"           # the session goes on: Hello was sent already
    assert any("crashes and restarts" in step for step in o.witness)
    (a,) = r.find("Greeter", "hello", "protocol")
    assert a.verdict == "proved"            # n == 0 only before any Hello, restart or not


TIMER = """
class Ping(Message): ...
class Pong(Message): ...
class Tick(Message): ...

SIDE = p.loop(lambda again: p.send(Ping) >> p.recv(Pong) >> again | p.end)

class Pinger(Component):
    out = Port(SIDE)
    waiting: bool = False

    @action(when=lambda self: not self.waiting)
    def start(self):
        self.after(1, Tick())

    @on(Tick)
    def tick(self, m):
        {guard}
            self.waiting = True
            self.out.send(Ping())

    @on(Pong)
    def pong(self, m):
        self.waiting = False

class Ponger(Component):
    inp = Port(SIDE.dual())

    @on(Ping)
    def ping(self, m):
        self.inp.send(Pong())

def system():
    s = System("pingpong")
    s.connect(s.add("a", Pinger).out, s.add("b", Ponger).inp)
    return s
"""


def test_a_timer_handler_may_run_at_any_position_of_the_session(tmp_path):
    r, _ = _verified(_spec(tmp_path, TIMER.format(guard="if not self.waiting:")))
    (o,) = r.find("Pinger", "tick", "protocol")
    assert o.verdict == "proved"
    r, _ = _verified(_spec(tmp_path, TIMER.format(guard="if True:"), "always"))
    (o,) = r.find("Pinger", "tick", "protocol")
    assert o.verdict == "refuted"           # two ticks before the Pong: a second Ping
    assert sum("its timer Tick() fires" in step for step in o.witness) == 2


def test_an_untranslated_body_that_may_send_is_unknown_with_the_reason(tmp_path):
    text = TIMER.format(guard="if not self.waiting:").replace(
        "self.after(1, Tick())", "while False:\n            pass\n        self.after(1, Tick())")
    r, _ = _verified(_spec(tmp_path, text))
    (o,) = r.find("Pinger", "start", "protocol")
    assert o.verdict == "unknown" and "not translated" in o.reason and "while" in o.reason
    # nothing is known of the positions then, so the tick's Ping is not proved either
    (t,) = r.find("Pinger", "tick", "protocol")
    assert t.verdict != "proved"


# random specs: a send `verify` proves is never one the kernel rejects ------------------------

import random  # noqa: E402

_MSGS = ["A", "B"]


def _rand_protocol(r, depth=0):
    if depth == 0 and r.random() < 0.5:
        return f"p.loop(lambda again: p.send(A) >> {_rand_protocol(r, 1)} >> again | p.end)"
    x = r.random()
    if depth > 2 or x < 0.35:
        return f"p.{r.choice(['send', 'recv'])}({r.choice(_MSGS)})"
    if x < 0.65:
        return f"({_rand_protocol(r, depth + 1)} >> {_rand_protocol(r, depth + 1)})"
    if x < 0.85:
        return f"({_rand_protocol(r, depth + 1)} | {_rand_protocol(r, depth + 1)})"
    return f"{_rand_protocol(r, depth + 1)}.opt()"


def _rand_stmts(r, port, many, in_handler, depth=0):
    def send():
        m = r.choice(_MSGS)
        if many:
            return (f"self.{port}.send({m}(), to=m.sender)" if in_handler and r.random() < 0.7
                    else f"self.{port}.broadcast({m}())")
        return f"self.{port}.send({m}())"
    x = r.random()
    if x < 0.4 or depth >= 2 and x >= 0.65:
        return [send()]
    if x < 0.55:
        return ["self.flag = not self.flag"]
    if x < 0.65:
        return ["self.k = (self.k + 1) % 3"]
    cond = r.choice(["self.flag", "not self.flag", "self.k == 1", "self.k != 0"])
    body = [s for _ in range(r.randint(1, 2))
            for s in _rand_stmts(r, port, many, in_handler, depth + 1)]
    return [f"if {cond}:"] + ["    " + s for s in body]


def _rand_component(r, name, port, decl, many):
    if r.random() < 0.4:
        decl = decl[:-1] + ", persistent=True)"
    flag = "persistent(False)" if r.random() < 0.3 else "False"
    out = [f"class {name}(Component):", f"    {port} = {decl}", f"    flag: bool = {flag}",
           "    k: int = 0", "    n: int = persistent(0)", ""]
    for m in _MSGS:
        body = [s for _ in range(r.randint(0, 3)) for s in _rand_stmts(r, port, many, True)]
        out += [f"    @on({m})", f"    def on_{m.lower()}(self, m):"]
        out += ["        " + s for s in body or ["pass"]] + [""]
    for i in range(r.randint(0, 2)):
        guard = r.choice(["self.flag", "not self.flag", "self.k == 0", "self.k == 2", "True"])
        body = [s for _ in range(r.randint(1, 3)) for s in _rand_stmts(r, port, many, False)]
        out += [f"    @action(when=lambda self: self.n < 2 and ({guard}))",
                f"    def act{i}(self):", "        self.n += 1"]
        out += ["        " + s for s in body] + [""]
    if r.random() < 0.4:
        body = [s for _ in range(r.randint(1, 2)) for s in _rand_stmts(r, port, many, False)]
        out += ["    @action(when=lambda self: self.n < 2 and self.flag)", "    def arm(self):",
                "        self.n += 1", "        self.after(1, T())", "", "    @on(T)",
                "    def tick(self, m):"] + ["        " + s for s in body] + [""]
    if r.random() < 0.4:
        body = [s for _ in range(r.randint(1, 2)) for s in _rand_stmts(r, port, many, False)]
        out += ["    @on_restart", "    def back(self):"] + ["        " + s for s in body] + [""]
    return out


def _rand_spec(seed):
    r = random.Random(seed)
    many = r.random() < 0.5
    src = ["from assay import Component, Message, Port, System, action, on, on_restart, "
           "persistent", "from assay import protocol as p", ""]
    src += [f"class {m}(Message): ..." for m in [*_MSGS, "T"]]
    src += ["", f"P = {_rand_protocol(r)}", ""]
    src += _rand_component(r, "Cli", "srv", "Port(P)", False)
    src += _rand_component(r, "Srv", "cl", f"Port(P.dual(), many={many})", many)
    src += ["def system():", f"    s = System('fz', network='{r.choice(['fifo', 'unordered'])}')",
            "    srv = s.add('srv', Srv)"]
    src += [f"    s.connect(s.add('c{i}', Cli).srv, srv.cl)" for i in range(2 if many else 1)]
    src += ["    s.terminal(lambda g: True)", "    return s", ""]
    return "\n".join(src)


def _kernel_protocol_breaks(kernel, limit=4000):
    out, seen, queue = [], set(), deque()
    for s, viol in kernel.initial_states():
        out += viol
        if not viol:
            seen.add(s)
            queue.append(s)
    while queue and len(seen) < limit:
        s = queue.popleft()
        for ev in kernel.enabled_events(s):
            nxt, _, viol = kernel.apply(s, ev)
            out += viol
            if nxt not in seen and not viol:
                seen.add(nxt)
                queue.append(nxt)
    return [v for v in out if v.kind == "protocol" and "." in v.blame]


@pytest.mark.parametrize("seed", range(40))
def test_random_specs_never_prove_a_send_the_kernel_rejects(seed, tmp_path):
    path = tmp_path / f"fz{seed}.py"
    path.write_text(_rand_spec(seed))
    try:
        system, _, _ = build(path)
    except SpecError:
        pytest.skip("an ill-formed random protocol")
    r = verify(system, timeout=2.0)
    kernel = Kernel(system, Faults.parse("crash=1") if seed % 2 else None)
    for v in _kernel_protocol_breaks(kernel):
        inst, _, target = v.blame.partition(".")
        target = "restart" if target == "back" else target
        cls = system.instances[inst].__name__
        obs = [o for o in r.find(cls, target, "protocol")
               if o.location and o.location.line == v.location.line]
        assert obs and all(o.verdict != "proved" for o in obs), (v, obs, path.read_text())
        # a refutation's run is one the component can make: the kernel agrees it breaks
        for o in obs:
            if o.verdict == "refuted":
                assert o.witness and "does not allow" in o.witness[-1]
