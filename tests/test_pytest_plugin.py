"""The pytest plugin (assay/pytest_plugin.py), run in pytest sessions of its own (pytester):
`pytest --assay` collects specs as items that pass iff the check ends as the spec expects,
the `assay_check` fixture and `assay_expect` marker, failures that show the counterexample and
the trace written, pytest-xdist, and the `pytest11` entry point."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from assay.kernel.trace import Trace

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest in the pytester folder with the plugin loaded by name (entry points off:
    an installed assay would load it a second time)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def go(*args: str):
        return pytester.runpytest("-p", "assay.pytest_plugin", *args)
    return go


def _spec(pytester, name: str, extra: str = "", as_name: str | None = None) -> Path:
    """A shipped spec without what it declares for `pytest --assay`, and with `extra`."""
    path = pytester.path / (as_name or name)
    source = (SPECS / name).read_text().split("\n\n# `pytest --assay specs/`")[0]
    path.write_text(source + "\n" + extra)
    return path


def test_spec_items_pass_when_no_violation_and_fail_with_the_counterexample(pytester, run):
    _spec(pytester, "two_phase_commit.py")
    _spec(pytester, "two_phase_commit_bug_majority.py")
    r = run("--assay", "-v")
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "two_phase_commit.py::system PASSED" in out
    assert "two_phase_commit_bug_majority.py::system FAILED" in out
    # the counterexample as `assay check` prints it, and the trace file for `assay replay`
    assert "shortest counterexample (5 steps):" in out
    assert "5. tm fires commit" in out
    trace = pytester.path / "assay-traces" / "two_phase_commit_bug_majority-system.json"
    assert f"trace written to {trace}" in out
    t = Trace.read(trace)
    assert t.spec == "two_phase_commit_bug_majority.py" and len(t.events) == 5
    assert t.verdict["kind"] == "protocol"
    assert not (pytester.path / "assay-traces" / "two_phase_commit-system.json").exists()
    # and the trace explorer's page beside it, for a browser
    page = trace.with_suffix(".html")
    assert f"see it in a browser: {page}" in out
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "tm fires commit" in html
    assert not (pytester.path / "assay-traces" / "two_phase_commit-system.html").exists()


def test_without_assay_nothing_is_collected_from_specs(pytester, run):
    _spec(pytester, "two_phase_commit_bug_majority.py")
    r = run()
    assert r.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_assay_expect_declares_the_violation_a_spec_must_show(pytester, run):
    # with one crash the volatile register loses an acknowledged write: expected, so it passes
    _spec(pytester, "register_bug_volatile.py",
          '\nASSAY_CHECK = {"faults": "crash=1"}\n'
          'ASSAY_EXPECT = {"verdict": "violation", "property": "acknowledged_writes_survive"}\n')
    # the same bug, expected as another property's violation: fails, saying what it found
    _spec(pytester, "register_bug_volatile.py",
          '\nASSAY_CHECK = {"faults": "crash=1"}\n'
          'ASSAY_EXPECT = {"verdict": "violation", "property": "other"}\n', "wrong_name.py")
    # a violation expected where none is (no crash, no loss): fails
    _spec(pytester, "register_bug_volatile.py", '\nASSAY_EXPECT = "violation"\n',
          "no_faults.py")
    r = run("--assay", "-v")
    r.assert_outcomes(passed=1, failed=2)
    out = r.stdout.str()
    assert "register_bug_volatile.py::system PASSED" in out
    assert ("a violation ('other') was expected, but the check found: property "
            "acknowledged_writes_survive") in out
    assert "no violation was found, but a violation was expected" in out


def test_shipped_parameter_sets_are_items_of_their_own(pytester, run):
    _spec(pytester, "two_phase_commit.py", "\nASSAY_PARAMS = [{'rm_count': 1}, "
          "{'rm_count': 2}]\n")
    r = run("--assay", "-v")
    r.assert_outcomes(passed=2)
    r.stdout.fnmatch_lines(["*two_phase_commit.py::system?rm_count=1? PASSED*",
                            "*two_phase_commit.py::system?rm_count=2? PASSED*"])


def test_an_incomplete_check_is_not_a_pass(pytester, run):
    _spec(pytester, "two_phase_commit.py")
    r = run("--assay", "--assay-max-states", "10")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*incomplete: the check stopped at the max-states bound*"])


def test_a_broken_spec_fails_its_item_with_the_error_not_a_traceback(pytester, run):
    (pytester.path / "broken.py").write_text(
        "from assay import Component, System\n\n"
        "class C(Component):\n    x: int\n\n"
        "def system() -> System:\n    s = System('b')\n    s.add('c', C)\n    return s\n")
    (pytester.path / "helper.py").write_text("from assay import Message\n\n"
                                             "class Ping(Message):\n    n: int\n")
    (pytester.path / "bad_expect.py").write_text(
        (SPECS / "two_phase_commit.py").read_text() + "\nASSAY_EXPECT = 'maybe'\n")
    r = run("--assay", "-v")
    r.assert_outcomes(failed=2)          # helper.py defines no system: no item
    out = r.stdout.str()
    assert "broken.py:4: error: field 'x' of C has no initial value" in out
    assert "bad_expect.py: ASSAY_EXPECT: verdict 'maybe' is not one of ok, violation" in out
    assert "Traceback" not in out and "def runtest" not in out


FIXTURE_TESTS = '''
import pytest

SPECS = {specs!r}

def test_ok(assay_check):
    r = assay_check(SPECS + "/register.py", faults="crash=1", writes=1)
    assert r.ok and r.states > 0

@pytest.mark.assay_expect("violation", property="acknowledged_writes_survive")
def test_expected(assay_check):
    r = assay_check(SPECS + "/register_bug_volatile.py", faults={{"crash": 1}})
    assert r.violation.name == "acknowledged_writes_survive"

@pytest.mark.assay_expect("ok")
def test_marked_ok_but_broken(assay_check):
    assay_check(SPECS + "/register_bug_volatile.py", faults="crash=1")

def test_assert_fails(assay_check):
    r = assay_check(SPECS + "/register_bug_volatile.py", params={{"writes": 2}}, faults="crash=1")
    assert r.ok
'''


def test_the_fixture_returns_results_and_the_marker_states_what_is_expected(pytester, run):
    pytester.makepyfile(test_fixture=FIXTURE_TESTS.format(specs=str(SPECS)))
    r = run("-v")
    r.assert_outcomes(passed=2, failed=2)
    out = r.stdout.str()
    assert "test_fixture.py::test_ok PASSED" in out
    assert "test_fixture.py::test_expected PASSED" in out
    # the marker's failure and a failed assertion both show the counterexample and trace
    assert "assay_check: a violation was found" in out
    assert "- assay check " in out                 # the report section of test_assert_fails
    # (before pytest's short summary, which with CI set repeats each failure's whole message)
    out = out.split("short test summary info")[0]
    assert out.count("✗ violation: property 'acknowledged_writes_survive' does not hold") == 2
    assert out.count("5. server restarts") == 2
    traces = sorted(p.name for p in (pytester.path / "assay-traces").iterdir())
    assert traces == ["test_assert_fails-1.html", "test_assert_fails-1.json",
                      "test_marked_ok_but_broken-1.html", "test_marked_ok_but_broken-1.json"]


def test_items_run_under_xdist(pytester, run):
    pytest.importorskip("xdist", reason="installed with the test extras")
    _spec(pytester, "two_phase_commit.py", "\nASSAY_PARAMS = [{'rm_count': 1}, "
          "{'rm_count': 2}]\n")
    _spec(pytester, "two_phase_commit_bug_majority.py")
    r = run("-p", "xdist", "-n", "2", "--assay")
    r.assert_outcomes(passed=2, failed=1)
    assert "shortest counterexample (5 steps):" in r.stdout.str()
    assert (pytester.path / "assay-traces" / "two_phase_commit_bug_majority-system.json"
            ).is_file()


def test_the_entry_point_loads_the_plugin_without_p(tmp_path):
    """pyproject's `pytest11` entry point, as an installed assay declares it: a pytest
    started with nothing but `--assay` finds the plugin through it."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["entry-points"]["pytest11"]
    assert declared == {"assay": "assay.pytest_plugin"}
    site = tmp_path / "site"
    info = site / "assay_entry_probe-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: assay-entry-probe\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    shutil.copy(SPECS / "two_phase_commit.py", tmp_path / "spec.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("PYTEST_ADDOPTS", None)          # not CI's `-n 2` (.ci/run): a pytest of its own
    r = subprocess.run([sys.executable, "-m", "pytest", "--assay", "-q", "-p", "no:cacheprovider",
                        "spec.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout


def test_the_shipped_specs_declare_the_bugs_they_show(pytester, run):
    """Every shipped spec that shows a bug says which (`ASSAY_EXPECT`, with `ASSAY_CHECK`
    where it takes a crash), so `pytest --assay specs/` passes — and fails once a bug is no
    longer found, or another is.  The bug twins and the register pair here (the whole folder
    is in tests/benchmarks/RESULTS.md: 32 items, ~14 s)."""
    shutil.copytree(SPECS, pytester.path / "specs")
    declared = sorted(p.relative_to(SPECS).as_posix() for p in SPECS.rglob("*.py")
                      if "ASSAY_EXPECT" in p.read_text())
    assert all("_bug_" in p or p == "dining_philosophers.py" for p in declared)
    assert len(declared) == len(list(SPECS.rglob("*_bug_*.py"))) + 1
    r = run("--assay", "specs", "-v", "-k", "bug or register or dining")
    r.assert_outcomes(passed=len(declared) + 1)      # + register.py, which survives a crash


VACUOUS_SPEC = '''
from assay import Component, System, action


class Counter(Component):
    n: int = 0

    @action(when=lambda self: self.n < 2)
    def bump(self):
        self.n += 1


def system() -> System:
    s = System("vac")
    s.add("c", Counter)

    @s.always
    def nothing_read(g):               # reads no state: constantly true
        return True

    s.terminal(lambda g: True)
    return s
'''

SHOW = "default::assay.pytest_plugin.AssayCheckWarning"
VACUOUS_WARNING = "property 'nothing_read' read nothing of the state"

VACUOUS_FIXTURE_TEST = '''
def test_vacuous(assay_check):
    assert assay_check("vacuous.py").ok
'''


def test_a_passing_check_whose_result_has_warnings_shows_them_as_pytest_warnings(pytester, run):
    # before: the item passed silently, the "vacuous?" note seen by no one
    (pytester.path / "vacuous.py").write_text(VACUOUS_SPEC)
    # (shown as a warning: this project's own `filterwarnings = ["error"]` reaches pytester's
    # in-process runs and would make it an error, as it would in a user's project)
    r = run("--assay", "-v", "-W", SHOW)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*vacuous.py::system PASSED*", "*warnings summary*",
                            f"*vacuous.py:13: AssayCheckWarning: assay check vacuous.py :: system: "
                            f"{VACUOUS_WARNING}*"])
    # the fixture too, at the test's line
    pytester.makepyfile(test_fix=VACUOUS_FIXTURE_TEST)
    r = run("test_fix.py", "-W", SHOW)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_fix.py:2: AssayCheckWarning: assay_check('vacuous.py'): "
                            f"{VACUOUS_WARNING}*"])


def test_a_check_warning_can_be_made_an_error_or_ignored(pytester, run):
    (pytester.path / "vacuous.py").write_text(VACUOUS_SPEC)
    r = run("--assay", "-W", "error::assay.pytest_plugin.AssayCheckWarning")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([f"*AssayCheckWarning*{VACUOUS_WARNING}*"])
    r = run("--assay", "-W", "ignore::assay.pytest_plugin.AssayCheckWarning")
    r.assert_outcomes(passed=1)
    assert "AssayCheckWarning" not in r.stdout.str()
