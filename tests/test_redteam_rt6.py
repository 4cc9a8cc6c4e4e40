"""Runtime red team, sixth round: what a node keeps of the frame numbers a peer's life sent it
(`storelog.Handled`: a floor and ranges above it) stays bounded whatever the numbering, and
the runtime log escapes tracebacks too.

As in tests/test_redteam_rt4.py (whose harness this reuses), node a is a real `TcpNode` in
this process on 127.0.0.1, the test playing node c over the authenticated wire; stores are
real SQLite files.  Each fix's test fails before it.
"""
from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_redteam_rt4 import ON_A, closed_by_a, count, node_a, run, until

from assay.runtime.store import FORMAT, Store, row_crc
from assay.runtime.storelog import Handled

KEY = ("c", "life-1")


def _rows(db: Path) -> list[tuple[object, ...]]:
    """The rows of handled numbers in a store: (table, floor or lo, hi)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [("floor", s, s) for (s,) in conn.execute("SELECT seq FROM handled")] + [
            ("range", lo, hi) for lo, hi in conn.execute("SELECT lo, hi FROM handled_ranges")]
    finally:
        conn.close()


# --- a sparse numbering -----------------------------------------------------------------------


def test_a_sparse_numbering_is_refused_at_the_bound_and_its_gaps_filled_take_it_after(
        tmp_path, caplog):
    # found wrong (redrt5, left open): node c numbering its frames 2, 4, 6, ... never let
    # the set above the floor shrink: 3,000 frames, 3,000 numbers kept, in memory and one
    # row each in the store (200,000 frames: 200,000).  Now the numbers are kept as ranges,
    # at most `MAX_RANGES` of them per life: a frame that would open one more is refused
    # (its connection closed, logged once), not taken and not lost — once the odd numbers
    # come (an honest sender resends its lowest first) the gaps fill, and it is taken
    most = Handled.MAX_RANGES
    sent = 3 * most
    state = tmp_path / "state"

    async def main() -> None:
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:    # type: ignore[arg-type]
            logging.getLogger("assay.runtime").setLevel(logging.WARNING)
            refused = 0
            for first in range(0, sent, 256):
                c = await a.login("c")
                c.write(*[count(2 * (n + 1)) for n in range(first, min(first + 256, sent))])
                await c.drain()
                if first >= most:
                    assert await closed_by_a(c)
                    refused += 1
                else:
                    await until(lambda f=first: a.got("on_c") == min(f + 256, most),
                                "the even numbers below the bound handled")
                    c.close()
            assert refused >= 2
            await until(lambda: a.got("on_c") == most, "the frames below the bound handled")
            await until(lambda: len(a.node.handled[KEY]) == most, "their steps durable")
            assert len(a.node.seen[KEY]) == most
            await asyncio.sleep(0.2)
            assert a.got("on_c") == most
            # the odd numbers, in order (as an honest sender resends): each meets a number
            # kept, so none is refused, and the ranges merge into the floor
            c = await a.login("c")
            c.write(*[count(2 * n + 1) for n in range(most + 1)])
            await c.drain()
            await until(lambda: a.got("on_c") == 2 * most + 1, "the odd numbers handled")
            await until(lambda: a.node.handled[KEY] == Handled(2 * most + 1), "durable")
            # the even numbers refused before, sent again with the odd ones between them:
            # taken now, in order
            c.write(*[count(s) for s in range(2 * most + 2, 2 * sent + 1)])
            await c.drain()
            await until(lambda: a.got("on_c") == 2 * sent, "every frame handled once")
            await until(lambda: a.node.handled[KEY] == Handled(2 * sent), "their steps durable")
            assert not await closed_by_a(c, 0.2)
            logging.getLogger("assay.runtime").setLevel(logging.ERROR)

    with caplog.at_level(logging.WARNING, logger="assay.runtime"):
        run(main)
    said = [r.getMessage() for r in caplog.records if "gaps" in r.getMessage()]
    assert len(said) == 1, said               # said once, not once per refused connection
    assert "node c left 1024 gaps between the frame numbers of its life life-1" in said[0]
    assert _rows(state / "a.sqlite") == [("floor", 2 * sent, 2 * sent)]


def test_a_sparse_flood_keeps_the_store_bounded(tmp_path):
    # the store side of the flood: a's rows of c's life stay at most MAX_RANGES + 1, not a
    # row per number (the ranges are persisted as ranges; before: 4,096 rows)
    state = tmp_path / "state"
    most = Handled.MAX_RANGES

    async def main() -> None:
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:    # type: ignore[arg-type]
            for first in range(0, 4 * most, 512):
                c = await a.login("c")
                c.write(*[count(3 * (n + 1)) for n in range(first, first + 512)])
                await c.drain()
                await closed_by_a(c, 0.3 if first < most else 5)
            await until(lambda: a.got("on_c") == most, "the frames below the bound handled")

    run(main)
    rows = _rows(state / "a.sqlite")
    assert len(rows) == most, len(rows)
    # and refused, the rest were not taken: every range a single number
    assert all(lo == hi for _, lo, hi in rows)


# --- honest numberings stay few ranges ----------------------------------------------------------


def test_an_honest_jump_and_numbers_from_10_18_with_small_reorders_keep_one_range(tmp_path):
    # a receiver restarted without a store sees a sender's numbers go on far above its floor
    # of 0 (here from 10**18, as rt4's test): one range whatever their count — far more
    # frames than the bound on ranges, each handled (a plain cap on numbers refused them)
    big = 10**18
    n = 3 * Handled.MAX_RANGES

    async def main() -> None:
        async with node_a(tmp_path, **ON_A) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            order = list(range(big + 1, big + n + 1))
            for i in range(0, n - 1, 7):              # small reorders: pairs swapped
                order[i], order[i + 1] = order[i + 1], order[i]
            for first in range(0, n, 500):
                c.write(*[count(s) for s in order[first:first + 500]])
                await c.drain()
            await until(lambda: a.got("on_c") == n, "every frame handled")
            assert a.node.seen[KEY].ranges == [(big + 1, big + n)]
            await until(lambda: a.node.handled[KEY].ranges == [(big + 1, big + n)], "durable")
            assert not await closed_by_a(c, 0.2)

    run(main)


def test_a_duplicate_is_known_after_a_merge_and_after_a_restart_from_the_state_dir(tmp_path):
    state = tmp_path / "state"

    async def main() -> None:
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:    # type: ignore[arg-type]
            c = await a.login("c")
            c.write(count(1), count(3), count(5), count(9), count(10))
            await c.drain()
            await until(lambda: a.got("on_c") == 5, "five Counts handled")
            c.write(count(4), count(2))               # 1..5 merge into the floor
            await c.drain()
            await until(lambda: a.got("on_c") == 7, "seven Counts handled")
            c.write(*[count(s) for s in (1, 2, 3, 4, 5, 9, 10)])     # all resent
            await c.drain()
            await asyncio.sleep(0.3)
            assert a.got("on_c") == 7
            await until(lambda: a.node.handled[KEY] == Handled(5, [(9, 10)]), "durable")
        assert _rows(state / "a.sqlite") == [("floor", 5, 5), ("range", 9, 10)]
        async with node_a(tmp_path, **ON_A, state_dir=state) as a:    # type: ignore[arg-type]
            # (the sink's count is not persistent: it starts at 0; the numbers handled are)
            assert a.node.handled[KEY] == Handled(5, [(9, 10)])
            c = await a.login("c")
            c.write(*[count(s) for s in (1, 3, 5, 9, 10, 7, 10)])     # only 7 is new
            await c.drain()
            await until(lambda: a.got("on_c") == 1, "the new Count handled")
            await asyncio.sleep(0.3)
            assert a.got("on_c") == 1

    run(main)


# --- Handled against a plain set ---------------------------------------------------------------

_nums = st.integers(1, 60)
_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), _nums),
    st.tuples(st.just("range"), _nums, st.integers(0, 12)),
    st.tuples(st.just("update"), st.lists(_nums, max_size=8))), max_size=40)


def _check(h: Handled, model: set[int]) -> None:
    assert {n for n in range(0, 80) if n in h} == model | {0}
    assert h.floor == next(n for n in range(0, 80) if n + 1 not in model)
    ranges = h.ranges
    assert all(lo <= hi for lo, hi in ranges)
    assert all(a[1] + 1 < b[0] for a, b in zip(ranges, ranges[1:]))    # apart, sorted
    assert all(lo > h.floor + 1 for lo, _ in ranges)
    for n in range(1, 80):           # `opens`: a new range, exactly when no neighbour is in
        assert h.opens(n) == (n not in model and n - 1 not in model | {0}
                              and n + 1 not in model)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_handled_is_the_set_of_what_was_added_and_its_store_round_trip_too(ops):
    h, model = Handled(), set()
    for op in ops:
        if op[0] == "add":
            h.add(op[1])
            model.add(op[1])
        elif op[0] == "range":
            h.add_range(op[1], op[1] + op[2] - 1)
            model |= set(range(op[1], op[1] + op[2]))
        else:
            other = Handled()
            for n in op[1]:
                other.add(n)
            copy, before = h.copy(), set(model)
            h.update(other)
            model |= set(op[1])
            _check(copy, before)                             # the copy is its own
        _check(h, model)
    with tempfile.TemporaryDirectory() as d:
        # both ways a store saves numbers: a transaction each (`machine`), and the log
        # folded into the file (`process`); read back from the file
        for log in (False, True):
            path = Path(d) / f"{log}.sqlite"
            s = Store(path, log=log)
            for n in sorted(model, key=lambda n: (n * 7919) % 61):
                s.save_handled("c", "e", n)
            s.close()
            s = Store(path)
            assert s.handled().get(("c", "e"), Handled()) == h
            s.close()


def test_a_format_2_store_opens_with_its_numbers_as_ranges(tmp_path):
    # format 2 kept a row per number above the floor: its store is brought to format 3 in
    # place, the numbers as ranges, each old row's checksum checked first
    path = tmp_path / "a.sqlite"
    Store(path, system="s", node="a").close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TABLE handled_ranges")
        conn.execute("CREATE TABLE handled_above (peer TEXT NOT NULL, epoch TEXT NOT NULL, "
                     "seq INTEGER NOT NULL, crc INTEGER, PRIMARY KEY (peer, epoch, seq))")
        conn.execute("INSERT INTO handled VALUES ('c', 'e', 3, ?)",
                     (row_crc("handled", "c", "e", 3),))
        conn.executemany("INSERT INTO handled_above VALUES ('c', 'e', ?, ?)",
                         [(s, row_crc("handled_above", "c", "e", s)) for s in (5, 6, 7, 10)])
        conn.execute("UPDATE meta SET value = 2, crc = ? WHERE key = 'format'",
                     (row_crc("meta", "format", 2),))
    finally:
        conn.close()
    with Store(path, system="s", node="a") as s:
        assert s.handled() == {("c", "e"): Handled(3, [(5, 7), (10, 10)])}
        s.save_handled("c", "e", 4)
        assert s.handled() == {("c", "e"): Handled(7, [(10, 10)])}
    assert _rows(path) == [("floor", 7, 7), ("range", 10, 10)]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchall() == [
            (FORMAT,)]
    finally:
        conn.close()


# --- tracebacks in the runtime log -------------------------------------------------------------

FORGED = "bad frame\n2026-01-01 00:00:00 assay.runtime ERROR forged\x1b[2J"


def test_a_traceback_in_the_runtime_log_is_escaped(tmp_path):
    # found wrong: the runtime's log filter escaped a line's message, not its traceback
    # (`exc_info`): an exception whose message quotes a peer's frame (a bug in handling
    # one is logged with it) wrote a forged line and a terminal's escape into the log.  Now
    # each line of the traceback is escaped, and the exception's message stays on its line
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("assay.runtime")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(FORGED)
        except ValueError as e:
            logger.error("a: handling a frame from c failed", exc_info=e)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith('  File "') and "test_redteam_rt6.py" in lines[2]
    assert lines[-1] == ("ValueError: bad frame\\n2026-01-01 00:00:00 assay.runtime ERROR "
                         "forged\\x1b[2J")
    assert not any(line.startswith("2026-01-01") for line in lines)
