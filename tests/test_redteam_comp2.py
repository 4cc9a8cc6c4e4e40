"""Red team of composites, pools and stores, round 2: what round 1 (`test_redteam_comp.py`)
left.  Each test failed before its fix; every engine runs for real (the kernel, SQLite)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assay import Component, Port
from assay.kernel import Kernel
from assay.model.load import build
from assay.runtime.local import run_local


def spec(tmp_path: Path, name: str, src: str) -> Path:
    p = tmp_path / f"{name}.py"
    p.write_text(textwrap.dedent(src))
    return p


def kernel_of(path: Path, **params: str) -> Kernel:
    system, _, _ = build(path, None, params)
    return Kernel(system)


# --- pools: a Spawn the owner sends by hand, under another class of the same name -----------

OWNER_FORGES = """
    from assay import Component, Message, Peer, Port, System, action
    from assay.model import pool

    if SUBCLASS:
        class Spawn(pool.Spawn):
            pass
    else:
        class Spawn(Message):        # the pool's name and fields: on the wire, the pool's Spawn
            pool: str
            init: tuple[tuple[str, str], ...]

    class Boss(Component):
        workers = Port(many=True)
        live: frozenset[Peer] = frozenset()
        done: bool = False

        @action(when=lambda self: not self.done)
        def forge(self):
            self.done = True
            self.workers.send(Spawn("w", (("n", "7"),)), to=Peer("w0"))

    class Worker(Component):
        boss = Port()
        n: int = 0

    def system() -> System:
        s = System("forge")
        b = s.add("boss", Boss)
        s.pool("w", Worker, size=1, owner=b.workers, port="boss", live="live")
        s.terminal(lambda g: True)
        return s
"""


@pytest.mark.parametrize("subclass", [False, True])
def test_an_owner_that_sends_a_spawn_of_its_own_class_is_a_pool_violation(tmp_path, subclass):
    # the sending check compared the class with the pool's: a class of the same name (which
    # the wire decodes at the slot as the pool's Spawn: spawned outside the owner's `live`)
    # or a subclass went through, and `check` said "✓" (the slot kept it waiting)
    from assay.api import check, simulate

    src = OWNER_FORGES.replace("    from assay import",
                               f"    SUBCLASS = {subclass}\n    from assay import", 1)
    path = spec(tmp_path, "forge", src)
    r = check(str(path))
    assert r.verdict == "violation" and r.violation.kind == "pool"
    assert r.violation.blame == "boss.forge"
    assert "self.spawn(...) and self.retire(...) only" in r.violation.message
    camp = simulate(str(path), runs=5, seed=1)
    assert not camp.ok
    v = camp.failures[0].violation
    assert v is not None and (v["kind"], v["blame"]) == ("pool", "boss.forge")
    report, _ = run_local(kernel_of(path), duration=1)      # the step refused, tried again
    assert {(v.kind, v.blame) for _, v in report.violations} == {("pool", "boss.forge")}


# --- symmetric/fair: an instance inside a composite is not named from outside ----------------

class Worker(Component):
    p = Port()
    n: int = 0


def test_symmetric_refuses_instances_inside_a_composite_named_from_outside():
    # `s.symmetric("a.w", "b.w")` was accepted: outside code interchanged instances it
    # reaches only through exported ports
    from assay import System
    from assay.errors import SpecError

    def part() -> System:
        s = System("part")
        s.add("w", Worker)
        return s

    s = System("t")
    s.add("a", part)
    s.add("b", part)
    with pytest.raises(SpecError, match="instance 'a.w' is inside composite 'a'") as e:
        s.symmetric("a.w", "b.w")
    assert "in a's system function" in str(e.value)
    assert not s.symmetries


def test_refs_of_a_composites_own_system_do_not_name_the_outers_instances():
    # the composite's handles, kept by its function, named the outer system's instances of
    # the same name: `fair` and `symmetric` applied to instances they were not about
    from assay import System
    from assay.errors import SpecError

    kept = []

    def part() -> System:
        s = System("part")
        kept.extend(s.add(n, Worker) for n in ("w", "v"))
        return s

    s = System("t")
    s.add("a", part)
    s.add("w", Worker)
    s.add("v", Worker)
    with pytest.raises(SpecError, match="fair\\(\\) needs instances of this system"):
        s.fair("strong", kept[0])
    with pytest.raises(SpecError, match="symmetric\\(\\) needs instances of this system"):
        s.symmetric(*kept)
    assert not s.fair_rules and not s.symmetries


def test_fair_refuses_an_inner_instance_and_a_whole_composite_covers_what_it_leaves():
    # what is allowed from outside: the whole composite, for those of its instances its own
    # system function left without fairness (the composite's own word holds)
    from assay import System
    from assay.errors import SpecError
    from assay.model.system import InstanceRef

    def part() -> System:
        s = System("part")
        s.fair("strong", s.add("x", Worker))
        s.add("y", Worker)
        return s

    s = System("t")
    a = s.add("a", part)
    with pytest.raises(SpecError, match="instance 'a.y' is inside composite 'a'") as e:
        s.fair("weak", InstanceRef(s, "a.y", Worker))
    assert "s.fair('weak', a) covers" in str(e.value)
    s.fair("weak", a)
    k = Kernel(s)
    fair = {i.name: k._instance_fairness(i.index) for i in k.instances}
    assert fair == {"a.x": "strong", "a.y": "weak"}


# --- the store: the note on a refused statement only where it explains it --------------------

def test_the_store_tables_note_is_shown_for_a_table_of_another_shape_only(tmp_path):
    # "a store table is (k TEXT…)" came with every refused statement: with a write to a
    # read-only database (an I/O error, not a table of another shape), it misled
    import sqlite3

    from assay.errors import StateError
    from assay.runtime.extstore import SQLiteAdapter

    db = tmp_path / "s.sqlite"
    w = SQLiteAdapter(db)
    w.ensure(["store_a"])
    w.close()
    ro = SQLiteAdapter(db, readonly=True)
    with pytest.raises(StateError, match="attempt to write a readonly database") as e:
        ro.ensure(["store_b"])
    ro.close()
    assert not any("a store table is" in n for n in e.value.notes)
    odd = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(odd)
    conn.execute("CREATE TABLE store_a (x INTEGER)")
    conn.commit()
    conn.close()
    a = SQLiteAdapter(odd)
    with pytest.raises(StateError, match="no such column: k") as e:
        a.read("store_a")
    a.close()
    assert any("a store table is (k TEXT PRIMARY KEY, v TEXT)" in n for n in e.value.notes)
