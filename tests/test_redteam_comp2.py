"""Red team of composites, pools and stores, round 2: what round 1 (`test_redteam_comp.py`)
left.  Each test failed before its fix; every engine runs for real (the kernel, SQLite)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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
