"""The Python API (`assay.api`): `assay.check`, `assay.simulate` and `assay.verify` take a spec
file, a module, a system function or a System, with parameters and faults as the commands take
them; their results print as the commands do, in one line (`repr`) and as HTML.  docs/API.md
runs as written."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_blocks import fenced_blocks

import assay
from assay.cli import main
from assay.errors import SpecError, UsageError
from assay.model.load import load_module

ROOT = Path(__file__).resolve().parent.parent
TPC = str(ROOT / "specs" / "two_phase_commit.py")
TPC_BUG = str(ROOT / "specs" / "two_phase_commit_bug_majority.py")
VOLATILE = str(ROOT / "specs" / "register_bug_volatile.py")


def test_check_takes_a_path_a_module_a_system_function_or_a_system():
    module = load_module(TPC)
    by_path = assay.check(TPC, rm_count=2)
    by_module = assay.check(module, rm_count=2)
    by_function = assay.check(module.system, params={"rm_count": 2})
    by_system = assay.check(module.system(2))
    assert {r.verdict for r in (by_path, by_module, by_function, by_system)} == {"ok"}
    assert {r.states for r in (by_path, by_module, by_function, by_system)} == {101}
    assert by_path.spec == TPC and by_path.params == {"rm_count": 2}
    assert by_system.spec == "" and by_system.params == {}


def test_parameters_are_typed_values_or_text_as_the_command_takes_them():
    assert assay.check(TPC, rm_count="2").states == assay.check(TPC, rm_count=2).states == 101
    with pytest.raises(UsageError, match="--param rm_count=three: expected an int"):
        assay.check(TPC, params={"rm_count": "three"})
    with pytest.raises(UsageError, match=r"rm_count=2\.5: expected an int, got float"):
        assay.check(TPC, rm_count=2.5)
    with pytest.raises(UsageError, match="has no parameter 'rms'"):
        assay.check(TPC, rms=2)
    with pytest.raises(UsageError, match="given twice"):
        assay.check(TPC, rm_count=2, params={"rm_count": 3})
    with pytest.raises(UsageError, match="built already"):
        assay.check(load_module(TPC).system(2), rm_count=2)
    with pytest.raises(UsageError, match="is a folder, not a spec file"):
        assay.check(str(ROOT / "specs"))
    with pytest.raises(UsageError, match="does not exist"):
        assay.check("no/such/spec.py")
    with pytest.raises(UsageError, match="cannot check a int"):
        assay.check(3)  # type: ignore[arg-type]


def test_faults_are_text_or_a_dict_and_find_the_crash_bug():
    assert assay.check(VOLATILE).ok                     # without a crash nothing is lost
    by_text = assay.check(VOLATILE, faults="crash=1")
    by_dict = assay.check(VOLATILE, faults={"crash": 1})
    for r in (by_text, by_dict):
        assert r.verdict == "violation"
        assert r.violation is not None and r.violation.name == "acknowledged_writes_survive"
        assert len(r.steps) == 5
    assert str(by_dict.faults) == "crash=1"
    with pytest.raises(UsageError, match="is not KIND=N"):
        assay.check(VOLATILE, faults="crush=1")


def test_a_spec_error_is_raised_with_the_commands_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from assay import Component, System\n\nclass C(Component):\n    x: int\n\n"
                   "def system() -> System:\n    s = System('b')\n    s.add('c', C)\n"
                   "    return s\n")
    with pytest.raises(SpecError) as e:
        assay.check(str(bad))
    assert str(e.value).startswith(f"{bad}:4: error: field 'x' of C has no initial value")


def test_the_text_of_a_result_is_what_the_command_prints():
    r = assay.check(TPC_BUG)
    out = CliRunner().invoke(main, ["check", TPC_BUG, "--quiet"]).output

    def timeless(text: str) -> str:             # the same words, wrapped at any width
        words = " ".join(text.split())
        return re.sub(r"time [\d.]+ s \([\d,]+ states/s\)", "", words)
    assert timeless(r.text()) == timeless(out)
    assert "shortest counterexample (5 steps):" in r.text()


def test_repr_says_what_was_checked_the_verdict_the_first_violation_and_the_counts():
    ok = repr(assay.check(TPC, rm_count=2))
    assert ok.startswith(f"<CheckResult {TPC} :: system(rm_count=2): ok: all properties hold "
                         "(exhaustive); 101 states, 207 transitions, depth 7, bfs, ")
    bad = repr(assay.check(VOLATILE, faults="crash=1"))
    assert ("with faults crash=1: violation: property acknowledged_writes_survive, after 5 "
            "steps: property 'acknowledged_writes_survive' does not hold; 24 states") in bad
    incomplete = repr(assay.check(TPC, max_states=10))
    assert ": incomplete: stopped at the max-states bound, no violation found so far;" in \
        incomplete
    assert "ok" not in incomplete.split(":")[2]


def test_the_html_of_a_result_shows_the_verdict_the_counts_and_the_steps():
    html = assay.check(VOLATILE, faults="crash=1")._repr_html_()
    assert html.startswith("<div class='assay-result'><table>")
    assert "✗ violation: property acknowledged_writes_survive" in html
    assert "<th style='text-align:left'>states</th><td style='text-align:left'>24</td>" in html
    assert html.count("<li>") == 5 and "server crashes" in html
    assert "&#x27;acknowledged_writes_survive&#x27;" in html       # escaped
    ok = assay.check(TPC, rm_count=2)._repr_html_()
    assert "✓ ok: all properties hold (exhaustive)" in ok and "<li>" not in ok


def test_simulate_from_a_file_or_a_system_gives_the_same_runs():
    by_path = assay.simulate(VOLATILE, faults="crash=0.05", runs=20, seed=3)
    by_system = assay.simulate(load_module(VOLATILE).system(), faults={"crash": 0.05}, runs=20,
                               seed=3)
    assert not by_path.ok and by_path.failures
    assert [(r.seed, r.events, r.violation) for r in by_path.reports] == \
        [(r.seed, r.events, r.violation) for r in by_system.reports]
    traces = by_path.traces()
    assert len(traces) == len(by_path.failures)
    assert traces[0].spec == VOLATILE and traces[0].verdict["name"] == \
        "acknowledged_writes_survive"
    assert repr(by_path).startswith(f"<Campaign {VOLATILE} :: system(writes=2): violation: "
                                    f"{len(by_path.failures)} of 20 runs; first run ")
    assert "✗" in by_path._repr_html_() and "found a violation" in by_path.text()
    quiet = assay.simulate(TPC, runs=5, steps=50)
    assert quiet.ok and "no violation in 5 runs (a sample of the behaviours, not a proof)" in \
        repr(quiet)
    with pytest.raises(UsageError, match="runs=0: must be a positive int"):
        assay.simulate(TPC, runs=0)


def test_verify_proves_or_refutes_with_the_reports_text():
    bad = assay.verify(str(ROOT / "specs" / "bank_transfer_bug_overdraft.py"))
    assert bad.verdict == "refuted" and not bad.ok
    assert "first refuted: Account.transfer: keeps the invariant" in repr(bad)
    assert "✗ some obligation refuted" in bad.text()
    assert "refuted" in bad._repr_html_()
    good = assay.verify(str(ROOT / "specs" / "bank_transfer.py"))
    assert good.ok and repr(good).endswith(" s>") and ": proved: every obligation proved;" in \
        repr(good)


PAGE = (ROOT / "docs" / "API.md").read_text()


def test_the_api_page_runs_as_written(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    blocks = fenced_blocks(PAGE, "python")
    assert len(blocks) >= 5
    ns: dict = {"__name__": "api_page"}
    for block in blocks:
        exec(compile(block, "docs/API.md", "exec"), ns)
    out = capsys.readouterr().out.splitlines()
    # the outputs the page shows in its comments
    assert out[0].startswith("<CheckResult specs/two_phase_commit.py :: system(rm_count=2): ok")
    assert "specs/two_phase_commit.py:89: error: --param rm_count=three: expected an int" in out
    assert "acknowledged_writes_survive" in out and "5" in out
    assert "✗ violation: property 'acknowledged_writes_survive' does not hold" in out
    assert any(line.startswith("Account transfer keeps the invariant") for line in out)


def test_the_api_page_documents_every_function_and_option():
    import inspect

    from assay import api

    for name in ("check", "simulate", "verify"):
        assert f"`assay.{name}(" in PAGE
        for p in inspect.signature(getattr(api, name)).parameters:
            if p not in ("spec", "kwparams"):
                assert f"`{p}" in PAGE, (name, p)
    for option in ("--assay", "--assay-max-states", "--assay-max-time", "--assay-traces",
                   "ASSAY_EXPECT", "ASSAY_PARAMS", "ASSAY_CHECK", "assay_check",
                   "assay_expect"):
        assert f"`{option}" in PAGE, option
    assert os.path.exists(ROOT / "tests" / "fixtures" / "typing" / "misspelled.py")


def test_the_readme_python_session_runs_as_shown(monkeypatch):
    import doctest

    monkeypatch.chdir(ROOT)
    session = fenced_blocks((ROOT / "README.md").read_text(), "pycon")
    assert len(session) == 1 and "assay.check(" in session[0]
    test = doctest.DocTestParser().get_doctest(session[0], {}, "README.md", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted == 4
