"""Channels (issue 10 §4): bounded links (`capacity=`, a full link blocks or drops), lossy links
(`lossy=True`: the network may lose any message in flight, no budget) and instances connected
to themselves — in the spec language, the kernel, check, simulate, replay, verify and the
runtime.

Components are defined at module level (the kernel reads their source for some checks).  State
counts are compared with a hand-written model of the same protocol (plain Python, no assay),
and the smallest with a count reasoned out by hand.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Component, Message, Port, System, action, on
from assay import protocol as p
from assay.checker import check
from assay.errors import SpecError, TraceError
from assay.kernel import Faults, Kernel
from assay.kernel.trace import Trace, explain, recorded_event, replay_trace
from assay.model.load import build
from assay.simulator import FaultRates
from assay.simulator.run import run_once

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


def initial(k: Kernel):
    states = k.initial_states()
    assert len(states) == 1
    state, violations = states[0]
    assert violations == ()
    return state


def names(k: Kernel, state) -> list[str]:
    return [k.describe(e) for e in k.enabled_events(state)]


def do(k: Kernel, state, text: str):
    """Take the one enabled event whose description contains `text`; no violation."""
    evs = [e for e in k.enabled_events(state) if text in k.describe(e)]
    assert len(evs) == 1, (text, names(k, state))
    res = k.step(state, evs[0])
    assert res.violations == (), res.violations
    return res.state


def spec(name: str, **params) -> System:
    return build(SPECS / name, params={k: str(v) for k, v in params.items()})[0]


def assay_cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# --- components --------------------------------------------------------------------------------

class Note(Message):
    n: int


class Ping(Message): ...


class Pong(Message): ...


class Burst(Component):
    """Sends notes 0, 1, 2, ... one per action, up to `count`."""

    out = Port()
    count: int = 3
    sent: int = 0

    @action(when=lambda self: self.sent < self.count)
    def send(self):
        self.out.send(Note(self.sent))
        self.sent += 1


class Sink(Component):
    inp = Port()
    got: tuple[int, ...] = ()

    @on(Note)
    def note(self, m):
        self.got = self.got + (m.n,)


class Twice(Component):
    """Sends the same note twice, then another."""

    out = Port()
    done: bool = False

    @action(when=lambda self: not self.done)
    def send(self):
        self.done = True
        self.out.send(Note(0))
        self.out.send(Note(0))
        self.out.send(Note(1))


class Pusher(Component):
    """Pushes a Ping to its peer, and answers every Ping with a Pong."""

    peer = Port()
    pushed: bool = False
    pongs: int = 0

    @action(when=lambda self: not self.pushed)
    def push(self):
        self.pushed = True
        self.peer.send(Ping())

    @on(Ping)
    def ping(self, m):
        self.peer.send(Pong())

    @on(Pong)
    def pong(self, m):
        self.pongs += 1


def burst_system(count: int = 3, network: str = "fifo", **link) -> System:
    s = System("burst", network=network)
    s.connect(s.add("a", Burst, count=count).out, s.add("b", Sink).inp, **link)  # connect
    return s


def line_of(marker: str) -> int:
    lines = [i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
             if text.rstrip().endswith(f"# {marker}")]
    assert len(lines) == 1
    return lines[0]


def pushers(**link) -> System:
    s = System("pushers", network="fifo")
    s.connect(s.add("a", Pusher).peer, s.add("b", Pusher).peer, **link)

    @s.terminal
    def both_answered(g):
        return g["a"].pongs == 1 and g["b"].pongs == 1

    return s


# --- 1. the spec language: parameters, and what is refused ------------------------------------

@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_capacity_is_a_whole_number_of_at_least_one(bad):
    with pytest.raises(SpecError) as e:
        burst_system(capacity=bad)
    assert "capacity" in e.value.message and repr(bad) in e.value.message
    assert e.value.location.line == line_of("connect")       # the spec's line
    with pytest.raises(SpecError):
        System("s", network="fifo", capacity=bad)


def test_capacity_and_loss_make_no_sense_on_the_duplicating_network():
    for kw in ({"capacity": 1}, {"lossy": True}):
        with pytest.raises(SpecError) as e:
            System("s", network="duplicating", **kw)
        assert "duplicating" in e.value.message
        assert any("fifo" in n for n in e.value.notes)
        with pytest.raises(SpecError):
            burst_system(network="duplicating", **kw)


def test_full_is_block_or_drop_and_needs_a_capacity():
    with pytest.raises(SpecError) as e:
        burst_system(capacity=1, full="wait")
    assert "'wait'" in e.value.message
    with pytest.raises(SpecError) as e:
        burst_system(full="drop")
    assert "without a capacity" in e.value.message
    with pytest.raises(SpecError):
        burst_system(lossy="yes")
    with pytest.raises(SpecError):
        System("s", full="sometimes")


def test_a_connection_s_own_settings_come_before_the_system_s():
    s = System("s", network="fifo", capacity=2, full="drop", lossy=True)
    a, b, c = s.add("a", Burst), s.add("b", Sink), s.add("c", Sink)
    s.connect(a.out, b.inp)
    s2 = System("s2", network="unordered", capacity=2, lossy=True)
    x, y = s2.add("x", Burst), s2.add("y", Sink)
    s2.connect(x.out, y.inp, capacity=1, full="block", lossy=False)
    conn = s.connections[0]
    assert (conn.capacity, conn.full, conn.lossy) == (2, "drop", True)
    conn = s2.connections[0]
    assert (conn.capacity, conn.full, conn.lossy) == (1, "block", False)
    del c


def test_a_port_connected_to_itself_is_refused_with_the_fix():
    class Loop(Component):
        peers = Port(many=True)
        back = Port()

    s = System("s")
    loop = s.add("loop", Loop)
    with pytest.raises(SpecError) as e:
        s.connect(loop.peers, loop.peers)
    assert "port loop.peers to itself" in e.value.message
    assert any("s.connect(loop.peers, loop.back)" in n for n in e.value.notes)
    s.connect(loop.peers, loop.back)            # two ports of one instance: fine
    assert s.connections[0].self_loop


# --- 2. bounded links: block ------------------------------------------------------------------

def test_a_send_to_a_full_blocking_link_is_not_enabled_until_there_is_room():
    k = Kernel(burst_system(capacity=2))
    s = initial(k)
    s = do(k, s, "a fires send")
    s = do(k, s, "a fires send")
    assert names(k, s) == ["b receives Note(n=0) from a (on inp)"]      # a is blocked
    s = do(k, s, "receives Note(n=0)")
    assert "a fires send" in names(k, s)
    assert len(s) == 2                            # the short state form: nothing added


def test_a_sender_blocked_forever_with_nothing_else_enabled_is_a_deadlock():
    # each pushes a Ping, filling its link; each must answer the other's Ping with a Pong on
    # its own full link: no step can happen (Promela's classic full-channel deadlock)
    r = check(pushers(capacity=1))
    assert r.verdict == "violation" and r.violation.kind == "deadlock"
    assert [s.description for s in r.steps] == ["a fires push", "b fires push"]
    assert check(pushers(capacity=2)).verdict == "ok"
    assert check(pushers()).verdict == "ok"


def test_a_start_that_overfills_a_blocking_link_is_a_spec_error():
    from assay import on_start

    class Eager(Component):
        out = Port()

        @on_start
        def go(self):
            self.out.send(Note(0))
            self.out.send(Note(1))

    s = System("eager", network="fifo")
    s.connect(s.add("a", Eager).out, s.add("b", Sink).inp, capacity=1)
    with pytest.raises(SpecError) as e:
        Kernel(s).initial_states()
    assert "capacity (1)" in e.value.message and "full='drop'" in e.value.notes[0]
    s = System("eager", network="fifo")
    s.connect(s.add("a", Eager).out, s.add("b", Sink).inp, capacity=1, full="drop")
    k = Kernel(s)
    assert [str(e) for e in k.in_flight(initial(k))] == ["a.out -> b.inp: Note(n=0)"]


def test_a_duplicate_is_not_enabled_on_a_full_link():
    k = Kernel(burst_system(count=1, capacity=1), Faults(dup=1))
    s = do(k, initial(k), "a fires send")
    assert not any("duplicates" in n for n in names(k, s))
    k = Kernel(burst_system(count=1, capacity=2), Faults(dup=1))
    s = do(k, initial(k), "a fires send")
    assert any("duplicates" in n for n in names(k, s))


# --- 3. bounded links: drop -------------------------------------------------------------------

def test_sends_to_a_full_dropping_link_are_lost_and_the_step_says_so():
    k = Kernel(burst_system(capacity=1, full="drop"))
    s = do(k, initial(k), "a fires send")
    ev = next(e for e in k.enabled_events(s) if "a fires send" in k.describe(e))
    step, after = explain(k, s, ev, 2)
    assert [str(e) for e in step.lost] == ["a.out -> b.inp: Note(n=1)"]
    assert step.sent == ("a.out -> b.inp: Note(n=1)",)
    assert [str(e) for e in k.in_flight(after)] == ["a.out -> b.inp: Note(n=0)"]
    assert k.local_values(after, "a")["sent"] == 2
    doc = recorded_event(step)
    assert doc["lost"] == [{"to": "b", "port": "inp", "from": "a", "from_port": "out",
                            "message": {"type": "Note", "fields": {"n": 1}}}]


def test_a_drop_on_a_full_link_shows_in_the_counterexample_and_its_trace():
    # b must get every note; with room for one, the second is lost
    s = burst_system(count=2, capacity=1, full="drop")

    @s.always
    def nothing_lost(g):
        return g["a"].sent - len(g["b"].got) <= len(g.in_flight())

    r = check(s)
    assert r.verdict == "violation" and r.violation.name == "nothing_lost"
    assert [len(st.lost) for st in r.steps] == [0, 1]
    assert r.trace is not None and "lost" in r.trace.events[-1]
    from rich.console import Console

    from assay.report import render_steps, to_mermaid
    con = Console(record=True, width=200)
    render_steps(con, r.steps)
    assert "lost, its link is full: a.out -> b.inp: Note(n=1)" in con.export_text()
    assert "a--xb: 2. Note lost (link full)" in to_mermaid(r.steps, ["a", "b"])


def test_replay_refuses_a_trace_whose_recorded_loss_differs(tmp_path):
    s = burst_system(count=2, capacity=1, full="drop")
    k = Kernel(s)
    s0 = initial(k)
    e1 = next(e for e in k.enabled_events(s0) if "send" in k.describe(e))
    st1, s1 = explain(k, s0, e1, 1)
    e2 = next(e for e in k.enabled_events(s1) if "send" in k.describe(e))
    st2, _ = explain(k, s1, e2, 2)
    events = [recorded_event(st1), recorded_event(st2)]
    from assay.kernel.trace import replay
    replay(k, events, s0)                        # as recorded: fine
    events[1]["lost"] = []
    with pytest.raises(TraceError) as e:
        replay(k, events, s0)
    assert "lost to a full link" in e.value.message


# --- 4. lossy links ---------------------------------------------------------------------------

def test_a_lossy_fifo_link_may_lose_a_message_in_the_middle():
    k = Kernel(burst_system(capacity=None, lossy=True))
    s = initial(k)
    for _ in range(3):
        s = do(k, s, "a fires send")
    losses = [n for n in names(k, s) if "loses" in n]
    assert losses == [
        "the network loses Note(n=0) from a to b (the head of its link)",
        "the network loses Note(n=1) from a to b (2nd in its link)",
        "the network loses Note(n=2) from a to b (3rd in its link)"]
    s = do(k, s, "loses Note(n=1)")
    assert [str(e) for e in k.in_flight(s)] == ["a.out -> b.inp: Note(n=0)",
                                                "a.out -> b.inp: Note(n=2)"]
    s = do(k, s, "receives Note(n=0)")
    s = do(k, s, "receives Note(n=2)")
    assert k.local_values(s, "b")["got"] == (0, 2)
    assert len(s) == 2                           # no budget: the short state form stays


def test_losing_either_of_two_equal_neighbours_is_one_event():
    s = System("twice", network="fifo", lossy=True)
    s.connect(s.add("a", Twice).out, s.add("b", Sink).inp)
    k = Kernel(s)
    st = do(k, initial(k), "a fires send")
    assert [n for n in names(k, st) if "loses" in n] == [
        "the network loses Note(n=0) from a to b (the head of its link)",
        "the network loses Note(n=1) from a to b (3rd in its link)"]


def test_a_lossy_unordered_link_offers_one_loss_per_distinct_message():
    s = System("twice", network="unordered", lossy=True)
    s.connect(s.add("a", Twice).out, s.add("b", Sink).inp)
    k = Kernel(s)
    st = do(k, initial(k), "a fires send")
    assert sorted(n for n in names(k, st) if "loses" in n) == [
        "the network loses Note(n=0) from a to b", "the network loses Note(n=1) from a to b"]
    st = do(k, st, "loses Note(n=0)")
    assert sorted(str(e.message) for e in k.in_flight(st)) == ["Note(n=0)", "Note(n=1)"]


def test_only_lossy_links_lose_and_losses_are_faults():
    s = System("two", network="fifo")
    a = s.add("a", Burst, count=1)
    s.connect(a.out, s.add("b", Sink).inp, lossy=True)
    c = s.add("c", Burst, count=1)
    s.connect(c.out, s.add("d", Sink).inp)
    k = Kernel(s)
    st = do(k, do(k, initial(k), "a fires send"), "c fires send")
    losses = [e for e in k.enabled_events(st) if k.event_kind(e) == "lose"]
    assert [k.describe(e) for e in losses] == [
        "the network loses Note(n=0) from a to b (the head of its link)"]
    assert k.fair_task(losses[0]) is None                # never fair
    assert k.event_owner(losses[0]) == k.index["b"]
    # a state where only a loss could happen is stuck: a loss is no progress
    blocked = System("guarded", network="fifo", lossy=True)
    blocked.connect(blocked.add("a", Burst, count=1).out, blocked.add("b", Late).inp)
    k = Kernel(blocked)
    st = do(k, initial(k), "a fires send")
    assert [k.event_kind(e) for e in k.enabled_events(st)] == ["lose"]
    assert not k.can_progress(st)
    for strategy in ("bfs", "dfs"):
        r = check(blocked, strategy=strategy)
        assert r.verdict == "violation" and r.violation.kind == "deadlock"


class Late(Component):
    """Never takes a note (its receive guard keeps every one out)."""

    inp = Port()

    @on(Note, when=lambda self, m: False)
    def note(self, m): ...


class Fan(Component):
    """Sends notes to each of its peers, up to `count` in all."""

    out = Port(many=True)
    count: int = 2
    sent: int = 0

    @action(over=lambda self: sorted(self.out.peers),
            when=lambda self, to: self.sent < self.count)
    def send(self, to):
        self.out.send(Note(self.sent), to=to)
        self.sent += 1


def fan_system(network: str, count: int, **link) -> System:
    s = System("fan", network=network)
    fan = s.add("fan", Fan, count=count)
    for name in ("x", "y"):
        s.connect(fan.out, s.add(name, Sink).inp, **link)
    s.terminal(lambda g: True)
    return s


def reachable(k: Kernel) -> tuple[set, int]:
    """Every reachable state (by `successors`) and the number of enabled events over them."""
    todo = [s for s, _ in k.initial_states()]
    seen = set(todo)
    enabled = 0
    while todo:
        steps, n = k.successors(todo.pop())
        enabled += n
        for _, t, _ in steps:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen, enabled


@settings(max_examples=40, deadline=None)
@given(network=st.sampled_from(["fifo", "unordered"]), count=st.integers(1, 3),
       capacity=st.integers(1, 3), full=st.sampled_from(["block", "drop"]),
       lossy=st.booleans())
def test_no_link_ever_holds_more_than_its_capacity(network, count, capacity, full, lossy):
    k = Kernel(fan_system(network, count, capacity=capacity, full=full, lossy=lossy))
    states, _ = reachable(k)
    for s in states:
        # the specialised successors are "apply every enabled event", event for event
        assert k._successors_channels(s) == k._successors_extended(s)
        per_link: dict[tuple[str, str], int] = {}
        for e in k.in_flight(s):
            per_link[(e.src, e.dst)] = per_link.get((e.src, e.dst), 0) + 1
        assert max(per_link.values(), default=0) <= capacity
    # a capacity never reached changes nothing: the general path explores what the hot
    # path does, event for event
    if capacity >= count and not lossy:
        plain = Kernel(fan_system(network, count))
        assert not plain.channels and k.channels
        assert len(states) == len(reachable(plain)[0])
        assert reachable(k)[1] == reachable(plain)[1]


# --- 5. the alternating-bit protocol over lossy channels: exact counts ------------------------

def abp_by_hand(count: int, capacity: int, drop: bool) -> tuple[int, int]:
    """The states and transitions (enabled events, self-loops included) of specs/abp_lossy.py,
    explored by a plain BFS over (next, bit, expected, delivered, data link, ack link)."""
    def losses(q):
        return [q[:i] + q[i + 1:] for i in range(len(q)) if i == 0 or q[i] != q[i - 1]]

    start = (0, False, False, 0, (), ())
    seen = {start}
    todo = deque([start])
    transitions = 0
    while todo:
        st = todo.popleft()
        nxt, bit, expected, delivered, dc, ac = st
        succ = []
        if nxt < count:                                   # transmit
            if len(dc) < capacity:
                succ.append((nxt, bit, expected, delivered, dc + ((bit, nxt),), ac))
            elif drop:
                succ.append(st)
        if dc:                                            # the receiver takes the head
            (b, _), rest = dc[0], dc[1:]
            e2, d2 = (not expected, delivered + 1) if b == expected else (expected, delivered)
            if len(ac) < capacity:
                succ.append((nxt, bit, e2, d2, rest, ac + (b,)))
            elif drop:
                succ.append((nxt, bit, e2, d2, rest, ac))
        if ac:                                            # the sender takes the head
            b, rest = ac[0], ac[1:]
            if b == bit and nxt < count:
                succ.append((nxt + 1, not bit, expected, delivered, dc, rest))
            else:
                succ.append((nxt, bit, expected, delivered, dc, rest))
        succ += [(nxt, bit, expected, delivered, q, ac) for q in losses(dc)]
        succ += [(nxt, bit, expected, delivered, dc, q) for q in losses(ac)]
        transitions += len(succ)
        for t in succ:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return len(seen), transitions


def test_abp_over_lossy_channels_of_capacity_one_has_nine_states_for_one_value():
    # By hand: (sender done?, receiver delivered?, data in flight?, ack in flight?).  Before
    # delivery only the data link varies (2 states); after it the 8 combinations but one: a
    # sender that is done has no data to send and took the only ack, so a data message and a
    # fresh ack cannot both be in flight (that would take a second ack of a resent value,
    # which the full ack link blocked or the sender's transmit no longer enabled).  2 + 7 = 9,
    # with 16 events enabled over them (1+2+1+2+3+3+0+2+2 in the order of the docstring).
    r = check(spec("abp_lossy.py", count=1))
    assert (r.verdict, r.states, r.transitions) == ("ok", 9, 16)
    assert r.liveness == {"all_delivered": "holds"}


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("capacity", [1, 2])
@pytest.mark.parametrize("full", ["block", "drop"])
def test_abp_over_lossy_channels_matches_a_hand_written_model(count, capacity, full):
    r = check(spec("abp_lossy.py", count=count, capacity=capacity, full=full))
    assert r.verdict == "ok"
    assert (r.states, r.transitions) == abp_by_hand(count, capacity, full == "drop")


def test_abp_liveness_needs_strong_fairness_over_a_lossy_channel():
    # weakly fair: a message lost again and again is never continuously deliverable
    r = check(spec("abp_lossy.py"), fairness="weak")
    assert r.verdict == "violation" and r.violation.kind == "liveness"
    kinds = [st.event_json["kind"] for st in r.steps[r.cycle_start:]]
    assert "lose" in kinds
    assert check(spec("abp_lossy.py")).verdict == "ok"        # strong, the spec's own


def test_the_abp_bug_of_taking_any_ack_is_found():
    r = check(spec("abp_lossy_bug_any_ack.py"))
    assert r.verdict == "violation" and r.violation.name == "sender_behind_receiver"
    assert len(r.steps) == 6


# --- 6. traces and replay ---------------------------------------------------------------------

def test_a_trace_with_a_loss_in_the_middle_of_a_fifo_link_replays(tmp_path):
    s = System("burst", network="fifo", lossy=True)
    s.connect(s.add("a", Burst).out, s.add("b", Sink).inp)
    k = Kernel(s)
    note = {"type": "Note", "fields": {"n": 1}}
    link = {"to": "b", "port": "inp", "from": "a", "from_port": "out"}
    send = {"kind": "action", "instance": "a", "action": "send", "arg": None}
    events = [send, send, send, {"kind": "lose", **link, "message": note, "position": 1},
              {"kind": "deliver", **link, "message": {"type": "Note", "fields": {"n": 0}}},
              {"kind": "deliver", **link, "message": {"type": "Note", "fields": {"n": 2}}}]
    from assay.kernel.trace import replay
    steps, end = replay(k, events, initial(k))
    assert steps[3].description == "the network loses Note(n=1) from a to b (2nd in its link)"
    assert k.local_values(end, "b")["got"] == (0, 2)
    # the same loss at another position is another event, not enabled once n=1 is gone
    bad = events[:4] + [{"kind": "lose", **link, "message": note, "position": 1}]
    with pytest.raises(TraceError):
        replay(k, bad, initial(k))


def test_check_writes_a_lasso_with_a_loss_that_replay_reproduces(tmp_path):
    out = tmp_path / "lasso.json"
    mermaid = tmp_path / "lasso.mmd"
    r = assay_cli("check", "specs/abp_lossy.py", "--fairness", "weak", "--trace-out", out)
    assert r.returncode == 1, r.stderr
    doc = json.loads(out.read_text())
    assert any(e["kind"] == "lose" and e["position"] == 0 for e in doc["events"])
    r = assay_cli("replay", out, "--mermaid", mermaid)
    assert r.returncode == 1 and "reproduced" in r.stdout, r.stdout + r.stderr
    assert "sender--xreceiver" in mermaid.read_text() and "lost Data" in mermaid.read_text()


def test_a_trace_file_with_a_lose_event_is_read_and_replayed(tmp_path):
    out = tmp_path / "lasso.json"
    assert assay_cli("check", "specs/abp_lossy.py", "--fairness", "weak", "--trace-out",
                     out).returncode == 1
    t = Trace.read(out)
    assert [e["kind"] for e in t.events] == ["action", "lose"]
    done = replay_trace(t, out)
    assert done.violation is not None and done.violation.kind == "liveness"
    assert done.steps[1].description.startswith("the network loses Data(bit=False, value=0)")


# --- 7. simulate ------------------------------------------------------------------------------

def test_simulate_loses_on_lossy_links_at_the_default_rate_and_not_at_zero():
    k = Kernel(spec("abp_lossy.py", count=3))
    rates = FaultRates()
    assert rates.lose == 0.05 and not rates.any          # no budget: no extended kernel
    runs = [run_once(k, seed, 500, rates) for seed in range(20)]
    assert all(r.violation is None and r.ended == "final" for r in runs)
    lost = sum(k.event_kind(e) == "lose" for r in runs for e in r.events)
    assert lost > 0
    none = [run_once(k, seed, 500, FaultRates.parse("lose=0")) for seed in range(20)]
    assert not any(k.event_kind(e) == "lose" for r in none for e in r.events)
    again = run_once(k, 7, 500, rates)
    assert again.events == runs[7].events                # the same seed, the same run


def test_simulate_finds_the_abp_bug_and_its_trace_replays(tmp_path):
    r = assay_cli("simulate", "specs/abp_lossy_bug_any_ack.py", "--runs", "30", "--out",
                  tmp_path, "--faults", "lose=0.2", "-j", "1", "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    traces = sorted(tmp_path.glob("*.json"))
    assert traces
    done = replay_trace(Trace.read(traces[0]), traces[0])
    assert done.violation is not None and done.violation.name == "sender_behind_receiver"


# --- 8. an instance connected to itself -------------------------------------------------------

class Counter(Component):
    """Counts to `limit` by messaging itself: each Tick it gets, it sends the next."""

    out = Port(p.send(Note).many())
    inp = Port(p.recv(Note).many())
    limit: int = 3
    seen: tuple[int, ...] = ()
    started: bool = False

    @action(when=lambda self: not self.started)
    def start(self):
        self.started = True
        self.out.send(Note(0))

    @on(Note, port="inp")
    def tick(self, m):
        assert m.sender == "self"
        self.seen = self.seen + (m.n,)
        if m.n + 1 < self.limit:
            self.out.send(Note(m.n + 1))


def counter_system(**link) -> System:
    s = System("counter", network="fifo")
    c = s.add("self", Counter)
    s.connect(c.out, c.inp, **link)
    s.terminal(lambda g: True)                  # it stops at the limit (or after a loss)
    return s


def test_an_instance_messages_itself_through_the_network():
    k = Kernel(counter_system())
    st = do(k, initial(k), "self fires start")
    assert [str(e) for e in k.in_flight(st)] == ["self.out -> self.inp: Note(n=0)"]
    st = do(k, st, "self receives Note(n=0) from self (on inp)")
    st = do(k, st, "receives Note(n=1)")
    st = do(k, st, "receives Note(n=2)")
    assert k.local_values(st, "self")["seen"] == (0, 1, 2)
    r = check(counter_system())
    assert (r.verdict, r.states) == ("ok", 5)


def test_a_self_connection_may_be_bounded_and_lossy():
    r = check(counter_system(capacity=1, lossy=True))
    assert r.verdict == "ok" and r.states == 8  # 5, and a loss after each of the 3 sends


def test_the_self_scheduler_spec_checks_simulates_and_replays(tmp_path):
    for params, states in (({}, 31), ({"loop_capacity": 1}, 27)):
        r = check(spec("self_scheduler.py", **params))
        assert (r.verdict, r.states) == ("ok", states)
        assert r.liveness == {"every_job_done": "holds"}
    r = assay_cli("simulate", "specs/self_scheduler.py", "--runs", "20", "-j", "1", "-q")
    assert r.returncode == 0, r.stdout + r.stderr


def test_compatibility_of_the_two_ports_of_a_self_connection():
    from assay.verifier.compat import connections

    (res,) = connections(counter_system())
    assert (res.a, res.b, res.ok) == ("self.out", "self.inp", True)


# --- 9. verify: the protocols over lossy and bounded links ------------------------------------

class Req(Message): ...


class Resp(Message): ...


CLIENT = p.send(Req) >> p.recv(Resp)


def test_a_request_response_protocol_does_not_fit_a_lossy_link():
    from assay.verifier.compat import compatible

    a, b = CLIENT.automaton(), CLIENT.dual().automaton()
    assert compatible("c", a, "s", b, "fifo").ok
    res = compatible("c", a, "s", b, "fifo", lossy=True)
    assert not res.ok and "wait forever" in (res.problem or "")
    assert res.witness == ("c sends Req", "the network loses Req sent by c")


def test_a_capacity_within_the_bound_makes_compatibility_a_proof():
    from assay.verifier.compat import compatible

    stream = p.send(Req).many()
    a, b = stream.automaton(), stream.dual().automaton()
    assert compatible("c", a, "s", b, "fifo").bounded          # unbounded: up to the bound
    for full in ("block", "drop"):
        res = compatible("c", a, "s", b, "fifo", capacity=2, full=full, lossy=True)
        assert res.ok and not res.bounded


class Asker(Component):
    srv = Port(CLIENT)

    @action(when=lambda self: True)
    def ask(self):
        self.srv.send(Req())

    @on(Resp)
    def answer(self, m): ...


class Answerer(Component):
    cli = Port(CLIENT.dual())

    @on(Req)
    def req(self, m):
        self.cli.send(Resp())


def test_verify_refutes_the_protocols_of_a_lossy_connection_and_says_why():
    from assay.verifier.verify import connection_obligations

    def ob(**link):
        s = System("rr", network="fifo")
        s.connect(s.add("c", Asker).srv, s.add("s", Answerer).cli, **link)
        (o,) = connection_obligations(s)
        return o

    assert ob().verdict == "proved"
    o = ob(lossy=True)
    assert o.verdict == "refuted" and "lossy" in o.title
    assert "the network loses Req sent by c" in o.witness
    o = ob(capacity=1)
    assert o.verdict == "proved" and "capacity 1" in o.title


# --- 10. the runtime ------------------------------------------------------------------------

def test_assay_run_keeps_to_the_links_capacity_and_its_trace_replays():
    from assay.runtime.local import LocalRuntime

    for full in ("block", "drop"):
        k = Kernel(spec("abp_lossy.py", count=4, full=full))

        async def go(k=k):
            rt = LocalRuntime(k, seed=3)
            return await rt.run(duration=20), rt

        report, rt = asyncio.run(go())
        assert report.ended == "quiescent" and not report.violations
        assert report.final["receiver"]["delivered"] == (0, 1, 2, 3)
        assert (report.lost > 0) == (full == "drop")
        trace = rt.trace(report, str(SPECS / "abp_lossy.py"), "system",
                         {"count": 4, "full": full})
        path = Path(f"/tmp/assay-channels-{full}.json")
        try:
            trace.write(path)
            assert replay_trace(Trace.read(path), path).violation is None
        finally:
            path.unlink(missing_ok=True)


def test_assay_run_stops_where_the_model_deadlocks_and_takes_no_step_it_refuses(tmp_path):
    from assay.kernel.trace import replay_checked
    from assay.runtime.local import run_local

    lengths = set()
    for seed in range(12):
        k = Kernel(pushers(capacity=1))
        report, _ = run_local(k, duration=5, seed=seed)
        assert report.ended == "quiescent"
        done = replay_checked(k, report.events, initial(k))    # every step: enabled there
        assert (done.violation is not None) == (len(report.events) == 2)
        lengths.add(len(report.events))
    assert 2 in lengths and 6 in lengths     # both pushed first: stuck; else all answered


def test_assay_run_routes_an_instance_s_messages_to_itself():
    from assay.runtime.local import run_local

    report, _ = run_local(Kernel(counter_system()), duration=5)
    assert report.ended == "quiescent" and report.final["self"]["seen"] == (0, 1, 2)


@pytest.mark.e2e
def test_a_tcp_node_routes_an_instance_s_messages_to_itself(children, tmp_path):
    from runtime_support import free_ports, replay, write_deployment

    pa, pb = free_ports(2)
    dep = write_deployment(tmp_path / "deploy.toml", "self_scheduler.py",
                           {"a": (pa, ["worker"]), "b": (pb, ["client"])},
                           params={"jobs": 3, "steps": 3})
    trace = tmp_path / "run.json"
    r = children.run("run", "--deploy", dep, "--json", "--trace-out", trace, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["ended"] == "quiescent" and doc["violations"] == []
    assert doc["final"]["worker"]["finished"] == 3
    assert sorted(doc["final"]["client"]["done"]) == [0, 1, 2]
    done = replay(children, trace)
    selfs = [e for e in done["events"] if e["kind"] == "deliver" and e["from"] == e["to"]]
    assert len(selfs) == 9                       # 3 jobs of 3 steps, each a Work to itself
