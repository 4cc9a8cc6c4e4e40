"""Red team of composites, interceptors, elastic pools and external stores, across engines.

Each test is a probe that broke: a claim (`✓`, "proved", "no violation") made of something
that was not checked, or two engines that disagree.  The specs are small, written here as
a user would write them; every engine runs for real (Z3, the kernel, SQLite)."""
from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from assay.errors import UsageError
from assay.kernel import Kernel
from assay.model.load import build
from assay.runtime.extstore import SQLiteAdapter
from assay.runtime.local import run_local


def spec(tmp_path: Path, name: str, src: str) -> Path:
    p = tmp_path / f"{name}.py"
    p.write_text(textwrap.dedent(src))
    return p


def kernel_of(path: Path, **params: str) -> Kernel:
    system, _, _ = build(path, None, params)
    return Kernel(system)


# --- verify: an interceptor's hops carry the receiving port's contract ----------------------

ADDER = """
    from assay import Component, Message, Port, System, action, invariant, on
    from assay.model.interceptor import Interceptor

    class W(Message):
        value: int

    class A(Component):
        out = Port(where={W: lambda m: 0 <= m.value <= 7})
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def go(self):
            self.sent = True
            self.out.send(W(3))

    class B(Component):
        inp = Port(where={W: lambda m: 0 <= m.value <= 7})
        x: int = 0
        invariant(lambda self: self.x <= 7)

        @on(W)
        def w(self, m):
            self.x = m.value

    class Add(Interceptor):
        @on(Message)
        def cross(self, m):          # every other message: dropped (translatable)
            pass

        @on(W)
        def w(self, m):              # transforms: what b's port assumes no longer holds
            self.right.send(W(m.value + 100))

    def system() -> System:
        s = System("adder", network="fifo")
        a, b = s.add("a", A), s.add("b", B)
        s.connect(a.out, b.inp, via=Add)
        return s
"""


def test_verify_checks_the_contract_at_an_interceptors_hop_not_only_end_to_end(tmp_path):
    # `a` guarantees what `b` assumes, but `b` gets what the interceptor sends: verify said
    # "✓ every obligation proved" (exit 0) while `check` finds W(103) at b's port
    from assay.api import check, verify

    path = spec(tmp_path, "adder", ADDER)
    assert check(str(path)).verdict == "violation"
    report = verify(str(path))
    hop = [o for o in report.obligations if o.target == "a-b.right ~ b.inp"]
    assert [o.verdict for o in hop] == ["refuted"], [(o.target, o.verdict)
                                                    for o in report.obligations]
    assert report.verdict != "proved"


# --- check: a message kept in a field forgets its sender and meta ---------------------------

KEPT = """
    from assay import Component, Message, Port, System, action, on
    from assay.model.interceptor import Interceptor

    class W(Message):
        v: int

    class A(Component):
        out = Port()
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def go(self):
            self.sent = True
            self.out.send(W(1))

    class Tag(Interceptor):
        @on(W)
        def w(self, m):
            self.forward(m, meta={"via": self.name_})

        name_: str = ""

    class B(Component):
        inp = Port(many=True)
        last: W | None = None
        who: str = ""
        tag: str = ""

        @on(W)
        def w(self, m):
            if self.last is None:
                self.last = m

        @action(when=lambda self: self.last is not None and self.who == "")
        def look(self):
            self.who = str(self.last.sender)
            self.tag = str(self.meta(self.last).get("via", ""))

    def system() -> System:
        s = System("kept")
        b = s.add("b", B)
        for n in ("1", "2"):
            s.connect(s.add("a" + n, A).out, b.inp,
                      via=s.add("t" + n, Tag, name_="t" + n))

        @s.always
        def never_second(g):
            return g["b"].who != "a2" and g["b"].tag != "t2"

        s.terminal(lambda g: True)
        return s
"""


def test_a_message_kept_in_a_field_carries_no_sender_or_meta_into_the_state(tmp_path):
    # equal messages are one value in a state (sender and meta are no part of equality), so
    # the one kept first stood for both: `check` said "✓ exhaustive" of `never_second` while
    # `simulate` broke it.  A kept message now forgets both, in every engine alike.
    from assay.api import check, simulate

    path = spec(tmp_path, "kept", KEPT)
    k = kernel_of(path)
    kept = [k.local_values(state, "b")["last"] for state in _states(k)]
    assert any(m is not None for m in kept)
    for m in kept:
        assert m is None or (m.sender is None and not getattr(m, "_meta", ()))
    assert check(str(path)).verdict == "ok"
    assert simulate(str(path), runs=20, seed=1).ok


def _states(k: Kernel) -> list:
    """Every reachable state of `k` (a plain search over `Kernel.successors`)."""
    todo = [s for s, _ in k.initial_states()]
    seen = set(todo)
    while todo:
        for _, nxt, _ in k.successors(todo.pop())[0]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return list(seen)


# --- run: two external stores never share a table --------------------------------------------

CLASH = """
    from assay import Component, Map, Message, Port, System, action, external_store, on

    class Put(Message):
        k: str
        v: int

    class S1(Component):
        inp = Port()
        b_c: Map[str, int] = external_store(Map())

        @on(Put)
        def put(self, m):
            self.b_c = self.b_c.set(m.k, m.v)

    class S2(Component):
        inp = Port()
        c: Map[str, int] = external_store(Map())

        @on(Put)
        def put(self, m):
            self.c = self.c.set(m.k, m.v)

    class W(Component):
        o1 = Port()
        o2 = Port()
        done: bool = False

        @action(when=lambda self: not self.done)
        def go(self):
            self.done = True
            self.o1.send(Put("x", 1))
            self.o2.send(Put("x", 2))

    def system() -> System:
        s = System("clash")
        w = s.add("w", W)
        s.connect(w.o1, s.add("a", S1).inp)
        s.connect(w.o2, s.add("a_b", S2).inp)
        s.terminal(lambda g: True)
        return s
"""


def test_two_external_stores_whose_tables_would_be_one_are_refused(tmp_path):
    # `a.b_c` and `a_b.c` were both kept in `store_a_b_c`: each step of one overwrote the
    # other's key, and `run` said "✓ no violation" of a database that holds neither model
    db = tmp_path / "clash.sqlite"
    with pytest.raises(UsageError, match="would share the table store_a_b_c"):
        run_local(kernel_of(spec(tmp_path, "clash", CLASH)), duration=20,
                  stores=SQLiteAdapter(db))
    assert not db.exists() or not sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE name LIKE 'store_%'").fetchall()


# --- encapsulation: nothing outside a composite wires or drives an instance inside -----------

INNER = """
    from assay import Component, Message, Port, System, on
    from assay.model.interceptor import Interceptor

    class M(Message):
        v: int

    class Srv(Component):
        client = Port()

        @on(M)
        def m(self, m):
            pass

    class Cli(Component):
        out = Port()

    class Spy(Interceptor):
        pass

    def shard():
        s = System("shard")
        srv = s.add("srv", Srv)
        s.add("spy", Spy)
        s.export("client", srv.client)
        return s
"""


@pytest.mark.parametrize("reach", ["via", "external"])
def test_an_instance_inside_a_composite_is_no_interceptor_or_client_of_the_outside(
        tmp_path, reach):
    # `connect(..., via=<an interceptor inside the composite>)` put the composite's own
    # instance on an outer connection, and `external(<inside>)` let a client program drive
    # it; both are refused now, as a connection to an inner port that is not exported is
    from assay.errors import SpecError
    from assay.model.system import InstanceRef

    ns: dict = {}
    exec(compile(textwrap.dedent(INNER), str(tmp_path / "inner.py"), "exec"), ns)
    from assay import System

    s = System("top")
    cli = s.add("cli", ns["Cli"])
    sh = s.add("sh", ns["shard"])
    with pytest.raises(SpecError, match="is inside composite 'sh'"):
        if reach == "via":
            s.connect(cli.out, sh.client, via=InstanceRef(s, "sh.spy", ns["Spy"]))
        else:
            s.external(InstanceRef(s, "sh.srv", ns["Srv"]))


# --- check: a pool counts as the same system unrolled by hand ---------------------------------

def test_a_pool_explores_what_the_same_system_unrolled_by_hand_does():
    # (held) spawn, retire, a slot spawned again after its retire took effect: as many
    # states and transitions as the hand-written Wake/Sleep/Slept version of it
    from assay.api import check

    path = str(Path(__file__).parent / "fixtures" / "redcomp" / "pool_unrolled.py")
    pool, hand = check(path, "system"), check(path, "unrolled")
    assert pool.verdict == hand.verdict == "ok"
    assert (pool.states, pool.transitions) == (hand.states, hand.transitions)


NESTED = """
    from assay import Component, Message, Port, System, action, on

    class W(Message):
        v: int

    class Wrap(Message):
        inner: W

    class A(Component):
        out = Port()
        sent: bool = False

        @action(when=lambda self: not self.sent)
        def go(self):
            self.sent = True
            self.out.send(W(1))

    class B(Component):
        inp = Port(many=True)
        out = Port()

        @on(W)
        def w(self, m):
            self.out.send(Wrap(m))          # the delivered message, wrapped

    class C(Component):
        inp = Port()
        first: str = ""

        @on(Wrap)
        def wrap(self, m):
            if self.first == "":
                self.first = str(m.inner.sender)

    def system() -> System:
        s = System("nested")
        b, c = s.add("b", B), s.add("c", C)
        s.connect(b.out, c.inp)
        for n in ("a1", "a2"):
            s.connect(s.add(n, A).out, b.inp)

        @s.always
        def never_a2(g):
            return g["c"].first != "a2"

        s.terminal(lambda g: True)
        return s
"""


def test_a_delivered_message_sent_inside_another_carries_no_sender_to_the_next(tmp_path):
    # the same as a kept one, through the network: Wrap(W from a1) and Wrap(W from a2) are
    # one envelope, and `check` said "✓ exhaustive" where `simulate` finds c.first == "a2"
    from assay.api import check, simulate

    path = str(spec(tmp_path, "nested", NESTED))
    assert check(path).verdict == "ok"
    assert simulate(path, runs=20, seed=1).ok
    k = kernel_of(Path(path))
    assert {k.local_values(s, "c")["first"] for s in _states(k)} == {"", "None"}


COMPOSITE_STORE = """
    from assay import Component, Map, Message, Port, System, action, external_store, on

    class Put(Message):
        k: str
        v: int

    class Store(Component):
        inp = Port()
        data: Map[str, int] = external_store(Map())

        @on(Put)
        def put(self, m):
            self.data = self.data.set(m.k, m.v)

    class W(Component):
        out = Port()
        n: int = 0

        @action(when=lambda self: self.n < 2)
        def go(self):
            self.n += 1
            self.out.send(Put("x", self.n))

    def shard():
        s = System("shard")
        s.export("inp", s.add("store", Store).inp)
        return s

    def system() -> System:
        s = System("top")
        w = s.add("w", W)
        s.connect(w.out, s.add("sh", shard).inp)
        s.terminal(lambda g: True)
        return s
"""


def test_an_external_store_inside_a_composite_runs_and_agrees_with_the_model(tmp_path):
    # the store's instance is `sh.store` (a composite's name, which no spec can change):
    # `run --store-db` refused it ("cannot be a table name"); it is kept in its own table
    from assay.runtime.extstore import ExternalStores

    db = tmp_path / "cs.sqlite"
    k = kernel_of(spec(tmp_path, "cs", COMPOSITE_STORE))
    report, _ = run_local(k, duration=20, stores=SQLiteAdapter(db))
    assert not report.violations
    final = report.final["sh.store"]["data"]
    assert dict(final.items()) == {"x": 2}
    stores = ExternalStores(k, SQLiteAdapter(db), ["sh.store"])
    assert stores.compare({"sh.store": {"data": final}}) == []
    assert stores.compare({"sh.store": {"data": final.set("x", 1)}}) != []


# --- elastic pools: only the owner spawns and retires a slot, and only by spawn and retire -----

ROGUE = """
    from assay import Component, Peer, Port, System, action
    from assay.model.pool import Retired, Spawn

    class Boss(Component):
        workers = Port(many=True)
        live: frozenset[Peer] = frozenset()

    class Worker(Component):
        boss = Port()
        ctl = Port()
        n: int = 0
        lied: bool = False

        @action(when=lambda self: LIE and not self.lied)
        def lie(self):                   # "retired", while it stays live
            self.lied = True
            self.boss.send(Retired("w"))

    class Rogue(Component):
        out = Port()
        done: bool = False

        @action(when=lambda self: not LIE and not self.done)
        def go(self):
            self.done = True
            self.out.send(Spawn("w", (("n", "7"),)))

    def system() -> System:
        s = System("rogue")
        b = s.add("boss", Boss)
        ws = s.pool("w", Worker, size=1, owner=b.workers, port="boss", live="live", min=1)
        s.connect(s.add("rogue", Rogue).out, ws[0].ctl)
        s.terminal(lambda g: True)
        return s
"""


@pytest.mark.parametrize("lie", [False, True])
def test_pool_messages_sent_by_hand_are_a_violation_of_their_sender(tmp_path, lie):
    # a component wired to a slot's other port spawned it (live with the values it chose,
    # outside the owner's `live`); a live slot told its owner `Retired` (gone from `live`
    # while live): `check` said "✓ exhaustive" of both
    from assay.api import check

    src = ROGUE.replace("    from assay import", f"    LIE = {lie}\n    from assay import", 1)
    r = check(str(spec(tmp_path, "rogue", src)))
    assert r.verdict == "violation"
    assert r.violation.kind == "pool"
    assert r.violation.blame == ("w0.lie" if lie else "rogue.go")
    assert "self.spawn(...) and self.retire(...) only" in r.violation.message


def test_a_spawn_that_is_not_its_owners_is_refused_by_the_slot_too(tmp_path):
    # the slot's side of the same rule (a Spawn that did not come from `spawn`: a timer's,
    # say): a pool violation of whoever sent it, the slot unchanged
    from assay.kernel.events import Envelope
    from assay.model.pool import Spawn

    src = ROGUE.replace("    from assay import", "    LIE = False\n    from assay import", 1)
    k = kernel_of(spec(tmp_path, "rogue", src))
    lid = k.local_initial("w0")
    step = k.local_deliver(lid, Envelope("rogue", "out", "w0", "ctl", Spawn("w", ())))
    assert step.local == lid and [v.kind for v in step.violations] == ["pool"]
    assert "only its owner boss spawns and retires" in step.violations[0].message


POOL_STORE = """
    from assay import Component, Map, Message, Peer, Port, System, action, external_store, on

    class Job(Message):
        n: int

    class Boss(Component):
        workers = Port(many=True)
        live: frozenset[Peer] = frozenset()
        phase: int = 0
        retires: bool = True

        @action(when=lambda self: self.phase == 0)
        def grow(self):
            self.phase = 1
            self.workers.send(Job(1), to=self.spawn("w"))

        @action(when=lambda self: self.phase == 1 and self.live and self.retires)
        def shrink(self):
            self.phase = 2
            self.retire(min(self.live))

    class Worker(Component):
        boss = Port()
        data: Map[int, int] = external_store(Map())

        @on(Job)
        def job(self, m):
            self.data = self.data.set(m.n, 10 * m.n)

    def system(retires: bool = True) -> System:
        s = System("pool_store", network="fifo")
        b = s.add("boss", Boss, retires=retires)
        s.pool("w", Worker, size=1, owner=b.workers, port="boss", live="live")
        s.terminal(lambda g: True)
        return s
"""


@pytest.mark.parametrize("retires", ["False", "True"])
def test_an_external_store_of_a_pools_slot_is_empty_while_the_slot_is_dormant(tmp_path,
                                                                              retires):
    # a dormant slot's fields are None in the model: `run --store-db` ended in an internal
    # error (AttributeError) before the first step.  Its table is empty while the slot is
    # dormant, holds what the model's map holds while it is live, and is emptied by retire
    db = tmp_path / "ps.sqlite"
    report, _ = run_local(kernel_of(spec(tmp_path, "ps", POOL_STORE), retires=retires),
                          duration=20, stores=SQLiteAdapter(db))
    assert not report.violations
    held = dict(sqlite3.connect(db).execute('SELECT k, v FROM "store_w0_data"').fetchall())
    final = report.final["w0"]["data"]
    if retires == "True":
        assert final is None and held == {}
    else:
        assert dict(final.items()) == {1: 10} and held == {"1": "10"}


# --- run --deploy: a chain's in-process hops stay in one process ------------------------------

@pytest.mark.parametrize("split", [False, True])
def test_a_deployment_that_splits_an_endpoint_from_its_interceptor_is_refused(tmp_path, split):
    # exactly_once_link's chain [retry, dedup]: producer -> retry and dedup -> consumer are
    # in-process in the model (never lost or duplicated under --faults), so `check` proves
    # exactly-once with them reliable; a deployment that put retry on the consumer's node
    # ran, its "in-process" hops over TCP
    from assay.runtime.deploy import load_deployment, placed

    root = Path(__file__).resolve().parent.parent
    a, b = (["producer", "dedup"], ["consumer", "retry"]) if split else \
        (["producer", "retry"], ["consumer", "dedup"])
    toml = tmp_path / "deploy.toml"
    toml.write_text(f'spec = "{root / "specs" / "exactly_once_link.py"}"\n'
                    'secret = "a-shared-secret-for-tests-only"\n'
                    f'[nodes.n1]\nhost = "127.0.0.1"\nport = 47001\ninstances = {a!r}\n'
                    f'[nodes.n2]\nhost = "127.0.0.1"\nport = 47002\ninstances = {b!r}\n'
                    .replace("'", '"'))
    dep = load_deployment(toml)
    system, _, _ = build(root / "specs" / "exactly_once_link.py", None, {})
    if split:
        with pytest.raises(UsageError, match="'producer' \\(on 'n1'\\) and 'retry' \\(on 'n2'\\)"):
            placed(dep, system)
    else:
        assert placed(dep, system).placement["retry"] == "n1"


# --- external store: a DB-API connection that fails in the middle of a step's commit ---------

class _Flaky:
    """A DB-API connection over SQLite whose 4th store INSERT fails (the connection lost, so
    that rollback fails too when `dead_rollback`)."""

    Error = sqlite3.Error

    def __init__(self, path: Path, dead_rollback: bool) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.inserts, self.dead, self.dead_rollback = 0, False, dead_rollback

    def cursor(self):
        flaky, cur = self, self.conn.cursor()

        class Cursor:
            def execute(self, sql, args=()):
                if sql.startswith('INSERT INTO "store'):
                    flaky.inserts += 1
                    if flaky.inserts == 4:
                        flaky.dead = True
                        raise sqlite3.OperationalError("connection lost (injected)")
                return cur.execute(sql, args)

            def __getattr__(self, name):
                return getattr(cur, name)
        return Cursor()

    def commit(self):
        self.conn.commit()

    def rollback(self):
        if self.dead and self.dead_rollback:
            raise sqlite3.OperationalError("connection lost (rollback)")
        self.conn.rollback()

    def close(self):
        self.conn.close()


@pytest.mark.parametrize("dead_rollback", [False, True])
def test_a_dbapi_error_in_the_middle_of_a_commit_stops_the_run_with_a_state_error(
        tmp_path, dead_rollback):
    # the step's transaction is rolled back (the database keeps the steps before it); when
    # the rollback fails as well, the driver's own exception escaped (an internal error at
    # the command line) and hid the first: now a StateError that says both
    from assay.errors import StateError
    from assay.runtime.extstore import DbApiAdapter

    db = tmp_path / "ledger.sqlite"
    ledger = Path(__file__).resolve().parent / "fixtures" / "extstore" / "ledger.py"
    with pytest.raises(StateError) as e:
        run_local(kernel_of(ledger, limit="6"), duration=20,
                  stores=DbApiAdapter(_Flaky(db, dead_rollback), where=str(db)))
    assert "connection lost (injected)" in str(e.value)
    assert ("nor roll back: connection lost (rollback)" in str(e.value)) == dead_rollback
    if not dead_rollback:                    # the three steps before, and nothing of the 4th
        rows = dict(sqlite3.connect(db).execute("SELECT k, v FROM store_ledger_totals"))
        assert rows == {'"a"': "1", '"b"': "1", '"c"': "1"}


CLEARED = """
    from assay import Component, Message, Peer, Port, System, action, on

    class Job(Message):
        n: int

    class Boss(Component):
        workers = Port(many=True)
        live: frozenset[Peer] = frozenset()
        spawned: int = 0

        @action(when=lambda self: self.spawned < 2)
        def grow(self):
            self.spawned += 1
            w = self.spawn("w", n=self.spawned)
            self.workers.send(Job(self.spawned), to=w)
            self.live = frozenset()          # "forget" it: the pool looks empty again

    class Worker(Component):
        boss = Port()
        n: int = 0
        got: tuple[int, ...] = ()

        @on(Job)
        def job(self, m):
            self.got = self.got + (m.n,)

    def system() -> System:
        s = System("cleared", network="fifo")
        b = s.add("boss", Boss)
        s.pool("w", Worker, size=1, owner=b.workers, port="boss", live="live")
        s.terminal(lambda g: True)
        return s
"""


def test_an_owner_that_sets_its_live_field_by_hand_is_a_pool_violation(tmp_path):
    # with `live` emptied, the second spawn took the live slot again: its Spawn waited
    # forever (the FIFO link behind it, Job(2) too) and `check` said "✓ exhaustive"
    from assay.api import check

    r = check(str(spec(tmp_path, "cleared", CLEARED)))
    assert r.verdict == "violation"
    assert r.violation.kind == "pool" and r.violation.blame == "boss.grow"
    assert "boss.live" in r.violation.message
