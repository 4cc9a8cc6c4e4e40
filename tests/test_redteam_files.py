"""Red team of the files users hand to assay, and of the files it writes for them: trace files
for `assay replay`, `check --checkpoint` directories, parameters (`-p`, a deployment's), and
output files (`--trace-out`, `--html`, `--mermaid`).

Whatever a file holds, the command exits 2 with a message naming it, never a traceback or a
verdict about something else than what was asked; an output file is there whole or not at
all.  Every test runs `python -m assay.cli` in a subprocess, as a user does.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BUGGY = "specs/two_phase_commit_bug_majority.py"      # a protocol violation in 5 steps
LIVE = "specs/ring_election_bug_swallow.py"


def assay(*args: str | Path, cwd: Path = REPO, size_limit: int | None = None
          ) -> subprocess.CompletedProcess[str]:
    """Run `assay` as a user does; `size_limit`: the largest file it may write (bytes), as
    a full disk or a quota would stop it."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(REPO)

    def limited() -> None:
        if size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write fails: EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_limit, size_limit))

    return subprocess.run([sys.executable, "-m", "assay.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`assay` run in this process (click's runner), from the repository: for the cases
    that need no process of their own (no size limit, no lock held by another process)."""
    from click.testing import CliRunner

    from assay.cli import main

    monkeypatch.chdir(REPO)

    def invoke(*args: str | Path) -> subprocess.CompletedProcess[str]:
        r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)

    return invoke


def assert_exit_2(r: subprocess.CompletedProcess[str], *says: str) -> None:
    out = r.stdout + r.stderr
    assert "Traceback" not in out, r.stderr[-3000:]
    assert r.returncode == 2, (r.returncode, r.stdout[-800:], r.stderr[-2000:])
    assert "error: " in r.stderr
    for s in says:
        assert s in " ".join(r.stderr.split()), r.stderr[-2000:]


@pytest.fixture(scope="module")
def trace_doc() -> dict[str, Any]:
    """A counterexample of BUGGY as `check --trace-out` writes it (spec path relative to
    the repository, where the tests replay it)."""
    from assay.checker import check
    from assay.kernel import Kernel
    from assay.model.load import build

    system, name, typed = build(REPO / BUGGY)
    result = check(Kernel(system), spec=BUGGY, system_name=name, params=typed)
    assert result.trace is not None
    return json.loads(json.dumps(result.trace.to_json()))


# --- trace files ----------------------------------------------------------------------------

def test_a_trace_whose_lasso_start_is_not_a_step_exits_2_even_when_it_ends_in_a_violation(
        tmp_path: Path, quick: Any, trace_doc: dict[str, Any]) -> None:
    # a liveness verdict's cycle_start was checked only when the replay ended without a
    # violation; one that ends in one was then shown with "a" + 1: a traceback, exit 70
    for bad in ("a", 99):
        trace = tmp_path / "t.json"
        trace.write_text(json.dumps({**trace_doc, "verdict": {
            "kind": "liveness", "name": "anything", "cycle_start": bad}}))
        assert_exit_2(quick("replay", trace), "the trace's cycle_start", "is not a step of "
                      "the run (0 to 5)")


@pytest.mark.parametrize("edit, says", [
    ("swap", "step 1: deliver Prepared from rm0 to tm: not enabled"),
    ("duplicate", "step 3: deliver Prepared from rm0 to tm: not enabled"),
    ("delete", "step 3: deliver Prepared from rm1 to tm: not enabled"),
    ("params", "the trace's initial state is not an initial state of this system"),
    ("message", "step 2: deliver Nope from rm0 to tm: not enabled"),
    ("changes", "step 1: rm0 fires prepare: replaying it does not give what the trace "
                "recorded"),
])
def test_a_hand_edited_trace_does_not_replay_as_if_it_were_whole(
        tmp_path: Path, quick: Any, trace_doc: dict[str, Any], edit: str, says: str) -> None:
    # what held when probed: events reordered, duplicated or deleted by hand, changed
    # parameters, an unknown message type, a step's recorded changes edited
    doc = json.loads(json.dumps(trace_doc))
    ev = doc["events"]
    if edit == "swap":
        ev[0], ev[1] = ev[1], ev[0]
    elif edit == "duplicate":
        ev.insert(1, json.loads(json.dumps(ev[1])))
    elif edit == "delete":
        del ev[2]
    elif edit == "params":
        doc["params"]["rm_count"] = 4
    elif edit == "message":
        ev[1]["message"]["type"] = "Nope"
    else:
        ev[0]["changes"] = {"rm0": {"state": "COMMITTED"}}
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(doc))
    assert_exit_2(quick("replay", trace), says)


# --- parameters -----------------------------------------------------------------------------

def test_a_parameter_given_twice_with_two_values_is_refused(quick: Any) -> None:
    # `-p rm_count=2 -p rm_count=3` checked rm_count=3, silently: which one was meant?
    for command in ("check", "simulate"):
        assert_exit_2(quick(command, BUGGY, "-p", "rm_count=2", "-p", "rm_count=3"),
                      "--param rm_count is given twice, as '2' and '3'")
    # the same value twice is no question
    r = quick("check", BUGGY, "-q", "-p", "rm_count=3", "-p", "rm_count = 3")
    assert r.returncode == 1, r.stderr


def test_run_deploy_refuses_a_spec_parameters_or_seed_it_would_ignore(
        tmp_path: Path, quick: Any) -> None:
    # the deployment file names the spec, system and parameters: `-p rm_count=5` beside
    # --deploy ran the file's rm_count = 2, saying nothing
    deploy = tmp_path / "deploy.toml"
    deploy.write_text(f'spec = "{REPO / "specs/two_phase_commit.py"}"\n[params]\nrm_count = 2\n'
                      '[nodes.n1]\nhost = "127.0.0.1"\nport = 7101\n'
                      'instances = ["tm", "rm0", "rm1"]\n')        # (and no secret)
    for given, says in ((["-p", "rm_count=5"], "-p rm_count=5"),
                        ([str(REPO / BUGGY), "--seed", "3"],
                         f"SPEC ({REPO / BUGGY}), --seed 3")):
        assert_exit_2(quick("run", "--deploy", deploy, *given),
                      f"--deploy {deploy} takes the spec, system and parameters from the "
                      f"deployment file, not from the command line: {says}")
    # without them, the deployment file is read (here: it lacks its secret)
    assert_exit_2(quick("run", "--deploy", deploy), "needs a shared secret")


# --- checkpoints ----------------------------------------------------------------------------

def test_a_checkpoint_meta_nested_too_deeply_exits_2(tmp_path: Path, quick: Any) -> None:
    ck = tmp_path / "ck"
    assert quick("check", BUGGY, "-q", "--checkpoint", ck, "--checkpoint-every", "0"
                 ).returncode == 1
    (ck / "current" / "meta.json").write_text("[" * 100_000)
    assert_exit_2(quick("check", BUGGY, "-q", "--checkpoint", ck),
                  "meta.json is unreadable: nested too deeply", "remove the directory")


def test_a_checkpoint_of_another_deadlock_rule_says_which_way_no_deadlock_changed(
        tmp_path: Path, quick: Any) -> None:
    # it said "--no-deadlock differs (it was True, now False)" to whom had just added it
    ck = tmp_path / "ck"
    assert quick("check", BUGGY, "-q", "--checkpoint", ck, "--checkpoint-every", "0"
                 ).returncode == 1
    assert_exit_2(quick("check", BUGGY, "-q", "--checkpoint", ck, "--no-deadlock"),
                  "--no-deadlock differs (it was not given, now given)")


def test_a_second_check_in_a_checkpoint_directory_in_use_is_refused(
        tmp_path: Path, quick: Any) -> None:
    # two checks with one --checkpoint DIR (two terminals) swapped their checkpoints in
    # under each other and removed each other's files: an internal error, or a checkpoint
    # of one holding the other's files
    import fcntl

    ck = tmp_path / "ck"
    ck.mkdir()
    with open(ck / "lock", "a") as held:               # as the first check holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert_exit_2(quick("check", BUGGY, "-q", "--checkpoint", ck),
                      f"--checkpoint {ck}: another check is using this directory")
    assert not (ck / "current").exists()
    # once it is free, the check runs and saves; and the next one resumes from it
    for _ in range(2):
        r = quick("check", BUGGY, "-q", "--checkpoint", ck, "--checkpoint-every", "0")
        assert r.returncode == 1, r.stderr
        assert (ck / "current" / "meta.json").is_file()


# --- output files ---------------------------------------------------------------------------

def test_an_output_page_that_cannot_be_written_whole_leaves_the_old_one(
        tmp_path: Path, trace_doc: dict[str, Any]) -> None:
    # an output file was opened (so emptied) and written in place: a full disk left a page
    # cut short where the old one was
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(trace_doc))
    page, chart = tmp_path / "page.html", tmp_path / "chart.md"
    for option, out in (("--html", page), ("--mermaid", chart)):
        out.write_text("the page before\n")
        r = assay("replay", trace, option, out, size_limit=len(out.read_text()) + 100)
        assert_exit_2(r, f"cannot write {out}: File too large")
        assert out.read_text() == "the page before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.md", "page.html", "t.json"]
    r = assay("replay", trace, "--html", page, "--mermaid", chart)
    assert r.returncode == 1 and "</html>" in page.read_text() and "sequenceDiagram" in \
        chart.read_text()


def test_a_trace_that_cannot_be_written_whole_leaves_nothing_behind(tmp_path: Path) -> None:
    # the trace went to FILE.tmp, renamed when whole: a failed write left FILE.tmp behind
    out = tmp_path / "t.json"
    r = assay("check", BUGGY, "-q", "--trace-out", out, size_limit=1000)
    assert_exit_2(r, f"cannot write the trace to {out}: File too large")
    assert list(tmp_path.iterdir()) == []
    sims = tmp_path / "sims"
    r = assay("simulate", BUGGY, "-q", "-j", "1", "--runs", "5", "--out", sims,
              size_limit=1000)
    assert_exit_2(r, f"cannot write traces to {sims}: File too large")
    assert list(sims.iterdir()) == []


def test_a_trace_file_gets_the_mode_a_new_file_gets(tmp_path: Path, quick: Any) -> None:
    # written through a temporary file: with the umask's mode, not a temporary file's 0600
    out = tmp_path / "t.json"
    assert quick("check", BUGGY, "-q", "--trace-out", out).returncode == 1
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    out.chmod(0o640)                                    # written again: keeps its own
    assert quick("check", BUGGY, "-q", "--trace-out", out).returncode == 1
    assert out.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_an_output_path_that_cannot_be_created_is_refused_before_the_search(
        tmp_path: Path, quick: Any) -> None:
    # write permission was asked of the directory (os.access), which says yes to root
    # whatever the file system: the search ran, then its trace could not be written
    spec = tmp_path / "spec.py"
    mark = tmp_path / "built"
    spec.write_text(f"import pathlib\nexec(pathlib.Path({str(REPO / BUGGY)!r}).read_text())\n"
                    f"_system = system\n\ndef system(rm_count: int = 3):\n"
                    f"    pathlib.Path({str(mark)!r}).write_text('built')\n"
                    f"    return _system(rm_count)\n")
    for option in ("--trace-out", "--html"):
        out = "/proc/assay-trace.json"
        assert_exit_2(quick("check", spec, "-q", option, out),
                      f"cannot write {out}: ")
        assert not mark.exists(), "the check ran before its output was found unwritable"


def test_a_spec_file_without_py_exits_2(tmp_path: Path, quick: Any,
                                         trace_doc: dict[str, Any]) -> None:
    # a file of Python that importlib does not take for a module (no .py) failed an assert:
    # exit 70, "a bug in assay"
    spec = tmp_path / "spec.txt"
    spec.write_text((REPO / BUGGY).read_text())
    assert_exit_2(quick("check", spec), "not a spec file: a spec is a Python file (.py)",
                  "rename it to spec.py")
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(trace_doc))
    assert_exit_2(quick("replay", trace, "--spec", spec), "not a spec file")


class _CtrlC:
    """Ctrl-C at the `at`-th file operation (open, rename, mkdir, rmtree: Python's audit
    events) on the checkpoint directory `under`, once armed: a SIGINT raises
    KeyboardInterrupt between two such operations, which is what this does, at each point
    in turn.  (An audit hook stays once added: disarmed, it returns at once.)"""

    armed: _CtrlC | None = None
    EVENTS = ("open", "os.rename", "os.mkdir", "shutil.rmtree", "os.remove", "os.rmdir")

    def __init__(self, under: Path, at: int) -> None:
        self.under, self.at, self.seen = str(under), at, 0

    @staticmethod
    def hook(event: str, args: tuple[Any, ...], _events: frozenset[str] = frozenset(EVENTS)
             ) -> None:
        if event not in _events or _CtrlC is None:  # (_CtrlC: None at interpreter exit)
            return
        me = _CtrlC.armed
        if me is None or event not in _CtrlC.EVENTS or not args or \
                not str(args[0]).startswith(me.under):
            return
        me.seen += 1
        if me.seen == me.at:
            _CtrlC.armed = None
            raise KeyboardInterrupt


def test_ctrl_c_at_any_point_of_a_checkpoint_write_leaves_a_whole_checkpoint(
        tmp_path: Path) -> None:
    # a resumed search (from `previous`: a check stopped while it swapped checkpoints)
    # removed `previous` before its next checkpoint was in place: Ctrl-C (or a crash) there
    # left no checkpoint at all, and the next check started over
    from checkpoint_support import counts, run

    from assay.checker.checkpoint import CURRENT, NEXT, PREVIOUS

    spec, params = "specs/two_phase_commit.py", {"rm_count": "3"}
    whole = run(spec, tmp_path / "whole", params=params)
    start = tmp_path / "start"
    assert run(spec, start, params=params, max_depth=4).reason == "max-depth"
    # as a check stopped between its two renames leaves it: `previous`, no `current`
    os.replace(start / CURRENT, start / PREVIOUS)
    (start / NEXT).mkdir()
    sys.addaudithook(_CtrlC.hook)
    # the operations of the resumed search's first two checkpoint writes (the first from
    # `previous`, the second over `current`): about 36
    for at in range(1, 40):
        ck = tmp_path / f"ck{at}"
        shutil.copytree(start, ck)
        _CtrlC.armed = ctrl_c = _CtrlC(ck, at)
        try:
            stopped = run(spec, ck, params=params)
        except KeyboardInterrupt:            # before the search (the CLI: exit 130)
            stopped = None
        finally:
            _CtrlC.armed = None
        assert ctrl_c.seen == at and (stopped is None or stopped.reason == "interrupted")
        saved = [f for f in (CURRENT, PREVIOUS) if (ck / f / "meta.json").is_file()]
        assert saved, f"Ctrl-C at file operation {at} left no checkpoint in {ck}"
        # (and none older than the one the search resumed from)
        assert json.loads((ck / saved[0] / "meta.json").read_text())["depth"] >= 4
        if at % 8 == 0:                      # and it resumes to the same end
            assert counts(run(spec, ck, params=params)) == counts(whole), at


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs /proc/PID/task/TID/children")
def test_simulate_starts_no_more_worker_processes_than_runs(tmp_path: Path) -> None:
    # the pool forks all of --jobs at once: `-j 100000 --runs 3` forked until the machine
    # gave out.  The spec's system function, built in a worker, counts the pool's processes.
    seen = tmp_path / "pool"
    spec = tmp_path / "spec.py"
    spec.write_text(f"import os, pathlib\n"
                    f"exec(pathlib.Path({str(REPO / BUGGY)!r}).read_text())\n"
                    f"_system = system\n\ndef system(rm_count: int = 3):\n"
                    f"    parent = os.getppid()\n"
                    f"    kids = pathlib.Path(f'/proc/{{parent}}/task/{{parent}}/children')\n"
                    f"    if parent != {os.getpid()}:    # (a worker)\n"
                    f"        pathlib.Path({str(seen)!r}).write_text(kids.read_text())\n"
                    f"    return _system(rm_count)\n")
    r = assay("simulate", spec, "-q", "-j", "12", "--runs", "2", "--steps", "3", "--no-shrink",
              "--out", tmp_path / "out")
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert len(seen.read_text().split()) <= 3      # two workers (and a resource tracker)


@pytest.mark.parametrize("command, option", [
    ("check", "--max-time"), ("check", "--checkpoint-every"), ("simulate", "--max-time"),
    ("replay", "--max-time"), ("run", "--for"), ("run", "--time-unit")])
def test_nan_seconds_are_refused(tmp_path: Path, quick: Any, command: str, option: str) -> None:
    # every comparison with NaN is false: `--max-time nan` set no limit, and
    # `--checkpoint-every nan` never saved a checkpoint, saying nothing
    target = str(tmp_path / "t.json") if command == "replay" else BUGGY
    r = quick(command, target, option, "nan", *(("--checkpoint", tmp_path / "ck")
                                                 if option == "--checkpoint-every" else ()))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"Invalid value for '{option}': 'nan' is not a number of seconds" in r.stderr


def test_an_output_file_that_is_an_input_is_refused_before_it_is_replaced(
        tmp_path: Path, quick: Any, trace_doc: dict[str, Any]) -> None:
    # `check spec.py --trace-out spec.py` (a slip of the tab key) replaced the spec with the
    # trace; `replay t.json --html t.json` the trace with the page; through a link too
    spec = tmp_path / "spec.py"
    text = (REPO / BUGGY).read_text()
    spec.write_text(text)
    (tmp_path / "link.py").symlink_to(spec)
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(trace_doc))
    for args, says in (
            (["check", spec, "--trace-out", tmp_path / "link.py"], "it is also the spec"),
            (["check", spec, "--trace-out", tmp_path / "o.json", "--html",
              tmp_path / ".." / tmp_path.name / "o.json"], "it is also the --trace-out file"),
            (["simulate", spec, "--html", spec], "it is also the spec"),
            (["replay", trace, "--html", trace], "it is also the trace"),
            (["replay", trace, "--spec", spec, "--mermaid", spec], "it is also the spec"),
            (["run", spec, "--trace-out", spec], "it is also the spec")):
        assert_exit_2(quick(*args), "cannot write", says, "write it to another file")
    assert spec.read_text() == text and json.loads(trace.read_text()) == trace_doc
    assert not (tmp_path / "o.json").exists()


def test_a_hypothesis_database_that_is_a_file_is_refused(quick, tmp_path):
    # before: accepted; the failure found was kept nowhere (Hypothesis could not write under
    # a file), so the next search did not start from it, and nothing said so
    db = tmp_path / "examples"
    db.write_text("")
    r = quick("simulate", "specs/raft_election_bug_double_vote.py", "--engine", "hypothesis",
              "--runs", "20", "--database", db, "--out", tmp_path / "traces")
    assert_exit_2(r, "not a directory", "--database none")
    assert db.read_text() == "" and not (tmp_path / "traces").exists()
