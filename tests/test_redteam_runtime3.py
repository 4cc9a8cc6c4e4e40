"""Red team of the runtime, its files and trace replay, third round (CHANGELOG, "Runtime red
team 3"); each test here failed before its fix, unless it says it pins a probe that held.
Real sockets on loopback, real SQLite files, `assay` in subprocesses as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.kernel import Faults, Kernel
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
VOLATILE = REPO / "specs" / "register_bug_volatile.py"


def assay(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


# --- a trace file received from someone else ---------------------------------------------------

@pytest.fixture(scope="module")
def trace_doc() -> dict[str, Any]:
    system, name, typed = build(VOLATILE)
    result = check(Kernel(system, Faults.parse("crash=1")), spec=str(VOLATILE),
                   system_name=name, params=typed)
    assert result.trace is not None
    return json.loads(json.dumps(result.trace.to_json()))


def hostile_spec(where: Path, mark: Path) -> Path:
    """A spec that does what the trace's author likes when it is loaded (here: leaves
    `mark`), and is otherwise the spec the trace was written from."""
    where.mkdir(parents=True, exist_ok=True)
    spec = where / "evil.py"
    spec.write_text(f"open({str(mark)!r}, 'w').write('ran')\n" + VOLATILE.read_text())
    return spec


@pytest.mark.parametrize("named", ["absolute", "relative", "symlink", "beside"])
def test_replay_does_not_run_a_spec_from_outside_the_current_directory_unless_named(
        tmp_path, trace_doc, named):
    # a trace names the spec replay runs as Python: a trace file from someone else ran any
    # .py file on the machine it named (by an absolute path, or ../, or a link that leads
    # out, or a spec shipped beside the trace in a download)
    project, mark = tmp_path / "project", tmp_path / "ran"
    project.mkdir()
    spec = hostile_spec(tmp_path / "elsewhere", mark)
    trace = (tmp_path / "elsewhere" if named == "beside" else project) / "trace.json"
    if named == "symlink":
        (project / "spec.py").symlink_to(spec)
    name = {"absolute": str(spec), "relative": "../elsewhere/evil.py", "symlink": "spec.py",
            "beside": "evil.py"}[named]
    trace.write_text(json.dumps({**trace_doc, "spec": name}))
    r = assay("replay", trace, cwd=project)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert not mark.exists(), "the trace's spec ran"
    assert "Traceback" not in r.stderr
    assert f"the trace names the spec {spec}, outside the current directory" in r.stderr
    assert f"--spec {spec}" in r.stderr
    # named by the user: run (and replayed)
    r = assay("replay", trace, "--spec", spec, cwd=project)
    assert mark.exists() and r.returncode == 1, (r.stdout, r.stderr)
    assert "the recorded violation is reproduced" in r.stdout


def test_replay_runs_the_trace_s_spec_inside_the_current_directory(tmp_path, trace_doc):
    # the usual workflow holds: a trace of the project's own spec, replayed from the project
    mark = tmp_path / "project" / "ran"
    spec = hostile_spec(tmp_path / "project" / "specs", mark)
    trace = tmp_path / "project" / "out" / "trace.json"
    trace.parent.mkdir()
    trace.write_text(json.dumps({**trace_doc, "spec": "specs/evil.py"}))
    r = assay("replay", trace, cwd=tmp_path / "project")
    assert r.returncode == 1 and mark.exists(), (r.stdout, r.stderr)
    assert f"trace of {Path('specs/evil.py')}" in r.stdout
    assert spec.exists()


# --- a checkpoint directory someone else wrote into ---------------------------------------------

class Planted:
    """What an attacker's pickle runs when it is loaded: here, it leaves a file."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.mark, "unpickled"))


def plant(folder: Path, mark: Path, key_name: str) -> None:
    """Swap worker 0's file for a pickle of the attacker's choosing, and make meta.json
    agree with it as far as anyone can without this user's key: SHA-256 digests."""
    import hashlib
    import pickle

    shard = folder / "shard-0"
    shard.write_bytes(pickle.dumps(Planted(mark)))
    meta = json.loads((folder / "meta.json").read_text())
    meta = {k: v for k, v in meta.items() if k not in ("meta_sha256", "meta_mac")}
    meta["shards"]["shard-0"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    meta[key_name] = hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":"))
                                    .encode()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
@pytest.mark.parametrize("key_name", ["meta_sha256", "meta_mac"])
def test_a_checkpoint_swapped_for_an_attacker_s_pickle_is_refused_before_unpickling(
        tmp_path, strategy, key_name):
    # the digests were SHA-256, which anyone can compute: a checkpoint directory others
    # could write (or one received) with a pickle of their choosing and digests to match
    # ran their code at `check --checkpoint DIR`
    from checkpoint_support import SYM_LOCK, run

    from assay.errors import AssayError

    ck, mark = tmp_path / "ck", tmp_path / "unpickled"
    kw: dict[str, Any] = {"params": {"clients": "4"}, "strategy": strategy,
                          "symmetry": False}
    run(SYM_LOCK, ck, **({"max_depth": 2} if strategy == "bfs" else {"max_states": 2000}), **kw)
    plant(ck / "current", mark, key_name)
    with pytest.raises(AssayError, match="is not the file that was saved"):
        run(SYM_LOCK, ck, **kw)
    assert not mark.exists(), "the planted pickle was loaded"


def test_a_checkpoint_made_with_another_user_s_key_does_not_resume(tmp_path, monkeypatch):
    from checkpoint_support import SYM_LOCK, counts, run

    from assay.checker.checkpoint import user_key
    from assay.errors import AssayError

    params = {"clients": "2"}
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "theirs" / "key"))
    run(SYM_LOCK, tmp_path / "ck", params=params, max_depth=2)
    theirs = user_key()
    assert oct((tmp_path / "theirs" / "key").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "mine" / "key"))
    assert user_key() != theirs
    with pytest.raises(AssayError, match="not written by this user's assay"):
        run(SYM_LOCK, tmp_path / "ck", params=params)
    monkeypatch.setenv("ASSAY_KEY_FILE", str(tmp_path / "theirs" / "key"))   # theirs: resumes
    assert counts(run(SYM_LOCK, tmp_path / "ck", params=params)) == \
        counts(run(SYM_LOCK, None, params=params))


def test_a_worker_file_swapped_after_its_check_is_not_unpickled(tmp_path):
    # the digest was checked when the checkpoint was found, and the file read again (by
    # each worker) to unpickle it: a swap in between was loaded unchecked
    import pickle

    from checkpoint_support import SYM_LOCK, run

    from assay.checker.checkpoint import verified
    from assay.errors import UsageError

    run(SYM_LOCK, tmp_path / "ck", params={"clients": "2"}, max_depth=2)
    folder = tmp_path / "ck" / "current"
    assert pickle.loads(verified(str(folder), 0))        # as saved: read once, checked
    mark = tmp_path / "unpickled"
    (folder / "shard-0").write_bytes(pickle.dumps(Planted(mark)))
    with pytest.raises(UsageError, match="shard-0 is not the file that was saved"):
        pickle.loads(verified(str(folder), 0))
    assert not mark.exists()


# --- a state file with a byte changed inside a row ----------------------------------------------

def saved_store(path: Path) -> None:
    from assay.runtime.store import Store

    frame = {"t": "msg", "seq": 1, "epoch": "e1", "message": {"amount": 1}}
    with Store(path, system="bank", node="a") as s:
        s.save_steps([("acct0", {"balance": 5}, [("b", "e1", 1, frame)], ("b", "e9", 1), 7,
                       None)])


@pytest.mark.parametrize("row, text", [("fields", b'"balance":5'),
                                       ("outbox", b'"amount": 1')])
def test_a_byte_flipped_inside_a_saved_row_is_refused_not_restored(tmp_path, row, text):
    # SQLite checks the file's structure, not what its rows hold: one bit flipped inside a
    # saved value (a balance 5 read back as 4, a message's amount 1 as 0) passed the
    # integrity check and the row checks, and the node restarted on state it never had
    from assay.errors import StateError
    from assay.runtime.store import Store

    path = tmp_path / "a.sqlite"
    saved_store(path)
    data = bytearray(path.read_bytes())
    at = data.index(text) + len(text) - 1
    data[at] ^= 0x01                                          # 5 -> 4, 1 -> 0
    path.write_bytes(bytes(data))
    with pytest.raises(StateError, match=f"table {row}, row .*: the row is not what assay "
                                         "saved") as e:
        Store(path, system="bank", node="a")
    assert str(path) in str(e.value) and "--fresh" in str(e.value)
    data[at] ^= 0x01                                          # as saved: opens
    path.write_bytes(bytes(data))
    with Store(path, system="bank", node="a") as s:
        assert s.load("acct0") == {"balance": 5} and s.clock() == 7
