"""Trace files are untrusted input: whatever a file holds, `assay replay` exits 2 with a message
(or replays it), never with a traceback, never echoes a file that is not a spec, and builds no
system larger than the command line could.

In-process tests call the loader and replay (`Trace.read`, `replay_trace`) and accept only
assay's own user errors; the command-line tests run `python -m assay.cli replay` in a
subprocess, as a user does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.checker import check
from assay.errors import AssayError, SpecError, TraceError, UsageError
from assay.kernel import Faults, Kernel
from assay.kernel.trace import Trace, replay_trace
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
VOLATILE = "specs/register_bug_volatile.py"
NOSEQ = "specs/alternating_bit_bug_no_seq.py"


def trace_doc(spec: str, faults: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    system, name, typed = build(REPO / spec, params=params)
    result = check(Kernel(system, Faults.parse(faults)), spec=spec, system_name=name,
                   params=typed)
    assert result.trace is not None
    return json.loads(json.dumps(result.trace.to_json()))


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    """Valid traces (with crashes and restarts, and with duplicates and timers)."""
    return {"volatile": trace_doc(VOLATILE, "crash=1"), "noseq": trace_doc(NOSEQ, "dup=1")}


def replay_file(path: Path, engine: str = "checker") -> Any:
    """Load and replay a trace file in this process, as `assay replay --engine` does."""
    from assay.simulator.run import replay_clock

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return replay_trace(Trace.read(path), path,
                            replay_clock if engine == "simulator" else None)
    finally:
        os.chdir(cwd)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_exit_2(r: subprocess.CompletedProcess[str], *says: str) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "error: " in r.stderr
    for s in says:
        assert s in " ".join(r.stderr.split()), r.stderr[-2000:]


# --- files that are not JSON traces at all --------------------------------------------------------

def test_a_deeply_nested_json_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert_exit_2(run_cli("replay", str(path)), "nested too deeply")


def test_a_trace_with_a_deeply_nested_field_exits_2(tmp_path: Path, docs) -> None:
    doc = dict(docs["volatile"])
    doc["events"] = [dict(doc["events"][0], arg=json.loads("[" * 900 + "]" * 900))]
    path = tmp_path / "deep_field.json"
    path.write_text(json.dumps(doc))
    assert_exit_2(run_cli("replay", str(path)), "nested too deeply")


def test_a_binary_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(bytes(range(256)) * 64)
    assert_exit_2(run_cli("replay", str(path)), "not a text file")


def test_a_huge_file_exits_2_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:                  # sparse: takes no room on the disk
        f.truncate(4 * 1024 ** 3)
    r = run_cli("replay", str(path))
    assert_exit_2(r, "too large")


def test_a_device_or_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert_exit_2(run_cli("replay", str(fifo)), "not a regular file")


# --- what a trace's fields may name ---------------------------------------------------------------

def test_a_trace_naming_a_file_that_is_not_a_spec_never_prints_it(tmp_path: Path, docs) -> None:
    secret = tmp_path / "credentials.txt"
    secret.write_text("token: s3cr3t-value-do-not-print\n")
    word = tmp_path / "word.conf"
    word.write_text("s3cr3t_word_do_not_print\n")       # valid Python: a NameError if run
    for target in (secret, word, Path("/etc/passwd")):
        doc = dict(docs["volatile"], spec=str(target))
        path = tmp_path / "points_elsewhere.json"
        path.write_text(json.dumps(doc))
        r = run_cli("replay", str(path))
        assert_exit_2(r, "not a Python file")
        assert "s3cr3t" not in r.stdout + r.stderr
        assert "root:" not in r.stdout + r.stderr


def test_check_of_a_file_that_is_not_python_does_not_print_its_lines(tmp_path: Path) -> None:
    secret = tmp_path / "credentials.txt"
    secret.write_text("token: s3cr3t-value-do-not-print\n")
    r = run_cli("check", str(secret))
    assert_exit_2(r, "syntax error")
    assert "s3cr3t" not in r.stdout + r.stderr


def test_a_syntax_error_in_a_py_spec_still_shows_its_line() -> None:
    r = run_cli("check", "tests/fixtures/bad_specs/syntax_error.py")
    assert_exit_2(r, 's.add("b", Node)')


MANY = "tests/fixtures/good/many_instances.py"


@pytest.mark.parametrize("params,says", [
    ({"m": 20_000}, "at most 10000"),                   # no annotated bound: the system's
    ({"n": 0}, "between 1 and 10000"),                  # its annotated Range
    ({"n": 10 ** 9}, "between 1 and 10000"),
    ({"n": [1, 2]}, "parameter 'n' of the trace must be a string, an integer or a boolean"),
    ({"n": {"a": 1}}, "parameter 'n' of the trace"),
    ({"n": 1.5}, "parameter 'n' of the trace"),
    ({"n": "1" * 5000}, "expected an int"),
    ({"nope": 1}, "no parameter 'nope'"),
])
def test_trace_params_are_bounded_like_command_line_params(tmp_path: Path, params, says) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"format": "assay-trace", "version": 1, "spec": MANY,
                                "system": "system", "params": params, "events": []}))
    r = run_cli("replay", str(path))
    assert_exit_2(r, says)
    assert len(r.stderr) < 1000


def test_a_system_too_large_is_refused_from_the_command_line_too() -> None:
    r = run_cli("check", MANY, "-p", "m=20000")
    assert_exit_2(r, "at most 10000 instances")


def test_a_system_of_many_instances_builds_its_kernel_quickly() -> None:
    """Kernel() used to list every partition of the instances (2^(n-1)) up front."""
    system, _, _ = build(REPO / MANY, params={"n": "40"})
    k = Kernel(system)
    assert len(k.instances) == 40


def test_a_param_out_of_its_annotated_range_is_refused(tmp_path: Path) -> None:
    r = run_cli("check", MANY, "-p", "n=0")
    assert_exit_2(r, "--param n=0", "between 1 and 10000")
    system, _, _ = build(REPO / MANY, params={"n": "3"})
    assert len(system.instances) == 3
    with pytest.raises(UsageError, match="between 1 and 10000"):
        build(REPO / MANY, params={"n": "10001"})


# --- any shape in any field: only assay's own errors ----------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)


def _places(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (keys of objects, indices of lists)."""
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _places(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _places(v, (*path, i))
    return out


def _mutated(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    head, rest = path[0], path[1:]
    if not rest and delete:
        del out[head]
    else:
        out[head] = _mutated(out[head], rest, value, delete)
    return out


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_trace_with_any_field_of_any_shape_is_a_user_error_or_replays(
        docs, tmp_path: Path, data: st.DataObject) -> None:
    doc = docs[data.draw(st.sampled_from(sorted(docs)), label="trace")]
    places = _places(doc)
    path = data.draw(st.sampled_from(places), label="field")
    value = data.draw(JSON, label="value")
    delete = bool(path) and data.draw(st.booleans(), label="delete")
    bad = _mutated(doc, path, value, delete)
    file = tmp_path / "mutated.json"
    file.write_text(json.dumps(bad))
    try:
        replay_file(file, data.draw(st.sampled_from(["checker", "simulator"]), label="engine"))
    except (TraceError, SpecError, UsageError) as e:
        assert e.exit_code == 2
        assert len(e.render()) < 2000, e.render()[:300]
    except AssayError as e:                             # pragma: no cover - a new kind
        pytest.fail(f"unexpected {type(e).__name__}: {e}")
