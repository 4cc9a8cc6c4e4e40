"""Faults and timers in the kernel and the checker: crash/restart with persistent fields and
`@on_restart`, drop, duplicate (unordered and fifo), partition/heal, fault budgets, timers
(`after`, `cancel`) and `check --faults` on the shipped specs.

Components are defined at module level (the kernel reads their source to see timer calls).
Each feature is shown on a small system where it matters; the checking features are shown on
a spec with a known bug (found) and on its correct twin (passes).
"""
from __future__ import annotations

import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

from assay import Component, Message, Port, System, action, invariant, on, one_of
from assay.checker import check
from assay.errors import UsageError
from assay.kernel import Faults, Kernel
from assay.model.component import on_restart, persistent
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"


# --- helpers ------------------------------------------------------------------------------------

def initial(k: Kernel):
    states = k.initial_states()
    assert len(states) == 1
    state, violations = states[0]
    assert violations == ()
    return state


def names(k: Kernel, state) -> list[str]:
    return [k.describe(e) for e in k.enabled_events(state)]


def matching(k: Kernel, state, text: str) -> list[int]:
    return [e for e in k.enabled_events(state) if text in k.describe(e)]


def do(k: Kernel, state, text: str):
    """Take the one enabled event whose description contains `text`; no violation."""
    evs = matching(k, state, text)
    assert len(evs) == 1, (text, names(k, state))
    res = k.step(state, evs[0])
    assert res.violations == (), res.violations
    return res.state


def run(k: Kernel, state, *texts: str):
    for t in texts:
        state = do(k, state, t)
    return state


def kinds(k: Kernel, state) -> list[str]:
    return [k.event_kind(e) for e in k.enabled_events(state)]


def some_states(k: Kernel, most: int):
    """The first `most` reachable states, breadth first."""
    seen = {s for s, _ in k.initial_states()}
    todo = deque(seen)
    out = []
    while todo and len(out) < most:
        s = todo.popleft()
        out.append(s)
        for ev in k.enabled_events(s):
            t = k.apply(s, ev)[0]
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return out


def reachable(k: Kernel, limit: int = 200_000) -> dict:
    """Every reachable state (by `enabled_events` and `apply`), with its incoming edges."""
    seen = {}
    todo = deque()
    for s, _ in k.initial_states():
        seen[s] = []
        todo.append(s)
    while todo:
        s = todo.popleft()
        for ev in k.enabled_events(s):
            t, _, _ = k.apply(s, ev)
            if t not in seen:
                seen[t] = []
                todo.append(t)
                assert len(seen) < limit
            seen[t].append((s, ev))
    return seen


def spec_system(name: str, **params: str) -> System:
    system, _, _ = build(str(SPECS / name), None, {k: str(v) for k, v in params.items()})
    return system


def pending_timers(k: Kernel, state) -> list[tuple[str, int, Message]]:
    return sorted(((k.instances[i].name, d, m) for i, d, m in (k.timers[t] for t in state[2])),
                  key=repr)


# --- the parties --------------------------------------------------------------------------------


class Ping(Message):
    n: int


class Hello(Message):
    pass


class Boom(Message):
    pass


class Node(Component):
    """Receives pings; arms a timer; says hello when it restarts."""

    peer = Port()
    got: int = 0
    kept: int = persistent(0)
    restarts: int = persistent(0)
    armed: bool = False
    fired: int = 0

    @action(when=lambda self: not self.armed)
    def arm(self):
        self.armed = True
        self.after(3, Boom())

    @on(Boom)
    def boom(self, m):
        self.fired += 1

    @on(Ping)
    def ping(self, m):
        self.got += 1
        self.kept += 1

    @on_restart
    def restarted(self):
        self.restarts += 1
        self.peer.send(Hello())


class Client(Component):
    """Sends Ping(1) and Ping(2), one action each; counts hellos."""

    node = Port()
    sent: int = 0
    hellos: int = 0

    @action(when=lambda self: self.sent < 2)
    def send(self):
        self.sent += 1
        self.node.send(Ping(self.sent))

    @on(Hello)
    def hello(self, m):
        self.hellos += 1


def node_system(network: str = "unordered") -> System:
    s = System("crashy", network=network)
    node = s.add("node", Node)
    s.connect(s.add("client", Client).node, node.peer)
    s.terminal(lambda g: True)                         # only properties matter here
    return s


# --- crash and restart --------------------------------------------------------------------------


def test_crash_is_offered_for_every_live_instance_while_the_budget_lasts():
    k = Kernel(node_system(), Faults(crash=1))
    st = initial(k)
    assert sorted(n for n in names(k, st) if "crashes" in n) == ["client crashes", "node crashes"]
    # no crash budget, no crash
    k0 = Kernel(node_system(), Faults())
    assert "crash" not in kinds(k0, initial(k0))


def test_a_crashed_instance_takes_no_delivery_action_or_timer_and_messages_to_it_wait():
    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "node fires arm", "client fires send", "receives Ping(n=1)",
             "client fires send")
    assert matching(k, st, "node timer fires: Boom()")
    assert matching(k, st, "node receives Ping(n=2)")
    st = do(k, st, "node crashes")
    assert k.crashed(st) == ["node"]
    enabled = names(k, st)
    assert not any(n.startswith("node ") and "restarts" not in n for n in enabled), enabled
    assert not [e for e in k.enabled_events(st) if k.event_kind(e) in ("deliver", "timer")
                and "node" in k.describe(e)]
    # the ping to it waits in the network, undelivered
    assert [e.message for e in k.in_flight(st)] == [Ping(2)]
    # the other instance goes on, and cannot crash (budget spent)
    assert "client fires send" not in enabled          # it sent both already
    assert "crash" not in kinds(k, st)
    assert enabled == ["node restarts"]


def test_a_crashed_instance_is_not_stepped_even_by_name():
    from assay.errors import TraceError

    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "client fires send", "node crashes")
    with pytest.raises(TraceError):
        k.step(st, {"kind": "deliver", "to": "node", "port": "peer", "from": "client",
                    "from_port": "node", "message": {"type": "Ping", "fields": {"n": 1}}})
    with pytest.raises(TraceError):
        k.step(st, {"kind": "action", "instance": "node", "action": "arm", "arg": None})


def test_restart_keeps_persistent_fields_resets_the_others_and_runs_the_hook():
    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "node fires arm", "node timer fires: Boom()", "client fires send",
             "receives Ping(n=1)", "client fires send")
    assert k.local_values(st, "node") == {"got": 1, "kept": 1, "restarts": 0, "armed": True,
                                          "fired": 1}
    st = do(k, st, "node crashes")
    res = k.step(st, matching(k, st, "node restarts")[0])
    assert res.violations == ()
    st = res.state
    assert k.crashed(st) == []
    # persistent: kept, restarts (+1 by the hook); the others back to their initial values
    assert k.local_values(st, "node") == {"got": 0, "kept": 1, "restarts": 1, "armed": False,
                                          "fired": 0}
    # the hook's send happened
    assert [str(e) for e in res.sends] == ["node.peer -> client.node: Hello()"]
    assert sorted(repr(e.message) for e in k.in_flight(st)) == ["Hello()", "Ping(n=2)"]
    # and the waiting message is deliverable again
    st = run(k, st, "node receives Ping(n=2)", "client receives Hello()")
    assert k.local_values(st, "node")["kept"] == 2
    assert k.local_values(st, "client")["hellos"] == 1
    assert matching(k, st, "node fires arm")         # armed was reset


def test_restart_without_a_hook_resets_non_persistent_fields():
    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "client fires send", "node receives Ping(n=1)", "client crashes")
    assert k.crashed(st) == ["client"]
    st = do(k, st, "client restarts")
    assert k.local_values(st, "client") == {"sent": 0, "hellos": 0}
    assert k.in_flight(st) == []                       # Client has no hook: nothing sent


def test_crash_loses_pending_timers():
    k = Kernel(node_system(), Faults(crash=1))
    st = do(k, initial(k), "node fires arm")
    assert pending_timers(k, st) == [("node", 3, Boom())]
    st = do(k, st, "node crashes")
    assert pending_timers(k, st) == []
    st = do(k, st, "node restarts")
    assert "timer" not in kinds(k, st)
    st = do(k, st, "node fires arm")                   # re-armed after the restart
    assert pending_timers(k, st) == [("node", 3, Boom())]


def test_crash_keeps_other_instances_timers():
    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "node fires arm", "client crashes")
    assert pending_timers(k, st) == [("node", 3, Boom())]
    assert matching(k, st, "node timer fires")


class Mode(Component):
    """A non-persistent field with two initial values: a restart may take either."""

    peer = Port()
    mode: int = one_of(0, 1)
    total: int = persistent(0)

    @action(when=lambda self: self.total < 1)
    def bump(self):
        self.total += 1

    @on(Hello)
    def hello(self, m):
        pass


def test_restart_offers_each_initial_choice_of_the_non_persistent_fields():
    s = System("modes", network="unordered")
    s.connect(s.add("m", Mode).peer, s.add("n", Mode).peer)
    k = Kernel(s, Faults(crash=1))
    starts = [st for st, _ in k.initial_states()]
    assert len(starts) == 4
    st = next(x for x in starts
              if k.local_values(x, "m")["mode"] == 1 and k.local_values(x, "n")["mode"] == 0)
    st = run(k, st, "m fires bump", "m crashes")
    restarts = matching(k, st, "m restarts")
    assert len(restarts) == 2
    after = sorted(tuple(sorted(k.local_values(k.step(st, e).state, "m").items()))
                   for e in restarts)
    assert after == [(("mode", 0), ("total", 1)), (("mode", 1), ("total", 1))]


class Paired(Component):
    """`a` is persistent, `b` is not, and the invariant says they are equal: a crash and
    restart breaks it (no restart hook)."""

    peer = Port()
    a: int = persistent(0)
    b: int = 0

    invariant(lambda self: self.a == self.b)

    @action(when=lambda self: self.a < 1)
    def bump(self):
        self.a += 1
        self.b += 1

    @on(Hello)
    def hello(self, m):
        pass


class PairedHook(Paired):
    """The same, with a restart hook that does nothing."""

    @on_restart
    def back(self):
        pass


class PairedKept(PairedHook):
    """Both fields persistent: a restart keeps them equal."""

    a: int = persistent(0)
    b: int = persistent(0)


def paired_system(cls: type) -> System:
    s = System("paired", network="unordered")
    s.connect(s.add("p", cls).peer, s.add("q", Mode).peer)
    s.terminal(lambda g: True)                         # no deadlock: only the invariant
    return s


def test_invariant_broken_by_a_restart_with_a_hook_is_reported():
    r = check(paired_system(PairedHook), faults=Faults(crash=1))
    assert r.verdict == "violation"
    assert r.violation.kind == "invariant"
    assert [s.description for s in r.steps] == ["p fires bump", "p crashes", "p restarts"]


def test_invariant_broken_by_a_restart_without_a_hook_is_reported():
    r = check(paired_system(Paired), faults=Faults(crash=1))
    assert r.verdict == "violation"
    assert r.violation.kind == "invariant"


def test_invariant_kept_across_restarts_passes():
    assert check(paired_system(PairedKept), faults=Faults(crash=1)).verdict == "ok"


# --- drop -----------------------------------------------------------------------------------------


def test_drop_removes_an_in_flight_message_and_spends_the_budget():
    k = Kernel(node_system(), Faults(drop=1))
    st = run(k, initial(k), "client fires send", "client fires send")
    drops = [n for n in names(k, st) if "drops" in n]
    assert drops == ["the network drops Ping(n=1) from client to node",
                     "the network drops Ping(n=2) from client to node"]
    st2 = do(k, st, "drops Ping(n=1)")
    assert [e.message for e in k.in_flight(st2)] == [Ping(2)]
    assert matching(k, st2, "node receives Ping(n=1)") == []
    assert "drop" not in kinds(k, st2)                 # budget of 1, spent
    assert st2[4] == (0, 0, 0, 0)
    # without a drop budget, no drop is offered
    k0 = Kernel(node_system(), Faults(crash=1))
    st0 = run(k0, initial(k0), "client fires send")
    assert "drop" not in kinds(k0, st0)


def test_drop_on_fifo_takes_the_head_of_a_link():
    k = Kernel(node_system("fifo"), Faults(drop=2))
    st = run(k, initial(k), "client fires send", "client fires send")
    assert [n for n in names(k, st) if "drops" in n] == [
        "the network drops Ping(n=1) from client to node"]
    st = do(k, st, "drops Ping(n=1)")
    assert [e.message for e in k.in_flight(st)] == [Ping(2)]
    st = do(k, st, "node receives Ping(n=2)")
    assert k.local_values(st, "node")["got"] == 1


def tla_system() -> System:
    return spec_system("tla_twophase.py", rm_count=2)


@pytest.mark.parametrize("system", [tla_system, node_system, lambda: node_system("fifo")],
                         ids=["duplicating", "unordered", "fifo"])
def test_a_dropped_message_is_not_deliverable_afterwards_on_any_network(system):
    """(A drop used to be offered on a duplicating network and leave the message there.)"""
    k = Kernel(system(), Faults(drop=1))
    checked = 0
    for st in some_states(k, 300):
        for ev in k.enabled_events(st):
            if k.event_kind(ev) != "drop":
                continue
            checked += 1
            env = k.slots[~ev][1]
            after, _, _ = k.apply(st, ev)
            assert env not in k.network.deliverable(after[1]) or \
                list(k.network.in_flight(after[1])).count(env) < \
                list(k.network.in_flight(st[1])).count(env), k.describe(ev)
    assert checked > 0 or not k.network.consumes


# --- duplicate ------------------------------------------------------------------------------------


def test_duplicate_on_unordered_adds_a_copy():
    k = Kernel(node_system(), Faults(dup=1))
    st = do(k, initial(k), "client fires send")
    st = do(k, st, "duplicates Ping(n=1)")
    assert [e.message for e in k.in_flight(st)] == [Ping(1), Ping(1)]
    assert "dup" not in kinds(k, st)
    st = run(k, st, "node receives Ping(n=1)", "node receives Ping(n=1)")
    assert k.local_values(st, "node")["got"] == 2
    assert k.in_flight(st) == []


def test_duplicate_on_fifo_puts_the_copy_right_behind_the_original():
    k = Kernel(node_system("fifo"), Faults(dup=1))
    st = run(k, initial(k), "client fires send", "client fires send")
    assert [n for n in names(k, st) if "duplicates" in n] == [
        "the network duplicates Ping(n=1) from client to node"]      # heads only
    st = do(k, st, "duplicates Ping(n=1)")
    assert [e.message for e in k.in_flight(st)] == [Ping(1), Ping(1), Ping(2)]
    order = []
    while k.in_flight(st):
        (ev,) = [e for e in k.enabled_events(st) if k.event_kind(e) == "deliver"]
        order.append(k.event(ev).envelope.message)
        st = k.step(st, ev).state
    assert order == [Ping(1), Ping(1), Ping(2)]


def test_duplicate_is_not_offered_on_a_duplicating_network():
    k = Kernel(tla_system(), Faults(dup=2))
    assert all("dup" not in kinds(k, st) for st in some_states(k, 300))


# --- partition and heal ---------------------------------------------------------------------------


class Shout(Message):
    pass


class Peer3(Component):
    """Shouts once to every peer; counts what it hears, by sender."""

    peers = Port(many=True)
    shouted: bool = False
    heard: frozenset = frozenset()

    @action(when=lambda self: not self.shouted)
    def shout(self):
        self.shouted = True
        self.peers.broadcast(Shout())

    @on(Shout)
    def hear(self, m):
        self.heard = self.heard | {str(m.sender)}


def triangle() -> System:
    s = System("triangle", network="unordered")
    a, b, c = s.add("a", Peer3), s.add("b", Peer3), s.add("c", Peer3)
    s.connect(a.peers, b.peers)
    s.connect(a.peers, c.peers)
    s.connect(b.peers, c.peers)
    return s


def deliveries(k: Kernel, st) -> set[tuple[str, str]]:
    out = set()
    for e in k.enabled_events(st):
        if k.event_kind(e) == "deliver":
            env = k.event(e).envelope
            out.add((env.src, env.dst))
    return out


def test_partition_groups_each_split_once():
    k = Kernel(triangle(), Faults(partition=1))
    parts = sorted(n for n in names(k, initial(k)) if n.startswith("partition"))
    assert parts == ["partition: {b, c} is cut off from the rest",
                     "partition: {b} is cut off from the rest",
                     "partition: {c} is cut off from the rest"]


def test_partition_blocks_deliveries_across_the_cut_only_and_heal_restores_them():
    k = Kernel(triangle(), Faults(partition=1))
    st = run(k, initial(k), "a fires shout", "b fires shout", "c fires shout")
    everyone = {(x, y) for x in "abc" for y in "abc" if x != y}
    assert deliveries(k, st) == everyone
    cut = do(k, st, "partition: {b, c}")
    assert deliveries(k, cut) == {("b", "c"), ("c", "b")}
    assert len(k.in_flight(cut)) == 6                  # the others wait, not lost
    assert "partition" not in kinds(k, cut)            # one partition at a time
    assert "heal" in kinds(k, cut)
    mid = run(k, cut, "c receives Shout() from b")
    assert k.local_values(mid, "c")["heard"] == frozenset({"b"})
    healed = do(k, mid, "the partition heals")
    assert deliveries(k, healed) == everyone - {("b", "c")}
    assert "heal" not in kinds(k, healed)
    assert "partition" not in kinds(k, healed)         # budget of 1, spent
    # the blocked messages get through after the heal
    for _ in range(5):
        (ev, *_) = [e for e in k.enabled_events(healed) if k.event_kind(e) == "deliver"]
        healed = k.step(healed, ev).state
    assert all(len(k.local_values(healed, n)["heard"]) == 2 for n in "abc")


def test_a_partition_that_cuts_off_one_instance_blocks_both_directions():
    k = Kernel(triangle(), Faults(partition=1))
    st = run(k, initial(k), "a fires shout", "b fires shout", "c fires shout",
             "partition: {b} is cut off")
    assert deliveries(k, st) == {("a", "c"), ("c", "a")}


def test_a_partitioned_instance_still_takes_its_actions():
    k = Kernel(triangle(), Faults(partition=1))
    st = do(k, initial(k), "partition: {c} is cut off")
    assert matching(k, st, "c fires shout")


# --- budgets --------------------------------------------------------------------------------------


BUDGET_INDEX = {"drop": 0, "dup": 1, "crash": 2, "partition": 3}


@pytest.mark.parametrize("faults", [Faults(crash=1), Faults(crash=1, drop=1, dup=1),
                                    Faults(drop=2, partition=1), Faults(crash=2, dup=1)])
def test_budgets_are_respected_on_every_path(faults: Faults):
    k = Kernel(node_system(), faults)
    graph = reachable(k)
    assert len(graph) > 10
    for st in graph:
        budget = st[4]
        assert all(0 <= b <= a for a, b in zip(faults.budget(), budget)), budget
        for ev in k.enabled_events(st):
            kind = k.event_kind(ev)
            nxt, _, _ = k.apply(st, ev)
            if kind in BUDGET_INDEX:
                idx = BUDGET_INDEX[kind]
                assert budget[idx] > 0, (kind, budget)
                expect = budget[:idx] + (budget[idx] - 1,) + budget[idx + 1:]
                assert nxt[4] == expect, (kind, budget, nxt[4])
            else:
                assert nxt[4] == budget, (kind, budget, nxt[4])


def test_distinct_fault_states_have_distinct_fingerprints():
    k = Kernel(node_system(), Faults(crash=1, drop=1, dup=1, partition=1))
    graph = reachable(k)
    assert len({k.fingerprint(s) for s in graph}) == len(graph)
    fresh = Kernel(node_system(), Faults(crash=1, drop=1, dup=1, partition=1))
    assert len(reachable(fresh)) == len(graph)


def test_with_crash_1_no_path_has_a_second_crash():
    """Explore (state, crashes so far) pairs: no path reaches a second crash."""
    k = Kernel(node_system(), Faults(crash=1))
    seen = {(s, 0) for s, _ in k.initial_states()}
    todo = deque(seen)
    most = 0
    while todo:
        st, n = todo.popleft()
        for ev in k.enabled_events(st):
            m = n + (k.event_kind(ev) == "crash")
            assert m <= 1, "a second crash on one path"
            most = max(most, m)
            node = (k.apply(st, ev)[0], m)
            if node not in seen:
                seen.add(node)
                todo.append(node)
    assert most == 1


def counted_system() -> System:
    s = node_system()

    @s.always
    def at_most_one_restart(g):
        return g["node"].restarts <= 1

    return s


def test_check_with_crash_1_never_sees_a_second_restart():
    r = check(counted_system(), faults=Faults(crash=1))
    assert r.verdict == "ok", r.violation


def test_check_with_crash_2_sees_a_second_restart():
    r = check(counted_system(), faults=Faults(crash=2))
    assert r.verdict == "violation"
    assert r.violation.name == "at_most_one_restart"
    assert [s.description for s in r.steps] == ["node crashes", "node restarts",
                                                "node crashes", "node restarts"]


def test_budget_is_part_of_the_state_and_its_fingerprint():
    k = Kernel(node_system(), Faults(crash=1, drop=1))
    st = initial(k)
    assert st[4] == (1, 0, 1, 0)
    back = run(k, st, "client crashes", "client restarts")
    assert back[0] == st[0] and back[4] == (1, 0, 0, 0)
    assert back != st
    assert k.fingerprint(back) != k.fingerprint(st)


# --- timers ---------------------------------------------------------------------------------------


class Tock(Message):
    n: int


class Alarm(Message):
    pass


class Timed(Component):
    p = Port()
    phase: int = 0
    log: tuple[int, ...] = ()
    alarms: int = 0

    @action(when=lambda self: self.phase == 0)
    def start(self):
        self.phase = 1
        self.after(5, Tock(1))
        self.after(7, Tock(2))
        self.after(9, Alarm())

    @action(when=lambda self: self.phase == 1)
    def cancel_one(self):
        self.phase = 2
        self.cancel(Tock(1))

    @action(when=lambda self: self.phase == 1)
    def cancel_type(self):
        self.phase = 3
        self.cancel(Tock)

    @on(Tock)
    def tock(self, m):
        self.log = self.log + (m.n,)

    @on(Alarm)
    def alarm(self, m):
        self.alarms += 1


class Quiet(Component):
    p = Port()

    @on(Hello)
    def hello(self, m):
        pass


def timed_system() -> System:
    s = System("timed", network="unordered")
    s.connect(s.add("t", Timed).p, s.add("q", Quiet).p)
    return s


def test_after_sets_a_timer_whose_event_runs_the_handler():
    k = Kernel(timed_system())
    assert k.extended                                  # timers: the long state form
    st = initial(k)
    assert "timer" not in kinds(k, st)
    st = do(k, st, "t fires start")
    assert pending_timers(k, st) == [("t", 5, Tock(1)), ("t", 7, Tock(2)), ("t", 9, Alarm())]
    assert sorted(n for n in names(k, st) if "timer" in n) == [
        "t timer fires: Alarm() (set with delay 9)",
        "t timer fires: Tock(n=1) (set with delay 5)",
        "t timer fires: Tock(n=2) (set with delay 7)"]
    st = do(k, st, "Tock(n=2)")
    assert k.local_values(st, "t")["log"] == (2,)
    assert matching(k, st, "Tock(n=2)") == []          # a timer fires once
    st = run(k, st, "Tock(n=1)", "Alarm()")
    assert k.local_values(st, "t")["log"] == (2, 1)
    assert k.local_values(st, "t")["alarms"] == 1
    assert pending_timers(k, st) == []
    assert k.in_flight(st) == []                       # a timer is not a network message


def test_timer_event_json_round_trips():
    k = Kernel(timed_system())
    st = do(k, initial(k), "t fires start")
    (ev,) = matching(k, st, "Tock(n=1)")
    j = k.event(ev).to_json()
    assert j == {"kind": "timer", "instance": "t",
                 "message": {"type": "Tock", "fields": {"n": 1}}, "delay": 5}
    assert k.step(st, j).state == k.step(st, ev).state


def test_cancel_by_message_removes_only_equal_timers():
    k = Kernel(timed_system())
    st = run(k, initial(k), "t fires start", "t fires cancel_one")
    assert pending_timers(k, st) == [("t", 7, Tock(2)), ("t", 9, Alarm())]


def test_cancel_by_type_removes_every_timer_of_that_type():
    k = Kernel(timed_system())
    st = run(k, initial(k), "t fires start", "t fires cancel_type")
    assert pending_timers(k, st) == [("t", 9, Alarm())]
    assert [n for n in names(k, st) if "timer" in n] == [
        "t timer fires: Alarm() (set with delay 9)"]


class Ring(Message):
    pass


class Counter(Component):
    """Sets a timer, then counts to 3; the timer records the count when it rings."""

    p = Port()
    started: bool = False
    count: int = 0
    rang_at: int = -1

    @action(when=lambda self: not self.started)
    def start(self):
        self.started = True
        self.after(100, Ring())

    @action(when=lambda self: self.started and self.count < 3)
    def step(self):
        self.count += 1

    @on(Ring)
    def ring(self, m):
        self.rang_at = self.count


def counter_system() -> System:
    s = System("counter", network="unordered")
    s.connect(s.add("c", Counter).p, s.add("q", Quiet).p)
    return s


def test_the_checker_lets_a_timer_fire_at_any_point_after_it_is_set():
    k = Kernel(counter_system())
    rang = {k.local_values(st, "c")["rang_at"] for st in reachable(k)}
    assert rang == {-1, 0, 1, 2, 3}                   # never before start; whatever the delay

    s = counter_system()

    @s.always
    def never_rings_at_2(g):
        return g["c"].rang_at != 2

    r = check(s)
    assert r.verdict == "violation"
    assert [x.description for x in r.steps] == [
        "c fires start", "c fires step", "c fires step",
        "c timer fires: Ring() (set with delay 100)"]


class Forgetful(Component):
    """Sets a timer with a message it has no handler for."""

    p = Port()
    set_: bool = False

    @action(when=lambda self: not self.set_)
    def arm(self):
        self.set_ = True
        self.after(1, Alarm())

    @on(Hello)
    def hello(self, m):
        pass


def test_a_timer_message_without_a_handler_is_unhandled():
    s = System("forgetful", network="unordered")
    s.connect(s.add("f", Forgetful).p, s.add("q", Quiet).p)
    r = check(s)
    assert r.verdict == "violation"
    assert r.violation.kind == "unhandled"
    assert r.violation.blame == "f"
    assert [x.description for x in r.steps] == [
        "f fires arm", "f timer fires: Alarm() (set with delay 1)"]


def test_timers_of_a_handled_type_raise_no_violation():
    k = Kernel(timed_system())
    st = do(k, initial(k), "t fires start")
    assert all(k.step(st, e).violations == () for e in k.enabled_events(st))


# --- check --faults on the shipped specs ----------------------------------------------------------


def test_check_crash_1_finds_the_volatile_register_bug():
    r = check(spec_system("register_bug_volatile.py"), faults=Faults(crash=1))
    assert r.verdict == "violation"
    assert r.violation.kind == "property"
    assert r.violation.name == "acknowledged_writes_survive"
    descs = [s.description for s in r.steps]
    assert descs[-2:] == ["server crashes", "server restarts"]
    assert len(descs) == 5                                # shortest: write, ack, crash, back


def test_the_volatile_register_holds_without_faults():
    assert check(spec_system("register_bug_volatile.py")).verdict == "ok"


def test_check_crash_1_passes_the_persistent_register():
    r = check(spec_system("register.py"), faults=Faults(crash=1))
    assert r.verdict == "ok" and r.reason == "exhausted"


def test_check_crash_1_dfs_agrees():
    assert check(spec_system("register.py"), faults=Faults(crash=1),
                 strategy="dfs").verdict == "ok"
    assert check(spec_system("register_bug_volatile.py"), faults=Faults(crash=1),
                 strategy="dfs").verdict == "violation"


def test_alternating_bit_holds_with_drop_and_dup():
    r = check(spec_system("alternating_bit.py"), faults=Faults(drop=1, dup=1))
    assert r.verdict == "ok" and r.reason == "exhausted"


def test_alternating_bit_holds_with_two_drops_and_two_duplicates():
    r = check(spec_system("alternating_bit.py"), faults=Faults(drop=2, dup=2))
    assert r.verdict == "ok" and r.reason == "exhausted"


def test_alternating_bit_no_seq_is_found_without_faults_too():
    r = check(spec_system("alternating_bit_bug_no_seq.py"))
    assert r.verdict == "violation" and r.violation.name == "in_order_once"


def test_alternating_bit_no_seq_is_found_with_dup_1():
    r = check(spec_system("alternating_bit_bug_no_seq.py"), faults=Faults(dup=1))
    assert r.verdict == "violation"
    assert r.violation.name == "in_order_once"


def test_the_no_seq_counterexample_under_dup_replays_by_name():
    from assay.kernel.trace import find_initial, replay_checked

    r = check(spec_system("alternating_bit_bug_no_seq.py"), faults=Faults(dup=1))
    fresh = Kernel(spec_system("alternating_bit_bug_no_seq.py"), Faults(dup=1))
    done = replay_checked(fresh, r.trace.events, find_initial(fresh, r.trace.initial))
    assert done.violation is not None and done.violation.name == "in_order_once"
    assert len(done.steps) == len(r.steps)


def test_a_state_that_can_only_move_by_failing_is_a_deadlock():
    """The register does not retry: once its Write is dropped, the client waits for ever,
    whatever faults are still in the budget."""
    r = check(spec_system("register.py"), faults=Faults(drop=1, crash=1))
    assert r.verdict == "violation" and r.violation.kind == "deadlock"
    assert [s.description for s in r.steps] == [
        "client fires write", "the network drops Write(value=1) from client to server"]


def test_a_crashed_instance_that_can_restart_is_not_a_deadlock():
    k = Kernel(node_system(), Faults(crash=1))
    st = run(k, initial(k), "node crashes")
    assert k.can_progress(st)
    st = run(k, st, "node restarts", "client receives Hello()")
    assert k.can_progress(st)                          # client can send, node can arm


def test_check_accepts_the_budget_on_the_kernel_or_on_check_but_not_both_differently():
    k = Kernel(spec_system("register.py"), Faults(crash=1))
    assert check(k, faults=Faults(crash=1)).verdict == "ok"
    with pytest.raises(ValueError):
        check(k, faults=Faults(crash=2))


def test_a_property_reading_crashed_sees_the_crash():
    s = node_system()

    @s.always
    def node_up(g):
        return "node" not in g.crashed()

    assert check(s).verdict == "ok"
    r = check(s, faults=Faults(crash=1))
    assert r.verdict == "violation"
    assert [x.description for x in r.steps] == ["node crashes"]


PLAIN_SPECS = [("two_phase_commit.py", {}), ("two_phase_commit_bug_majority.py", {}),
               ("tla_twophase.py", {}), ("register.py", {}), ("register_bug_volatile.py", {}),
               ("alternating_bit.py", {}), ("alternating_bit_bug_no_seq.py", {})]


@pytest.mark.parametrize("spec,params", PLAIN_SPECS, ids=[p[0] for p in PLAIN_SPECS])
def test_an_empty_fault_budget_explores_exactly_the_plain_state_space(spec, params):
    plain = check(spec_system(spec, **params))
    empty = check(spec_system(spec, **params), faults=Faults())
    assert (empty.verdict, empty.states, empty.transitions, empty.depth) == \
        (plain.verdict, plain.states, plain.transitions, plain.depth)
    if plain.violation is not None:
        assert [s.description for s in empty.steps] == [s.description for s in plain.steps]


def test_named_events_replay_every_fault_kind():
    """Every enabled event of every reachable state steps by its JSON name to the same state."""
    k = Kernel(triangle(), Faults(crash=1, drop=1, dup=1, partition=1))
    seen_kinds = set()
    for st in some_states(k, 400):
        for ev in k.enabled_events(st):
            seen_kinds.add(k.event_kind(ev))
            j = k.event(ev).to_json()
            assert k.step(st, j).state == k.apply(st, ev)[0], j
    assert seen_kinds >= {"deliver", "action", "crash", "restart", "drop", "dup", "partition",
                          "heal"}


def test_fault_event_json_forms():
    k = Kernel(triangle(), Faults(crash=1, drop=1, dup=1, partition=1))
    st = do(k, initial(k), "a fires shout")
    forms = {}
    for ev in k.enabled_events(st):
        forms.setdefault(k.event_kind(ev), k.event(ev).to_json())
    assert forms["crash"] == {"kind": "crash", "instance": "a"}
    assert forms["partition"]["kind"] == "partition"
    assert forms["partition"]["group"] in (["b"], ["c"], ["b", "c"])
    assert forms["drop"]["kind"] == "drop" and forms["drop"]["from"] == "a"
    assert forms["dup"]["kind"] == "duplicate" and forms["dup"]["message"]["type"] == "Shout"
    st = do(k, st, "a crashes")
    (r,) = [e for e in k.enabled_events(st) if k.event_kind(e) == "restart"]
    assert k.event(r).to_json() == {"kind": "restart", "instance": "a", "choice": 0}
    st = do(k, initial(k), "partition: {c}")
    (h,) = [e for e in k.enabled_events(st) if k.event_kind(e) == "heal"]
    assert k.event(h).to_json() == {"kind": "heal"}


# --- Faults.parse and the command line ------------------------------------------------------------


@pytest.mark.parametrize("text,expect", [
    ("crash=1", Faults(crash=1)),
    ("crash=1,drop=2,dup=1,partition=1", Faults(drop=2, dup=1, crash=1, partition=1)),
    (" drop = 2 , duplicate=3 ", Faults(drop=2, dup=3)),
    ("", Faults()),
])
def test_faults_parse(text, expect):
    assert Faults.parse(text) == expect


@pytest.mark.parametrize("text,says", [
    ("crash", "is not KIND=N"),
    ("bogus=1", "is not KIND=N"),
    ("crash=x", "is not a whole number of faults"),
    ("crash=-1", ">= 0"),
    ("crash=1.5", "'1.5' is not a whole number of faults (a rate is for `simulate`)"),
])
def test_faults_parse_errors_are_usage_errors(text, says):
    with pytest.raises(UsageError) as e:
        Faults.parse(text)
    assert says in e.value.message
    assert e.value.exit_code == 2


@pytest.mark.e2e
@pytest.mark.parametrize("text", ["crash", "bogus=1", "crash=x", "crash=-1"])
def test_check_with_a_bad_faults_option_exits_2_without_a_traceback(text):
    r = subprocess.run([sys.executable, "-m", "assay.cli", "check", "specs/register.py",
                        "--faults", text], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--faults" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.e2e
def test_check_faults_on_the_command_line_finds_and_passes():
    bug = subprocess.run([sys.executable, "-m", "assay.cli", "check",
                          "specs/register_bug_volatile.py", "--faults", "crash=1"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    ok = subprocess.run([sys.executable, "-m", "assay.cli", "check", "specs/register.py",
                         "--faults", "crash=1"], cwd=REPO, capture_output=True, text=True,
                        timeout=60)
    assert bug.returncode == 1, bug.stdout + bug.stderr
    assert "server crashes" in bug.stdout and "server restarts" in bug.stdout
    assert "with faults crash=1" in " ".join(bug.stdout.split())
    assert ok.returncode == 0, ok.stdout + ok.stderr
