"""Correlated initial values: `initially(lambda self: ...)` filters the combinations of the
fields' `one_of` choices, `initially(dict(...), ...)` (or `s.add(..., initially=[...])`)
lists the initial states, and every engine starts from exactly these states — `check`
explores each, `simulate` draws one by seed, `assay run` starts from the first, a restart
takes one that agrees with the persistent fields, and `verify` assumes exactly them.

Fixtures: `tests/fixtures/initial/account.py` (the same component with four ways of giving
its initial states, one of them buggy), `replica.py` (a persistent field correlated with a
volatile one, across crashes) and `bad_*.py` (one spec error each, its line marked).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay import Component, Port, System, action, initially, invariant, one_of
from assay.checker import check
from assay.errors import SpecError
from assay.kernel import Faults, Kernel
from assay.model.component import component_info, persistent
from assay.model.load import build
from assay.simulator import FaultRates, Options, campaign, derive, run_once
from assay.verifier.verify import verify

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures" / "initial"
MARKER = "# <- error here"


def starts(system: System, name: str) -> list[dict]:
    """The initial field values of instance `name`, in the kernel's order."""
    k = Kernel(system)
    seen = []
    for s, _ in k.initial_states():
        v = k.local_values(s, name)
        if v not in seen:
            seen.append(v)
    return seen


def account(start: str) -> System:
    return build(FIX / "account.py", None, {"start": start})[0]


# --- the language ------------------------------------------------------------------------------

class Pair(Component):
    x: int = one_of(0, 1, 2)
    y: int = one_of(0, 1, 2)

    initially(lambda self: self.x + self.y == 2)


class Distinct(Component):
    x: int = one_of(0, 1, 2)
    y: int = one_of(0, 1, 2)

    initially(lambda self: self.x + self.y == 2)

    @initially
    def apart(self):
        return self.x != self.y


class Listed(Component):
    mode: str = "idle"
    level: int = 0
    tag: int = one_of(7, 8)

    initially(dict(mode="idle", level=0), dict(mode="busy", level=one_of(1, 2)))


def test_a_predicate_keeps_the_combinations_of_one_of_choices_where_it_holds():
    s = System("t")
    s.add("p", Pair)
    assert starts(s, "p") == [{"x": 0, "y": 2}, {"x": 1, "y": 1}, {"x": 2, "y": 0}]


def test_several_predicates_must_all_hold_and_initially_works_as_a_decorator():
    s = System("t")
    s.add("p", Distinct)
    assert starts(s, "p") == [{"x": 0, "y": 2}, {"x": 2, "y": 0}]


def test_a_list_gives_the_initial_states_and_unnamed_fields_keep_their_declared_values():
    s = System("t")
    s.add("l", Listed)
    assert starts(s, "l") == [
        {"mode": "idle", "level": 0, "tag": 7}, {"mode": "idle", "level": 0, "tag": 8},
        {"mode": "busy", "level": 1, "tag": 7}, {"mode": "busy", "level": 1, "tag": 8},
        {"mode": "busy", "level": 2, "tag": 7}, {"mode": "busy", "level": 2, "tag": 8}]


def test_a_keyword_of_add_sets_the_field_in_every_listed_state():
    s = System("t")
    s.add("l", Listed, tag=9)
    assert [(v["mode"], v["level"], v["tag"]) for v in starts(s, "l")] == [
        ("idle", 0, 9), ("busy", 1, 9), ("busy", 2, 9)]


def test_add_initially_lists_one_instances_states_and_replaces_the_classs_list():
    s = System("t")
    s.add("a", Listed, initially=[dict(mode="off", tag=8)])
    s.add("b", Listed)
    assert starts(s, "a") == [{"mode": "off", "level": 0, "tag": 8}]
    assert len(starts(s, "b")) == 6


def test_add_initially_predicate_sees_the_instances_name_and_adds_to_the_classs():
    s = System("t")
    for n in ("n0", "n1"):
        s.add(n, Pair, initially=lambda self: (self.x == 0) == (self.name == "n0"))
    assert starts(s, "n0") == [{"x": 0, "y": 2}]
    assert starts(s, "n1") == [{"x": 1, "y": 1}, {"x": 2, "y": 0}]


def test_repeated_states_count_once_in_the_order_first_given():
    s = System("t")
    s.add("a", Pair, initially=[dict(x=2, y=0), dict(x=one_of(0, 2), y=one_of(2, 0))])
    assert starts(s, "a") == [{"x": 2, "y": 0}, {"x": 0, "y": 2}]


def test_without_initially_the_initial_states_are_still_every_combination():
    class Free(Component):
        x: int = one_of(0, 1)
        y: int = one_of(0, 1)

    assert not component_info(Free).correlated({})
    assert component_info(Listed).correlated({})
    s = System("t")
    s.add("a", Free, initially=None)
    assert s.overrides["a"].initially is None and len(starts(s, "a")) == 4


# --- check: exact counts, and a bug in a correlated initial state -----------------------------

@pytest.mark.parametrize("start, initial, states", [
    ("product", 4, None), ("predicate", 2, 2), ("rows", 2, 2), ("rows_bug", 3, None)])
def test_check_explores_exactly_the_initial_states_given(start, initial, states):
    s = account(start)
    assert len(Kernel(s).initial_states()) == initial
    r = check(s)
    if states is None:                          # the open, empty account breaks an invariant
        assert r.verdict == "violation" and r.violation.kind == "invariant"
        assert r.trace.initial["acct"] == {"open": True, "balance": 0}
    else:
        assert r.verdict == "ok" and r.states == states


class Overdraft(Component):
    """The account without its second invariant: the bug shows when `withdraw` runs."""

    open: bool = one_of(False, True)
    balance: int = one_of(0, 5)

    invariant(lambda self: self.balance >= 0)
    initially(dict(open=False, balance=0), dict(open=True, balance=5),
              dict(open=True, balance=0))                      # the bug: open and empty

    @action(when=lambda self: self.open)
    def withdraw(self):
        self.balance -= 5
        self.open = False


class Sound(Overdraft):
    initially(lambda self: self.open == (self.balance > 0))


def _overdraft(cls: type) -> System:
    s = System("overdraft")
    s.add("acct", cls)

    @s.terminal
    def closed(g):
        return not g["acct"].open

    return s


def test_check_finds_a_bug_reachable_only_from_one_correlated_initial_state():
    r = check(_overdraft(Overdraft))
    assert r.verdict == "violation" and r.violation.kind == "invariant"
    assert r.trace.initial["acct"] == {"open": True, "balance": 0}
    assert [st.description for st in r.steps] == ["acct fires withdraw"]
    ok = check(_overdraft(Sound))             # the subclass filters the list it inherits
    assert ok.verdict == "ok" and ok.states == 2


def test_check_cli_reports_the_initial_state_of_the_counterexample(tmp_path):
    out = tmp_path / "cex.json"
    c = _cli("check", str(FIX / "account.py"), "-p", "start=rows_bug", "--trace-out",
             str(out))
    assert c.returncode == 1, c.stdout + c.stderr
    trace = json.loads(out.read_text())
    assert trace["initial"] == {"acct": {"open": True, "balance": 0}}
    again = _cli("replay", str(out))
    assert again.returncode == 1 and "reproduced" in again.stdout


# --- simulate and run ----------------------------------------------------------------------------

def test_simulate_draws_only_listed_initial_states_and_each_of_them():
    got = set()
    for seed in range(40):
        c = campaign(str(FIX / "account.py"), None, {"start": "predicate"}, seed=seed, runs=1,
                     opts=Options(steps=5), jobs=1)
        assert not c.failures
        # run 0 of the campaign, again (a one-process campaign fingerprints nothing)
        system, _, _ = build(str(FIX / "account.py"), None, {"start": "predicate"})
        k = Kernel(system)
        r = run_once(k, derive(seed, 0), 5, FaultRates())
        assert len(r.events) == c.reports[0].events
        got.add(k.fingerprint(r.initial))
    s = account("predicate")
    k = Kernel(s)
    allowed = {k.fingerprint(st) for st, _ in k.initial_states()}
    assert allowed <= got
    product = Kernel(account("product"))
    assert {product.fingerprint(st) for st, _ in product.initial_states()} - allowed
    bad = [st for st, _ in product.initial_states()
           if product.local_values(st, "acct") == {"open": True, "balance": 0}]
    assert product.fingerprint(bad[0]) not in got


def test_simulate_finds_the_correlated_bug_by_some_seed():
    c = campaign(str(FIX / "account.py"), None, {"start": "rows_bug"}, seed=1, runs=20,
                 opts=Options(steps=5), jobs=1)
    assert c.failures and all(r.initial == {"acct": {"open": True, "balance": 0}}
                              for r in c.failures)


def test_run_starts_each_instance_in_its_first_initial_state():
    s = System("t")
    s.add("p", Pair)
    s.add("l", Listed, initially=[dict(mode="busy", level=2), dict(mode="idle")])
    k = Kernel(s)
    for name, first in (("p", (0, 2)), ("l", ("busy", 2, 7))):
        inst = k.instances[k.index[name]]
        assert inst.table.values[k.local_initial(name)] == first


# --- restarts ------------------------------------------------------------------------------------

class Node(Component):
    peers = Port(many=True)
    id: int = persistent(one_of(0, 1))
    leader: bool = one_of(False, True)
    log: tuple = persistent(())

    initially(lambda self: self.leader == (self.id == 0))

    @action(when=lambda self: len(self.log) < 1)
    def note(self):
        self.log = self.log + (1,)


def test_a_restart_takes_the_volatile_fields_of_an_initial_state_that_agrees():
    info = component_info(Node)
    s = System("t")
    s.add("a", Node)
    o = s.overrides["a"]
    assert info.initial_values(o) == [(0, True, ()), (1, False, ())]
    # id 1 kept: the role of the initial state with id 1, whichever restart is taken
    assert info.restart_values((1, True, ()), o) == [(1, False, ()), (1, False, ())]
    assert info.restart_values((0, False, ()), o) == [(0, True, ()), (0, True, ())]


def test_a_restart_where_no_initial_state_agrees_takes_any_initial_states_volatile_fields():
    info = component_info(Node)
    s = System("t")
    s.add("a", Node)
    # the persistent log has moved on: no initial state has it
    assert info.restart_values((1, False, (1,)), s.overrides["a"]) == [
        (1, True, (1,)), (1, False, (1,))]


def test_without_correlation_a_restart_gives_the_same_states_as_before():
    class Plain(Component):
        keep: int = persistent(one_of(0, 1))
        x: int = one_of(0, 1)

    info = component_info(Plain)
    got = info.restart_values((1, 0), {})
    assert sorted(set(got)) == [(1, 0), (1, 1)] and len(got) == 4


def test_check_with_crashes_keeps_the_correlation_of_a_persistent_and_a_volatile_field():
    s, _, _ = build(FIX / "replica.py")
    r = check(s, faults=Faults(crash=1))
    assert r.verdict == "ok", r.violation
    assert len(Kernel(s, Faults(crash=1)).initial_states()) == 4


def test_the_runtime_restore_is_restart_choice_zero():
    s, _, _ = build(FIX / "replica.py")
    k = Kernel(s, Faults(crash=1))
    step = k.local_restore("a", {"id": 1})          # a's first initial state has id 0
    inst = k.instances[k.index["a"]]
    assert inst.table.values[step.local][:2] == (1, False)


# --- verify -------------------------------------------------------------------------------------

def _verdicts(system: System, target: str) -> list[str]:
    return [o.verdict for o in verify(system).obligations if o.target == target]


@pytest.mark.parametrize("start, init", [
    ("product", ["proved", "refuted"]), ("predicate", ["proved", "proved"]),
    ("rows", ["proved", "proved"]), ("rows_bug", ["proved", "refuted"])])
def test_verify_assumes_exactly_the_initial_states_given(start, init):
    r = verify(account(start))
    assert [o.verdict for o in r.obligations if o.target == "initial state"] == init
    refuted = [o for o in r.obligations if o.verdict == "refuted"]
    for o in refuted:
        assert o.counterexample.fields == {"open": True, "balance": 0}
    assert all(o.verdict == "proved" for o in r.obligations if o.target == "withdraw")


def test_verify_proves_a_restart_keeps_an_invariant_that_needs_the_correlation():
    s, _, _ = build(FIX / "replica.py")
    assert set(_verdicts(s, "restart")) == {"proved"}
    assert set(_verdicts(s, "initial state")) == {"proved"}


# --- spec errors ---------------------------------------------------------------------------------

BAD = {
    "bad_unknown_field.py": ("names 'balanse', which is not a field of Account",
                             "did you mean 'balance'?"),
    "bad_wrong_type.py": ("gives balance the value '5', which is not of type int", ""),
    "bad_packed_tuple.py": ("initial state 1 is tuple (False, 0), not a dict of field values",
                            "initially(dict(field=value, ...), ...)"),
    "bad_empty_list.py": ("lists no initial state", "initially=[dict(field=value, ...), ...]"),
    "bad_not_rows.py": ("takes a list of dicts of field values, not a dict",
                        "initially=[dict(...)]"),
    "bad_keyword_and_row.py": ("field 'balance' is given both as a keyword and in initially=",
                               "give it in one place"),
    "bad_none_hold.py": ("has no initial state: initially(...) (line 9) holds for none of its "
                         "4 candidate combinations", "fix the predicate"),
    "bad_predicate_raises.py": ("initially predicate of Account raised ZeroDivisionError",
                                "on a(open=False, balance=0)"),
    "bad_predicate_arity.py": ("initially predicate takes 2 argument(s)", "lambda self: ..."),
    "bad_outside_class.py": ("must be called in the body of a Component class",
                             "s.add(name, C, initially=...)"),
    "bad_reserved_field.py": ("field 'initially' of Account uses a reserved name",
                              "rename the field"),
    "bad_rows_twice.py": ("lists the initial states twice", "in one initially("),
}


def _marker(path: Path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if MARKER in line)


@pytest.mark.parametrize("fixture", sorted(BAD))
def test_a_wrong_initially_is_a_spec_error_at_its_line_with_the_fix(fixture):
    path = FIX / fixture
    message, note = BAD[fixture]
    with pytest.raises(SpecError) as e:
        build(path)
    err = e.value
    assert message in err.message
    assert note in " ".join(err.notes)
    assert err.location is not None and Path(err.location.file).resolve() == path.resolve()
    assert err.location.line == _marker(path)


def test_spec_errors_of_initially_print_without_a_traceback():
    for fixture in ("bad_unknown_field.py", "bad_none_hold.py", "bad_predicate_raises.py"):
        c = _cli("check", f"tests/fixtures/initial/{fixture}")
        assert c.returncode == 2
        assert f"tests/fixtures/initial/{fixture}:{_marker(FIX / fixture)}: error:" in c.stderr
        assert "Traceback" not in c.stderr + c.stdout


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=120)

