"""The append-only log of a store with `--durability process` (storelog.py): the same state as
the SQLite transactions it replaces, exact after kill -9 (mid-record, mid-checkpoint), a torn
last record dropped with a warning, any other damage refused at the file."""
from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from assay.errors import StateError
from assay.runtime import storelog
from assay.runtime.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent


def frame(link_epoch: str, seq: int, n: int) -> dict[str, Any]:
    return {"t": "msg", "seq": seq, "epoch": link_epoch, "clock": n,
            "message": {"type": "Ping", "fields": {"n": n}}}


def random_ops(seed: int, n: int = 400) -> list[tuple[str, tuple[Any, ...]]]:
    """Writes as a node makes them: steps (fields, frames sent, a frame handled — out of
    order too —, an own frame consumed, clocks), drops, acknowledgements, forgotten lives."""
    rng = random.Random(seed)
    ops: list[tuple[str, tuple[Any, ...]]] = []
    sent: list[tuple[str, str, int]] = []
    seqs = {"b": 0, "a": 0}
    clock = 0
    for _ in range(n):
        r = rng.random()
        if r < 0.7:
            steps = []
            for _ in range(rng.choice((1, 1, 2, 3))):
                clock += 1
                frames = []
                for _ in range(rng.choice((0, 1, 1, 2))):
                    link = rng.choice(("b", "a"))
                    seqs[link] += 1
                    frames.append((link, "e0", seqs[link], frame("e0", seqs[link], clock)))
                    sent.append((link, "e0", seqs[link]))
                handled = (rng.choice(("b", "c")), rng.choice(("x1", "x2")),
                           rng.randint(1, 30)) if rng.random() < .6 else None
                consumed = None
                own = [k for k in sent if k[0] == "a"]
                if own and rng.random() < .3:
                    consumed = rng.choice(own)
                fields = {"n": clock, "s": ["A", "B"][: clock % 3]} \
                    if rng.random() < .8 else None
                steps.append((rng.choice(("p", "q")), fields, frames, handled,
                              clock if rng.random() < .9 else None, consumed))
            acked = rng.sample(sent, min(len(sent), rng.choice((0, 0, 1, 3))))
            ops.append(("save_steps", (steps, acked)))
        elif r < 0.8:
            ops.append(("save_handled", (rng.choice(("b", "c")), "x1", rng.randint(1, 40))))
        elif r < 0.9 and sent:
            ops.append(("acked_many", (rng.sample(sent, min(len(sent), 4)),)))
        elif r < 0.95:
            ops.append(("forget", (rng.choice(("b", "c")), [rng.choice(("x1", "x2"))])))
        else:
            ops.append(("save", ("r", {"v": rng.randint(0, 9)})))
    return ops


def state(s: Store) -> dict[str, Any]:
    return {"fields": {i: s.load(i) for i in s.instances()}, "outbox": s.outbox(),
            "handled": {k: (h.floor, sorted(h.above)) for k, h in s.handled().items()},
            "clock": s.clock()}


def apply(s: Store, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
    for name, args in ops:
        getattr(s, name)(*args)


def killed(s: Store) -> None:
    """What a kill -9 leaves: the files as they are, nothing folded (the process's own file
    descriptors closed, as the kernel closes them)."""
    s._close_files()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_log_gives_the_state_the_transactions_give(tmp_path, seed):
    ops = random_ops(seed)
    with Store(tmp_path / "sql.sqlite") as plain:
        apply(plain, ops)
        want = state(plain)
    assert want["outbox"] and want["handled"] and want["clock"] > 100      # (a real test)
    # closed cleanly (folded at close), killed (taken in at the next open), and with
    # checkpoints on the way (folded every few records)
    for how in ("closed", "killed", "checkpoints"):
        path = tmp_path / f"{how}.sqlite"
        s = Store(path, "NORMAL", log=True)
        assert s.fast
        if how == "checkpoints":
            s.checkpoint_bytes = 2000
        apply(s, ops)
        if how == "killed":
            assert os.path.getsize(str(path) + "-log") > 10_000
            killed(s)
        else:
            s.close()
            assert os.path.getsize(str(path) + "-log") == len(storelog.HEADER)
        with Store(path, "NORMAL", log=True) as again:
            assert state(again) == want, how


def test_a_checkpoint_taken_in_twice_is_the_same_state(tmp_path):
    # a kill between a checkpoint's commit and the log's truncation: the records are applied
    # again when the store opens, to the same result
    ops = random_ops(4)
    path = tmp_path / "a.sqlite"
    s = Store(path, "NORMAL", log=True)
    apply(s, ops)
    delta = s._delta
    s._transaction(lambda conn: s._fold(conn, delta))       # committed, log not truncated
    killed(s)
    with Store(tmp_path / "sql.sqlite") as plain:
        apply(plain, ops)
        want = state(plain)
    with Store(path, "NORMAL", log=True) as again:
        assert state(again) == want


def test_machine_durability_takes_a_left_log_in_and_removes_it(tmp_path):
    ops = random_ops(5, 100)
    path = tmp_path / "a.sqlite"
    s = open_store(tmp_path, "a", "process")
    apply(s, ops)
    killed(s)
    with Store(tmp_path / "sql.sqlite") as plain:
        apply(plain, ops)
        want = state(plain)
    with open_store(tmp_path, "a", "machine") as m:
        assert not m.fast
        assert not os.path.exists(str(path) + "-log")
        assert state(m) == want


def logged(tmp_path: Path, steps: int = 5) -> Path:
    """A store killed after `steps` steps (clock 1..steps, fields {"n": clock}); its path."""
    path = tmp_path / "a.sqlite"
    s = Store(path, "NORMAL", log=True)
    for n in range(1, steps + 1):
        s.save_step("p", {"n": n}, [], clock=n)
    killed(s)
    return path


def test_a_record_cut_short_at_the_end_is_dropped_with_a_warning(tmp_path, caplog):
    path = logged(tmp_path)
    log = str(path) + "-log"
    with open(log, "r+b") as f:                # inside the last record's payload
        f.truncate(os.path.getsize(log) - 3)
    with caplog.at_level(logging.WARNING, "assay.runtime"), \
            Store(path, "NORMAL", log=True) as s:
        assert s.clock() == 4 and s.load("p") == {"n": 4}     # the first 4, exactly
        s.save_step("p", {"n": 5}, [], clock=5)              # and it goes on
    assert "cut short" in caplog.text and "a.sqlite-log" in caplog.text
    with Store(path, "NORMAL", log=True) as s:
        assert s.clock() == 5 and s.load("p") == {"n": 5}


def test_a_header_cut_short_at_the_end_is_dropped(tmp_path, caplog):
    path = logged(tmp_path, 3)
    log = str(path) + "-log"
    with open(log, "ab") as f:
        f.write(bytes([storelog.MARK, 0, 0]))               # a record's first 3 bytes
    with caplog.at_level(logging.WARNING, "assay.runtime"), \
            Store(path, "NORMAL", log=True) as s:
        assert s.clock() == 3
    assert "cut short" in caplog.text


def test_a_tail_of_zero_bytes_is_dropped(tmp_path, caplog):
    path = logged(tmp_path, 3)
    with open(str(path) + "-log", "ab") as f:
        f.write(bytes(4096))                                 # a power cut's unwritten page
    with caplog.at_level(logging.WARNING, "assay.runtime"), \
            Store(path, "NORMAL", log=True) as s:
        assert s.clock() == 3 and s.load("p") == {"n": 3}
    assert "zero bytes" in caplog.text


def flip(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x20]))


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_record_altered_on_disk_is_refused_never_skipped(tmp_path, where):
    path = logged(tmp_path, 5)
    log = Path(str(path) + "-log")
    size = log.stat().st_size
    flip(log, len(storelog.HEADER) + 12 if where == "first" else size - 3)
    with pytest.raises(StateError, match="checksum does not match") as e:
        Store(path, "NORMAL", log=True)
    assert "a.sqlite-log" in str(e.value) and "--fresh" in str(e.value)
    # and nothing was taken in, nor the log emptied: the store is as it was
    with pytest.raises(StateError):
        Store(path)


def test_damage_followed_by_records_is_refused(tmp_path):
    path = logged(tmp_path, 5)
    log = Path(str(path) + "-log")
    data = log.read_bytes()
    # the second record's mark overwritten: damage in the middle, not a torn end
    first = storelog._HEAD.unpack_from(data, len(storelog.HEADER))[1]
    at = len(storelog.HEADER) + storelog._HEAD.size + first
    log.write_bytes(data[:at] + b"\x00" + data[at + 1:])
    with pytest.raises(StateError, match=f"record at byte {at} does not begin as a record"):
        Store(path, "NORMAL", log=True)


def test_a_record_that_is_not_what_assay_writes_is_refused(tmp_path):
    path = logged(tmp_path, 2)
    with open(str(path) + "-log", "ab") as f:                # a well-framed wrong record
        f.write(storelog.encode(["h", "b", "e", 0]))        # (frame numbers start at 1)
    with pytest.raises(StateError, match="not a record as assay writes it"):
        Store(path, "NORMAL", log=True)


def test_a_log_without_its_header_is_refused(tmp_path):
    path = logged(tmp_path, 2)
    flip(Path(str(path) + "-log"), 0)
    with pytest.raises(StateError, match="header"):
        Store(path, "NORMAL", log=True)


def test_a_log_without_its_store_is_refused(tmp_path):
    path = logged(tmp_path, 2)
    os.remove(path)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.remove(str(path) + suffix)
    with pytest.raises(StateError, match="its log of steps is there"):
        Store(path, "NORMAL", log=True)


def test_a_store_in_use_is_refused_to_a_second_opener(tmp_path):
    with open_store(tmp_path, "a", "process") as s:
        s.save_step("p", {"n": 1}, [], clock=1)
        for durability in ("process", "machine"):
            with pytest.raises(StateError, match="in use by another process"):
                open_store(tmp_path, "a", durability)
        s.save_step("p", {"n": 2}, [], clock=2)              # the owner goes on
    with open_store(tmp_path, "a", "process") as s:
        assert s.load("p") == {"n": 2}


def test_fresh_moves_the_log_aside_with_the_store(tmp_path):
    s = open_store(tmp_path, "a", "process")
    s.save_step("p", {"n": 1}, [], clock=1)
    killed(s)
    with open_store(tmp_path, "a", "process", fresh=True) as s:
        assert s.clock() == 0 and s.load("p") is None
    aside = sorted(p.name for p in tmp_path.iterdir() if ".old-" in p.name)
    assert any(n.endswith("-log") for n in aside) and any(n.endswith(".sqlite") or
                                                          ".sqlite.old-" in n for n in aside)


CHILD = textwrap.dedent("""
    import sys
    from assay.runtime.store import open_store
    s = open_store(sys.argv[1], "a", "process")
    s.checkpoint_bytes = 20_000          # checkpoints under way when the kill comes, too
    i = 0
    while True:
        i += 1
        s.save_steps([("p", {"n": i, "pad": "x" * 200},
                       [("b", "e", i, {"t": "msg", "seq": i, "epoch": "e"})],
                       ("b", "f", i), i, None)], [("b", "e", i - 1)] if i > 1 else [])
        print(i, flush=True)             # printed only once the write returned
""")


@pytest.mark.parametrize("after", [40, 700])
def test_every_step_written_survives_kill_9_exactly(tmp_path, after):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 20
        last = 0
        while last < after and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            last = int(line)
        assert last >= after, child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        reported = max([last] + [int(x) for x in child.stdout.read().split()])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for f in (child.stdout, child.stderr):
            if f is not None:
                f.close()
    with open_store(tmp_path, "a", "process") as s:
        n = s.clock()
        # at least every step reported; exactly one state (that of step n), whole
        assert n >= reported
        assert s.load("p") == {"n": n, "pad": "x" * 200}
        assert [r[:3] for r in s.outbox()] == [("b", "e", n)]
        assert {k: (h.floor, h.above) for k, h in s.handled().items()} == {
            ("b", "f"): (n, set())}


def test_a_checkpoint_that_fails_keeps_its_records_for_the_next(tmp_path):
    import sqlite3

    path = tmp_path / "a.sqlite"
    s = Store(path, "NORMAL", log=True)
    s.save_step("p", {"n": 1}, [("b", "e", 1, frame("e", 1, 1))], handled=("c", "x", 1),
                clock=1)
    assert s._conn is not None
    s._conn.execute("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                      # another writer holds the file
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            s.checkpoint()
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.save_step("q", {"n": 2}, [], handled=("c", "x", 2), clock=2)
    s.checkpoint()                                         # both steps' records
    killed(s)
    os.remove(str(path) + "-log")                          # (only the file: all is there)
    with Store(path) as again:
        assert state(again) == {
            "fields": {"p": {"n": 1}, "q": {"n": 2}},
            "outbox": [("b", "e", 1, frame("e", 1, 1))],
            "handled": {("c", "x"): (2, [])}, "clock": 2}


def test_the_log_is_created_private(tmp_path):
    import stat

    old = os.umask(0o022)                     # the usual umask: files would be 0644
    try:
        with open_store(tmp_path / "state", "n", "process") as s:
            s.save_step("p", {"n": 1}, [], clock=1)
            mode = stat.S_IMODE(os.stat(tmp_path / "state" / "n.sqlite-log").st_mode)
    finally:
        os.umask(old)
    assert mode == 0o600


def test_an_unnamed_store_whose_state_is_in_its_log_is_not_adopted(tmp_path):
    # a store made without names is adopted by the first named opener only if it holds no
    # state: its log's records count
    s = Store(tmp_path / "a.sqlite", "NORMAL", log=True)
    s.save_step("p", {"n": 1}, [], clock=1)
    killed(s)
    with pytest.raises(StateError, match="no system name"):
        open_store(tmp_path, "a", "process", system="Other")
