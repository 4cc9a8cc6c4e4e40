"""Persistent fields in SQLite: round trips, reopening, durability across kill -9, threads."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from assay.runtime.steplog import open_step_log
from assay.runtime.store import Store, StoreError, open_store

ROOT = Path(__file__).resolve().parent.parent

FIELDS = {"value": 3, "name": "héllo \u2603", "flag": True, "none": None,
          "set": ["GREEN", "RED"], "nested": [[1, "a"], {"type": "Ping", "fields": {"n": 2}}],
          "big": 2 ** 100, "neg": -7}


def test_save_load_round_trip_on_a_real_file(tmp_path):
    path = tmp_path / "node.db"
    with Store(path) as s:
        assert path.is_file()
        assert s.load("server") is None
        s.save("server", FIELDS)
        assert s.load("server") == FIELDS
        s.save("client", {})
        assert s.load("client") == {}
        assert s.load("server") == FIELDS       # instances are independent
        assert s.load("other") is None


def test_wal_and_full_synchronous(tmp_path):
    path = tmp_path / "node.db"
    with Store(path) as s:
        assert s.journal_mode == "wal"
        assert s._conn is not None
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    finally:
        other.close()


def test_saves_survive_closing_and_reopening(tmp_path):
    path = str(tmp_path / "node.db")       # a str path works as well as a PathLike
    s = Store(path)
    s.save("a", FIELDS)
    s.save("b", {"value": 1})
    s.close()
    s = Store(path)
    try:
        assert s.load("a") == FIELDS and s.load("b") == {"value": 1}
    finally:
        s.close()


def test_the_last_save_wins(tmp_path):
    path = tmp_path / "node.db"
    with Store(path) as s:
        for i in range(20):
            s.save("a", {"value": i, "extra": "x" * i})
        s.save("a", {"value": "last"})              # a field may disappear, too
        assert s.load("a") == {"value": "last"}
    with Store(path) as s:
        assert s.load("a") == {"value": "last"}


def test_bad_input_is_refused_and_nothing_is_written(tmp_path):
    with Store(tmp_path / "node.db") as s:
        s.save("a", {"value": 1})
        with pytest.raises(TypeError):
            s.save("a", {"value": {1, 2}})
        with pytest.raises(ValueError):
            s.save("a", {"value": float("nan")})
        with pytest.raises(TypeError):
            s.save(5, {"value": 1})                      # type: ignore[arg-type]
        with pytest.raises(TypeError):
            s.save("a", [1])                             # type: ignore[arg-type]
        assert s.load("a") == {"value": 1}
        s.save("a", {"value": 2})                        # still usable
        assert s.load("a") == {"value": 2}


def test_a_closed_store_says_so(tmp_path):
    s = Store(tmp_path / "node.db")
    s.close()
    s.close()                                            # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.save("a", {})
    with pytest.raises(StoreError, match="closed"):
        s.load("a")


CHILD = textwrap.dedent("""
    import sys, time
    from assay.runtime.store import Store
    s = Store(sys.argv[1])
    i = 0
    while True:
        s.save("server", {"value": i, "pad": "x" * 100})
        print(i, flush=True)          # printed only once the save returned (committed)
        i += 1
        if i > 200:
            time.sleep(60)            # wait to be killed
""")


def test_a_save_is_durable_after_kill_9(tmp_path):
    path = tmp_path / "node.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        last = -1
        assert child.stdout is not None
        while last < 30 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            last = int(line)
        assert last >= 30, child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)      # mid-stream: possibly inside a transaction
        child.wait(10)
        # every save the child reported (and any it finished after) is on disk
        rest = child.stdout.read()
        reported = max([last] + [int(x) for x in rest.split()])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for f in (child.stdout, child.stderr):
            if f is not None:
                f.close()
    assert child.returncode == -signal.SIGKILL
    with Store(path) as s:
        got = s.load("server")
    assert got is not None and got["value"] >= reported and got["pad"] == "x" * 100


def test_a_single_save_then_kill_9(tmp_path):
    path = tmp_path / "node.db"
    code = textwrap.dedent("""
        import sys, time
        from assay.runtime.store import Store
        s = Store(sys.argv[1])
        s.save("server", {"value": 42, "set": ["RED"]})
        print("saved", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "saved"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Store(path) as s:
        assert s.load("server") == {"value": 42, "set": ["RED"]}


def test_concurrent_use_through_asyncio_to_thread(tmp_path):
    path = tmp_path / "node.db"
    s = Store(path)                    # created in this thread, used from the pool's threads

    async def main() -> None:
        async def worker(k: int) -> None:
            for i in range(20):
                await asyncio.to_thread(s.save, f"inst{k}", {"value": i, "k": k})
                got = await asyncio.to_thread(s.load, f"inst{k}")
                assert got == {"value": i, "k": k}     # only this worker writes inst{k}

        async def shared(k: int) -> None:
            for i in range(20):
                await asyncio.to_thread(s.save, "shared", {"by": k, "i": i})
                got = await asyncio.to_thread(s.load, "shared")
                assert got is not None and set(got) == {"by", "i"}

        await asyncio.wait_for(asyncio.gather(*(worker(k) for k in range(8)),
                                              *(shared(k) for k in range(4))), 20)

    try:
        asyncio.run(main())
        for k in range(8):
            assert s.load(f"inst{k}") == {"value": 19, "k": k}
    finally:
        s.close()
    with Store(path) as again:
        assert again.load("shared") is not None and again.load("shared")["i"] == 19


def test_concurrent_use_from_plain_threads(tmp_path):
    s = Store(tmp_path / "node.db")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(30):
                s.save(f"t{k}", {"i": i})
                assert s.load(f"t{k}") == {"i": i}
        except BaseException as e:       # noqa: BLE001 (reported by the test)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    try:
        assert not errors and not any(t.is_alive() for t in threads)
        assert all(s.load(f"t{k}") == {"i": 29} for k in range(6))
    finally:
        s.close()


def test_a_step_and_its_outgoing_frames_are_saved_together_and_forgotten_on_ack(tmp_path):
    path = tmp_path / "n.sqlite"
    store = Store(path)
    f1 = {"t": "msg", "seq": 1, "epoch": "e1", "clock": 3}
    f2 = {"t": "msg", "seq": 2, "epoch": "e1", "clock": 4}
    store.save_step("server", {"value": 1}, [("b", "e1", 1, f1)])
    store.save_step("server", None, [("b", "e1", 2, f2)])    # no persistent fields: frames only
    assert store.load("server") == {"value": 1}
    assert store.outbox() == [("b", "e1", 1, f1), ("b", "e1", 2, f2)]
    store.acked("b", "e1", 1)
    store.close()
    again = Store(path)                                        # after a restart
    assert again.outbox() == [("b", "e1", 2, f2)]
    again.close()


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def usual_umask():
    """The usual umask (files 0644, directories 0755), whatever the test runner's is."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_state_directories_and_store_files_are_created_private(tmp_path, usual_umask):
    state = tmp_path / "a" / "b"
    with open_store(state, "n") as s:
        s.save("x", {"v": 1})                        # the -wal and -shm exist while it is open
        db = state / "n.sqlite"
        modes = {p.name: _mode(p) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))}
    assert modes == {"n.sqlite": 0o600, "n.sqlite-wal": 0o600, "n.sqlite-shm": 0o600}
    assert (_mode(tmp_path / "a"), _mode(state)) == (0o700, 0o700)


def test_a_step_log_is_created_private_and_an_existing_file_keeps_its_mode(tmp_path,
                                                                          usual_umask):
    f, _ = open_step_log(tmp_path / "new.jsonl", None)
    f.close()
    assert _mode(tmp_path / "new.jsonl") == 0o600
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"clock": 1, "node": "n", "event": {}}\n'
                    '{"clock": 2, "node": "n", "event": {}}\n')
    mine.chmod(0o640)                                 # the user chose this mode: kept
    f, clock = open_step_log(mine, 1)                 # (a line dropped: the file rewritten)
    f.close()
    assert clock == 1 and _mode(mine) == 0o640


def test_an_existing_state_directory_keeps_its_mode(tmp_path, usual_umask):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    open_store(state, "n").close()
    assert _mode(state) == 0o755 and _mode(state / "n.sqlite") == 0o600


def test_forget_drops_the_handled_numbers_of_the_named_lives_of_that_peer_only(tmp_path):
    with Store(tmp_path / "n.sqlite") as s:
        for peer, epoch, seqs in [("b", "e1", [1, 2, 4]), ("b", "e2", [1]), ("b", "e3", [2]),
                                  ("c", "e1", [1, 3])]:
            for seq in seqs:
                s.save_handled(peer, epoch, seq)
        s.forget("b", ["e1", "e3", "e9"])
        got = {k: (h.floor, sorted(h.above)) for k, h in s.handled().items()}
        assert got == {("b", "e2"): (1, []), ("c", "e1"): (1, [3])}
    with Store(tmp_path / "n.sqlite") as s:          # durable
        assert set(s.handled()) == {("b", "e2"), ("c", "e1")}
