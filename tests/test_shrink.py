"""Shrinking toward the shortest failing run: each pass on a run that only it can shorten
(delta debugging alone leaves it as it is), the final breadth-first search against `check`'s
shortest counterexample, and the simulator's per-state memo (it never changes a run)."""
from __future__ import annotations

from pathlib import Path

from assay import Component, Message, Port, System, action, on
from assay.checker import check
from assay.kernel import Faults, Kernel
from assay.simulator import FaultRates, Options, campaign, run_once
from assay.simulator.campaign import derive, kernel_for
from assay.simulator.run import Moves, moves_of
from assay.simulator.shrink import (
    Search,
    Walker,
    bfs_shortest,
    cut_loops,
    ddmin_events,
    drop_groups,
    shrink_run,
    signature,
)

REPO = Path(__file__).resolve().parents[1]
SHRINK_SPECS = REPO / "tests" / "benchmarks" / "shrink_specs"


def ids(kernel: Kernel, names: list[dict]) -> tuple[object, list[int]]:
    """The initial state and the event ids of a run given by name."""
    start = kernel.initial_states()[0][0]
    state, out = start, []
    for e in names:
        ev = kernel.event_id(state, e)
        out.append(ev)
        state = kernel.apply(state, ev)[0]
    return start, out


def violation_of(kernel: Kernel, start, events: list[int]):
    state = start
    for ev in events:
        state, _, viol = kernel.apply(state, ev)
        if viol:
            return viol[0]
    return kernel.property_violations(state)[0]


def walker(kernel: Kernel, start, events: list[int]) -> tuple[Walker, object]:
    w = Walker(kernel, signature(violation_of(kernel, start, events)))
    row = w.memo.row(start)
    assert w.fails(row, events) == len(events)
    return w, row


def act(instance: str, name: str) -> dict:
    return {"kind": "action", "instance": instance, "action": name}


# --- loops: a state-based shortcut ------------------------------------------------------------


class Dial(Component):
    n: int = 0                          # 0, 1, 2, 0, ...

    @action()
    def turn(self):
        self.n = (self.n + 1) % 3

    @action(when=lambda self: self.n == 1)
    def press(self):
        self.pressed = True

    pressed: bool = False


def dial() -> System:
    s = System("dial")
    s.add("d", Dial)

    @s.always
    def never_pressed(g):
        return not g["d"].pressed

    return s


def test_cut_loops_removes_a_loop_that_ddmin_cannot():
    """turn x4 then press: the first three turns come back to the start.  ddmin removes only
    aligned chunks (and no single turn), so it keeps all five events."""
    k = Kernel(dial())
    start, run = ids(k, [act("d", "turn")] * 4 + [act("d", "press")])
    w, row = walker(k, start, run)
    assert len(ddmin_events(w, row, run)) == 5
    cut = cut_loops(w, row, run)
    assert [k.event(e).to_json()["action"] for e in cut] == ["turn", "press"]
    assert w.fails(row, cut) == 2


# --- groups: a crash and its restart, a partition and its heal, a send and its deliveries ------


class Flag(Message): ...


class Server(Component):
    clients = Port(many=True)
    poked: bool = False
    flagged: bool = False

    @action(when=lambda self: not self.poked)
    def poke(self):
        self.poked = True

    @on(Flag)
    def flag(self, m):
        self.flagged = True


class Client(Component):
    server = Port()
    marked: bool = False
    sent: bool = False

    @action(when=lambda self: not self.marked)
    def mark(self):
        self.marked = True

    @action(when=lambda self: not self.sent)
    def send_flag(self):
        self.sent = True
        self.server.send(Flag())


def pair(network: str = "unordered") -> System:
    s = System("pair", network=network)
    server = s.add("s", Server)
    s.connect(s.add("c", Client).server, server.clients)

    @s.always
    def not_poked_after_mark(g):
        return not (g["c"].marked and g["s"].poked)

    @s.always
    def not_flagged_after_mark(g):
        return not (g["c"].marked and g["s"].flagged)

    return s


def test_drop_groups_removes_a_crash_with_its_restart_that_ddmin_cannot():
    """crash s, c marks, restart s, s pokes: without the crash the restart is not enabled,
    without the restart s cannot poke; only the pair goes, together."""
    k = Kernel(pair(), Faults.unlimited())
    start, run = ids(k, [{"kind": "crash", "instance": "s"}, act("c", "mark"),
                         {"kind": "restart", "instance": "s"}, act("s", "poke")])
    w, row = walker(k, start, run)
    assert len(ddmin_events(w, row, run)) == 4
    assert cut_loops(w, row, run) == run
    small = drop_groups(w, row, run)
    assert [k.event(e).to_json()["kind"] for e in small] == ["action", "action"]
    assert w.fails(row, small) == 2


def test_drop_groups_removes_a_partition_with_its_heal_that_ddmin_cannot():
    """c is cut off, marks and sends, the partition heals, s receives: only the partition and
    its heal go, together."""
    k = Kernel(pair(), Faults.unlimited())
    start, run = ids(k, [{"kind": "partition", "group": ["c"]}, act("c", "mark"),
                         act("c", "send_flag"), {"kind": "heal"},
                         {"kind": "deliver", "from": "c", "to": "s"}])
    w, row = walker(k, start, run)
    assert len(ddmin_events(w, row, run)) == 5
    small = drop_groups(w, row, run)
    assert [k.event(e).to_json()["kind"] for e in small] == ["action", "action", "deliver"]


class Junk(Message): ...


class Real(Message): ...


class Sink(Component):
    src = Port()
    junk: int = 0
    got: bool = False

    @on(Junk)
    def on_junk(self, m):
        pass

    @on(Real)
    def on_real(self, m):
        self.got = True


class Source(Component):
    dst = Port()
    junk_sent: bool = False
    real_sent: bool = False

    @action(when=lambda self: not self.junk_sent)
    def junk(self):
        self.junk_sent = True
        self.dst.send(Junk())

    @action(when=lambda self: not self.real_sent)
    def real(self):
        self.real_sent = True
        self.dst.send(Real())


def fifo_pair() -> System:
    s = System("fifo_pair", network="fifo")
    s.connect(s.add("a", Source).dst, s.add("b", Sink).src)

    @s.always
    def never_got(g):
        return not g["b"].got

    return s


def test_drop_groups_removes_a_send_with_its_delivery_that_ddmin_cannot():
    """a sends Junk then Real on one FIFO link; b takes Junk, then Real.  Without the Junk
    delivery Real is stuck behind it; without the send there is nothing to deliver."""
    k = Kernel(fifo_pair())
    start, run = ids(k, [act("a", "junk"), act("a", "real"),
                         {"kind": "deliver", "from": "a", "to": "b"},
                         {"kind": "deliver", "from": "a", "to": "b"}])
    w, row = walker(k, start, run)
    assert len(ddmin_events(w, row, run)) == 4
    assert cut_loops(w, row, run) == run
    small = drop_groups(w, row, run)
    assert len(small) == 2 and k.event(small[0]).to_json()["action"] == "real"


# --- the final breadth-first search -----------------------------------------------------------


class Steps(Component):
    x: int = 0

    @action(when=lambda self: self.x < 3)
    def one(self):
        self.x += 1

    @action(when=lambda self: self.x < 2)
    def two(self):
        self.x += 2


def steps() -> System:
    s = System("steps")
    s.add("s", Steps)

    @s.always
    def below_three(g):
        return g["s"].x < 3

    return s


def test_bfs_finds_a_shorter_way_no_removal_can():
    """one, one, one reaches 3; no subsequence does, but one, two does (through a state the
    run visited and a neighbour of it).  The search covered everything shorter, so the result
    is as short as `check`'s counterexample."""
    k = Kernel(steps())
    start, run = ids(k, [act("s", "one")] * 3)
    w, row = walker(k, start, run)
    assert len(ddmin_events(w, row, run)) == 3
    assert drop_groups(w, row, run) == run and cut_loops(w, row, run) == run
    search = Search()
    near = {r.state for r in w.rows(row, run)}
    got = bfs_shortest(w, [row], near, len(run), 1, 1000, search)
    assert got is not None and search.complete and search.everything
    first, small = got
    assert first is row and w.fails(row, small) == 2
    assert len(small) == len(check(steps()).steps) == 2


def test_bfs_stays_within_the_neighbourhood_and_the_budget():
    """Radius 1 with a tiny `near` cannot leave the run's states; a budget of one expanded
    state does not complete."""
    k = Kernel(steps())
    start, run = ids(k, [act("s", "one")] * 3)
    w, row = walker(k, start, run)
    search = Search()
    assert bfs_shortest(w, [row], set(), 3, 1, 1000, search) is None
    assert search.complete and not search.everything        # states were left out
    search = Search()
    assert bfs_shortest(w, [row], {row.state}, 3, 3, 1, search) is None
    assert not search.complete


def test_shrink_run_gets_the_mutex_bug_down_to_checks_shortest():
    """The lock server that grants twice: random runs go round request/release loops; the
    shrunk runs are as short as `check`'s counterexample and still fail the same way."""
    from assay.model.load import build

    system, _, _ = build(str(SHRINK_SPECS / "mutex_bug_release.py"), None, {})
    shortest = len(check(system).steps)
    k = kernel_for(system, FaultRates())
    lengths = []
    for i in range(8):
        r = run_once(k, derive(5, i), 200, FaultRates(), lassos=False)
        assert r.violation is not None
        small = shrink_run(k, r.initial, r.events, r.violation, budget=2000)
        w = Walker(k, signature(r.violation))
        assert w.fails(small.start, small.events) == len(small.events)
        lengths.append(len(small.events))
    assert min(lengths) == shortest and sum(n == shortest for n in lengths) >= 7, lengths


# --- the budget: states off the failing run, counted the same in every process -----------------


def _release_runs(kernel: Kernel, seed: int, n: int) -> list:
    return [run_once(kernel, derive(seed, i), 200, FaultRates(), lassos=False)
            for i in range(n)]


def _named(kernel: Kernel, small) -> tuple:
    return ([kernel.event(e).to_json() for e in small.events], small.cost,
            small.search.everything, small.search.radius, small.search.bound)


def test_a_budget_gives_the_same_shrunk_run_with_a_warm_or_a_cold_memo():
    """The budget counts the states shrinking comes to off the failing run, whether this
    process's memo had them or not: a kernel that already ran and shrank other runs shrinks
    a run to the same events at the same cost as a fresh one (so `--jobs` changes nothing)."""
    from assay.model.load import build

    system, _, _ = build(str(SHRINK_SPECS / "mutex_bug_release.py"), None, {})
    warm = kernel_for(system, FaultRates())
    for r in _release_runs(warm, 8, 20):
        shrink_run(warm, r.initial, r.events, r.violation, budget=256)
    for budget in (8, 64, 1024):
        cold = kernel_for(system, FaultRates())
        a = _release_runs(cold, 3, 4)[3]
        b = _release_runs(warm, 3, 4)[3]
        got_cold = shrink_run(cold, a.initial, a.events, a.violation, budget=budget)
        got_warm = shrink_run(warm, b.initial, b.events, b.violation, budget=budget)
        assert _named(cold, got_cold) == _named(warm, got_warm), budget


def test_a_small_budget_stops_early_with_a_run_that_still_fails():
    """Out of budget, what was found by then stands: it replays to the same failure; the
    passes and then the search each stop once they have spent the budget (a replay under way
    ends), and a larger budget shrinks further."""
    from assay.model.load import build

    system, _, _ = build(str(SHRINK_SPECS / "mutex_bug_release.py"), None, {})
    k = kernel_for(system, FaultRates())
    r = max(_release_runs(k, 5, 12), key=lambda r: len(r.events))
    lengths = []
    for budget in (1, 16, 4096):
        small = shrink_run(k, r.initial, r.events, r.violation, budget=budget)
        w = Walker(k, signature(r.violation))
        assert w.fails(small.start, small.events) == len(small.events)
        assert small.cost <= 2 * (budget + len(r.events))
        lengths.append(len(small.events))
    assert lengths[0] >= lengths[1] >= lengths[2] and lengths[0] > lengths[2], lengths


def test_a_plain_search_that_ends_proves_the_shortest_and_one_cut_short_does_not():
    """The search from the initial states ends within a large budget: the result is
    `check`'s shortest length and says so (`everything`, `bound`); with a small budget it
    stops, claiming only the levels it went through."""
    from assay.model.load import build

    system, _, _ = build(str(SHRINK_SPECS / "mutex_bug_release.py"), None, {})
    shortest = len(check(system).steps)
    k = kernel_for(system, FaultRates())
    r = max(_release_runs(k, 5, 12), key=lambda r: len(r.events))
    assert len(r.events) > shortest
    small = shrink_run(k, r.initial, r.events, r.violation, budget=4096)
    assert len(small.events) == shortest
    assert small.search.everything and small.search.bound == shortest
    cut = shrink_run(k, r.initial, r.events, r.violation, budget=16)
    assert not cut.search.everything and cut.search.bound < shortest


def test_later_failures_of_a_violation_take_the_first_ones_shrunk_run():
    """Every run of the release bug fails the same way: the first is shrunk (with the budget
    of all of them) to `check`'s shortest, proved; the others come to that same run by one
    replay, the same with one worker or two."""
    from assay.model.load import build

    spec = str(SHRINK_SPECS / "mutex_bug_release.py")
    system, _, _ = build(spec, None, {})
    shortest = len(check(system).steps)
    one = campaign(spec, None, {}, seed=4, runs=40, opts=Options(steps=200), jobs=1)
    assert len(one.failures) == 40
    first, *rest = one.failures
    assert first.shrinking and first.shrinking.everything and len(first.shrunk or []) == shortest
    for r in rest:
        assert r.shrunk == first.shrunk and r.shrunk_initial == first.shrunk_initial
        assert r.shrinking and "earlier" in r.shrinking.removed and r.shrinking.everything
    two = campaign(spec, None, {}, seed=4, runs=40, opts=Options(steps=200), jobs=2)
    assert [(r.shrunk, r.shrunk_initial, r.shrinking and r.shrinking.removed)
            for r in two.failures] == \
        [(r.shrunk, r.shrunk_initial, r.shrinking and r.shrinking.removed)
         for r in one.failures]


def test_a_shrunk_run_of_another_failure_that_does_not_replay_is_ignored():
    from assay.model.load import build
    from assay.simulator.campaign import Shrinking, _earlier

    system, _, _ = build(str(SHRINK_SPECS / "mutex_bug_release.py"), None, {})
    k = kernel_for(system, FaultRates())
    bogus = Shrinking(0, {}, [{"kind": "action", "instance": "nobody", "action": "x"}], 0.0,
                      {}, 0, False)
    assert _earlier(k, bogus) is None and _earlier(k, None) is None


def test_shrinking_uses_only_the_faults_the_campaign_injects():
    """The simulator's kernel offers every fault (unlimited budget); a shrunk run of a
    campaign with crashes only has no drops or duplicates, and its length is `check`'s with
    one crash."""
    spec = str(SHRINK_SPECS / "mutex_bug_crash.py")
    opts = Options(steps=300, rates=FaultRates(crash=0.05, restart=0.3))
    c = campaign(spec, None, {}, seed=1, runs=20, opts=opts, jobs=1)
    assert c.failures and c.shrink_seconds > 0
    from assay.model.load import build

    system, _, _ = build(spec, None, {})
    shortest = len(check(system, faults=Faults(crash=1)).steps)
    for r in c.failures:
        kinds = {e["kind"] for e in r.shrunk or []}
        assert kinds <= {"action", "deliver", "crash", "restart"}, kinds
        assert len(r.shrunk or []) >= shortest
    assert sum(len(r.shrunk or []) == shortest for r in c.failures) >= 0.9 * len(c.failures)


# --- the per-state memo never changes a run ---------------------------------------------------


def test_runs_are_the_same_with_and_without_the_memo():
    """`Moves` keeps at most `limit` rows; with none kept every step is computed afresh, and
    the runs are the same, event for event."""
    spec = str(SHRINK_SPECS / "mutex_bug_crash.py")
    from assay.model.load import build

    system, _, _ = build(spec, None, {})
    rates = FaultRates(crash=0.05, restart=0.3)
    kept = kernel_for(system, rates)
    bare = kernel_for(system, rates)
    moves_of(bare).limit = 0
    assert isinstance(moves_of(bare), Moves)
    for i in range(30):
        a = run_once(kept, derive(9, i), 100, rates, lassos=False)
        b = run_once(bare, derive(9, i), 100, rates, lassos=False)
        assert [kept.event(e).to_json() for e in a.events] == \
            [bare.event(e).to_json() for e in b.events]
        assert (a.ended, a.time) == (b.ended, b.time)
    assert not moves_of(bare).rows and moves_of(kept).rows


SPECS = Path(__file__).resolve().parents[1] / "specs"


def _reachable(kernel: Kernel, most: int) -> list:
    """Up to `most` states of `kernel`, breadth-first."""
    seen = {st for st, _ in kernel.initial_states()}
    todo = list(seen)
    out = []
    while todo and len(out) < most:
        st = todo.pop(0)
        out.append(st)
        for _, nxt, _ in kernel.successors(st)[0]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return out


class Beat(Message):
    pass


class Echo(Message):
    pass


class Beacon(Component):
    out = Port()
    heard: int = 0

    @action()
    def beat(self):                   # a step only while no Beat is in flight
        self.out.send(Beat())

    @on(Echo)
    def echo(self, m):
        self.heard = min(self.heard + 1, 2)


class Mirror(Component):
    inp = Port()

    @on(Beat)
    def beat(self, m):                # a step only while no Echo is in flight
        self.inp.send(Echo())


def beacons() -> System:
    """A duplicating network (the messages ever sent) where a step that sends what is already
    in flight and changes nothing else is a self-loop."""
    s = System("beacons", network="duplicating")
    s.connect(s.add("b", Beacon).out, s.add("m", Mirror).inp)
    return s


def test_moving_events_are_the_successors_steps_without_their_states():
    """`Kernel.moving_events` lists what `successors` steps to (same events, order and
    violations) and `apply` of each gives `successors`' next state: on the hot path (an
    unordered, a duplicating, a fifo network; receive guards; a bug's violations) and off it
    (faults, lossy links)."""
    cases = [("tla_twophase.py", {"rm_count": "3"}, None),
             ("two_phase_commit_bug_protocol.py", {}, None),
             ("in_order_receiver_bug_no_guard.py", {}, None),
             ("alternating_bit.py", {}, None),
             ("tla_lamport_mutex_bug_ties.py", {}, None),
             ("bank_transfer_bug_overdraft.py", {}, None),
             ("two_phase_commit.py", {}, Faults(crash=1, drop=1)),
             ("abp_lossy.py", {}, None)]
    from assay.model.load import build

    fast = violations = loops = 0
    for name, params, faults in cases + [("beacons", {}, None)]:
        system = beacons() if name == "beacons" else build(str(SPECS / name), None, params)[0]
        kernel = Kernel(system, faults)
        fast += kernel.lists_moves
        for st in _reachable(kernel, 150):
            steps, enabled = kernel.successors(st)
            assert kernel.moving_events(st) == [(e, v) for e, _, v in steps], name
            loops += enabled - len(steps)
            for e, nxt, viol in steps:
                assert kernel.apply(st, e)[0::2] == (nxt, viol), name
                violations += bool(viol)
    # both paths, steps that report violations, self-loops left out
    assert fast >= 5 and violations and loops


CASES = [("two_phase_commit_bug_protocol.py", FaultRates()),     # violations
         ("tla_twophase.py", FaultRates()),
         ("dining_philosophers.py", FaultRates()),
         ("abp_lossy_bug_any_ack.py", FaultRates()),                # a lossy link loses
         ("two_phase_commit_bug_majority.py", FaultRates(crash=0.05, restart=0.3))]


def test_runs_are_the_same_listing_moves_or_building_successors(monkeypatch):
    """The simulator's rows from `Kernel.moving_events` (apply only the step taken) and from
    `successors` (every next state) give the same runs, event for event, violations too; so
    do `run_once`'s plain loop (no timers, faults, liveness; the uniform pick) and its
    general one."""
    from assay.model.load import build
    from assay.simulator import run

    ended = set()
    for plain in (True, False):
        for name, rates in CASES:
            system, _, _ = build(str(SPECS / name), None, {})
            listed = kernel_for(system, rates)
            built = kernel_for(system, rates)
            moves_of(built).listing = False
            for i in range(40):
                monkeypatch.setattr(run, "PLAIN", plain)
                a = run_once(listed, derive(5, i), 100, rates, lassos=False)
                monkeypatch.setattr(run, "PLAIN", not plain)    # and the other loop
                b = run_once(built, derive(5, i), 100, rates, lassos=False)
                assert [listed.event(e).to_json() for e in a.events] == \
                    [built.event(e).to_json() for e in b.events], name
                assert (a.ended, a.time, a.violation and a.violation.name) == \
                    (b.ended, b.time, b.violation and b.violation.name), name
                ended.add((name, a.ended))
    # runs that end every way: a violation, a deadlock, final, out of steps
    assert {why for _, why in ended} >= {"violation", "final", "deadlock", "steps"}, ended
    assert moves_of(kernel_for(build(str(SPECS / "tla_twophase.py"), None, {})[0],
                               FaultRates())).listing
