"""Red team of the verdicts' claims: each claim a summary prints has a spec with the bug it
must catch, and with that bug the claim is not printed (the right verdict, or a warning, is).

The audit (every claim of the summaries of check, simulate, verify, replay and run; `::` a
test here unless a file is named; * a defect this file found, fixed, failing before):

check
  "✓ all properties hold (exhaustive)"   a reachable bad state, a bound, a deadlock:
                                         test_check_all_properties_hold_exhaustive;
                                         test_cli.py::test_max_states_stops_incomplete
  ... with a state constraint            * test_check_exhaustive_says_what_state_constraints_
                                         left_out (warned: "exhaustive" within them)
  "0 transitions: is anything enabled?"  test_check_all_properties_hold_exhaustive; test_cli.py
                                         ::test_nothing_enabled_is_a_warning_on_stderr_and_in_
                                         the_summary
  "liveness, under F fairness: p"        test_check_liveness_under_the_fairness_it_names (weak
                                         and none fail, strong holds; a bound: "not checked")
  "orbits (one state each; symmetric)"   test_check_symmetry_reduces_only_where_it_is_sound
  "por: applied ... a real run"          test_por.py::test_corpus_same_verdict_bug_found_
                                         counterexample_replays
  "storage exact: no collision possible" test_compact.py::test_spilled_fingerprints_report_a_
                                         collision_probability
  "kept going: every state was explored" test_keep_going.py::test_cli_keep_going_text_and_
                                         exit_codes (bounded: "not every state")
  (vacuous?) / unregistered property     * test_a_vacuous_property_is_in_every_result_and_json;
                                         * test_a_property_never_registered_is_warned_of_by_
                                         every_command (and of a composite's function)
simulate
  "✓ no violation in N runs (a sample)"  test_simulate_no_violation_and_liveness_claims
  "no safety violation" + lassos,        * test_simulate_no_violation_and_liveness_claims
  "liveness (p): suspected/not covered"  (`Campaign.text()` said nothing of liveness)
  "shrunk to N" / shrunk_shortest        test_shrink_single.py::test_a_simulated_bug_is_written_
                                         shrunk_to_checks_shortest_and_replays
  "cut at the step bound", "no run took  test_redteam_sim.py::test_runs_cut_at_the_step_bound_
  a step"                                are_said_to_be, ::test_runs_that_take_no_step_are_..
  a failure that needs this hash seed    * test_simulate_warns_when_its_failure_depends_on_the_
                                         hash_seed
verify
  "✓ every obligation proved"            test_verify_every_obligation_proved_and_protocols_fit;
                                         test_redteam_verify.py::test_all_over_a_map_whose_
                                         condition_writes_a_field_is_unknown
  ... with --component                   * test_verify_of_one_component_says_the_others_were_
                                         not_checked
  ... of no obligation at all            * test_verify_of_nothing_says_so_without_a_check_mark
  ... interrupted ("decided so far")     * test_an_interrupted_verify_states_no_proof (JSON,
                                         repr and HTML said "proved")
  "✓ proved" (one obligation)            test_verify.py::test_a_requires_on_the_receiver_s_
                                         state_is_unknown_at_the_sender_never_proved,
                                         ::test_an_impossible_precondition_is_vacuous_not_proved
  "✓ protocols fit"                      test_verify_every_obligation_proved_and_protocols_fit;
                                         test_protocols.py::test_protocols_fit_only_when_
                                         compatibility_and_conformance_are_both_proved
  "not covered by verify: properties"    (a caveat; the properties are check's)
replay
  "✓ the run ends without a violation"   test_replay_claims
  "the recorded violation is reproduced" test_replay_claims; test_replay_cli.py::test_a_trace_
                                         whose_recorded_violation_differs_says_so
  "✓ the trace's lasso shows no          test_replay_claims
  violation"
  "✓ the store database holds ..."       test_external_store.py::test_run_keeps_the_store_in_
                                         sqlite_and_replay_agrees_then_catches_a_write_behind
run
  "✓ no violation"                       test_run_no_violation; test_runtime_local.py::test_
                                         run_cli_end_to_end
  ... with --monitor off                 * test_run_no_violation (nothing was checked)
  spec warnings with --deploy            * test_run_deploy_carries_the_spec_warnings

Also here: `s.fair(kind, Class)` from outside a composite (documented, not refused: see the
test) and the one home of these warnings, `assay.api.spec_warnings`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import assay

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The `assay` command, as a user runs it, in `cwd`."""
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=_env(**env), stdin=subprocess.DEVNULL,
                          timeout=120)


def cli_all(jobs: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Several commands at once (each a process of its own)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda a: cli(a, cwd), jobs))


def flat(text: str) -> str:
    """`text` with its line breaks and runs of spaces (a summary table's wrapping) as one
    space."""
    return " ".join(text.split())


def spec(tmp_path: Path, body: str, name: str = "spec.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


# --- a property defined in system() but never registered ---------------------------------------

COUNTER = """
from assay import Component, System, action


class Counter(Component):
    n: int = 0

    @action(when=lambda self: self.n < 3)
    def tick(self):
        self.n += 1


class Other(Component):
    got: int = 0

"""

UNREGISTERED = COUNTER + """
def system() -> System:
    s = System("unreg")
    s.add("c", Counter)

    def small(g):                      # the bug: @s.always left out, so never checked
        return all(c.n < 2 for c in g.instances(Counter))

    @s.always
    def bounded(g):
        return all(c.n <= 3 for c in g.instances(Counter))

    s.terminal(lambda g: True)
    return s
"""

UNREGISTERED_NOTE = "spec.py:20) in system() looks like a property"


def test_a_property_never_registered_is_warned_of_by_every_command(tmp_path: Path) -> None:
    # `small` is never evaluated: `check` said ✓ "all properties hold" as if it had been
    spec(tmp_path, UNREGISTERED)
    results = cli_all([["check", "spec.py", "--json", "-q"],
                       ["simulate", "spec.py", "--runs", "2", "--steps", "5", "-j", "1",
                        "--json", "-q"],
                       ["verify", "spec.py", "--json"],
                       ["run", "spec.py", "--for", "1", "--json"]], tmp_path)
    for r in results:
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert any(UNREGISTERED_NOTE in w and "'small'" in w and "never registered" in w
                   for w in doc["warnings"]), (doc["command"], doc["warnings"])
        assert f"warning: function 'small' ({UNREGISTERED_NOTE}" in r.stderr, r.stderr
    # and the Python API's results carry it
    path = tmp_path / "spec.py"
    for result in (assay.check(path), assay.simulate(path, runs=2, steps=5),
                   assay.verify(path)):
        assert any(UNREGISTERED_NOTE in w for w in result.warnings), result
        # (the summary wraps and may fold a deep tmp path: the words after it, not the path)
        assert "looks like a property (one parameter) but is never registered" \
            in flat(result.text()), result.text()
        assert "never registered" in result._repr_html_()     # (a notebook's summary)


def test_functions_that_are_registered_used_or_methods_are_not_warned_of(
        tmp_path: Path) -> None:
    path = spec(tmp_path, COUNTER + """
def system() -> System:
    s = System("fine")
    s.add("c", Counter)

    def small(g):                      # used by a property
        return all(c.n < 4 for c in g.instances(Counter))

    def also(g):
        return small(g)

    s.always(also)                     # registered by a call
    s.leads_to(lambda g: True, lambda g: True, name="trivial")
    done = lambda g: True              # registered below
    s.terminal(done)

    def limit(x):                      # used only inside a class defined here
        return x < 1

    class Local(Other):                # a method is not a property
        def helper(self):
            return self.got

        @action(when=lambda self: limit(self.got))
        def bump(self):
            self.got += 1

    def helper(a, b):                  # two parameters: not a property
        return a
    return s
""")
    assert assay.check(path).warnings == ()
    from assay.model.load import build

    assert build(path)[0].load_warnings == []


def test_an_unregistered_property_of_a_composite_is_warned_of_once(tmp_path: Path) -> None:
    path = spec(tmp_path, COUNTER + """
def part() -> System:
    s = System("part")
    s.add("c", Counter)

    def small(g):                      # the composite's own, never registered
        return True
    return s


def system() -> System:
    s = System("outer")
    s.add("a", part)
    s.add("b", part)
    s.terminal(lambda g: True)
    return s
""")
    notes = [w for w in assay.check(path).warnings if "never registered" in w]
    assert len(notes) == 1 and "'small'" in notes[0] and "in part()" in notes[0], notes


def test_an_unregistered_lambda_is_warned_of(tmp_path: Path) -> None:
    path = spec(tmp_path, COUNTER + """
def system() -> System:
    s = System("lam")
    s.add("c", Counter)
    small = lambda g: all(c.n < 2 for c in g.instances(Counter))
    s.terminal(lambda g: True)
    return s
""")
    assert any("'small'" in w and "never registered" in w
               for w in assay.check(path).warnings)


# --- "vacuous?": a property that reads nothing, in every result --------------------------------

VACUOUS = COUNTER + """
def system() -> System:
    s = System("vac")
    s.add("c", Counter)

    @s.always
    def few(g):                        # no Other in the system: constantly true
        return all(o.got < 5 for o in g.instances(Other))

    s.terminal(lambda g: True)
    return s
"""

VACUOUS_NOTE = "property 'few' read nothing of the state: it is constantly true (vacuous?)"


def test_a_vacuous_property_is_in_every_result_and_json(tmp_path: Path) -> None:
    # `assay.simulate` returned no warning at all, and `simulate --json` / `run --json` put
    # it on stderr only
    path = spec(tmp_path, VACUOUS)
    assert VACUOUS_NOTE in assay.simulate(path, runs=2, steps=5).warnings
    assert VACUOUS_NOTE in flat(assay.simulate(path, runs=2, steps=5).text())
    assert VACUOUS_NOTE in assay.check(path).warnings
    results = cli_all([["simulate", "spec.py", "--runs", "2", "--steps", "5", "-j", "1",
                        "--json", "-q"],
                       ["run", "spec.py", "--for", "1", "--json"],
                       ["check", "spec.py", "--json", "-q"]], tmp_path)
    for r in results:
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert VACUOUS_NOTE in doc["warnings"], (doc["command"], doc)
    r = cli(["run", "spec.py", "--for", "1"], tmp_path)
    assert VACUOUS_NOTE in flat(r.stdout), r.stdout     # in the summary, not only on stderr


def test_a_property_that_reads_the_state_has_no_warning(tmp_path: Path) -> None:
    path = spec(tmp_path, VACUOUS.replace("o.got < 5 for o in g.instances(Other)",
                                          "c.n < 5 for c in g.instances(Counter)"))
    assert assay.simulate(path, runs=2, steps=5).warnings == ()
    assert assay.check(path).warnings == ()


# --- s.fair(kind, Class) from outside a composite ----------------------------------------------

def test_a_class_rule_from_outside_covers_inner_instances_the_composite_left_without():
    # Decided: documented (System.fair), not refused.  A class names no instance, so it
    # breaks no encapsulation: like the outer system's default fairness, which reaches the
    # same instances, it covers the inner instances of the class that the composite's own
    # function left without fairness; what the composite said (a rule for an instance, a
    # class rule, its default) holds first, whether the outer rule comes before or after
    # the composite is added.  Refusing would make `s.fair("weak", Node)` an error or not
    # according to whether some Node happens to sit inside a composite.
    from assay import Component, Port, System
    from assay.kernel import Kernel

    class Node(Component):
        p = Port()
        n: int = 0

    class Leaf(Node):
        pass

    def left() -> System:                 # says nothing of fairness
        s = System("left")
        s.add("x", Node)
        s.add("y", Leaf)
        return s

    def said() -> System:                 # says it of each instance, one way or another
        s = System("said", fairness="strong")
        s.fair("none", s.add("x", Node))
        s.add("y", Leaf)                  # its default: strong
        return s

    def by_class() -> System:
        s = System("by_class")
        s.fair("strong", Leaf)
        s.add("y", Leaf)
        return s

    for before in (True, False):
        s = System("outer")
        if before:
            s.fair("weak", Node)
        s.add("a", left)
        s.add("b", said)
        s.add("c", by_class)
        s.add("own", Node)
        if not before:
            s.fair("weak", Node)
        k = Kernel(s)
        fair = {i.name: k._instance_fairness(i.index) for i in k.instances}
        assert fair == {"a.x": "weak", "a.y": "weak", "b.x": "none", "b.y": "strong",
                        "c.y": "strong", "own": "weak"}, (before, fair)
    # without the class rule, the inner instances the composites left have none
    s = System("outer")
    s.add("a", left)
    k = Kernel(s)
    assert {k._instance_fairness(i.index) for i in k.instances} == {"none"}


# --- a failing run that depends on the hash seed -----------------------------------------------

HASHY = """
from assay import Component, System, action


class Node(Component):
    picked: str = ""

    @action(when=lambda self: self.picked == "")
    def pick(self):
        self.picked = "apple" if BUG else "banana"


def system() -> System:
    s = System("hashy")
    s.add("n", Node)

    @s.always
    def no_apple(g):
        return all(n.picked != "apple" for n in g.instances(Node))

    s.terminal(lambda g: True)
    return s
"""


def test_simulate_warns_when_its_failure_depends_on_the_hash_seed(tmp_path: Path) -> None:
    # hash("apple") is even under PYTHONHASHSEED=0 and odd under 1 and 2: two `simulate`
    # commands gave different verdicts, and the one that failed did not say why
    spec(tmp_path, HASHY.replace("BUG", 'hash("apple") % 2 == 0'), "hashy.py")
    spec(tmp_path, HASHY.replace("BUG", "True"), "plain.py")
    args = ["--runs", "2", "--steps", "5", "-j", "1", "--json", "-q"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashy, plain = pool.map(lambda f: cli(["simulate", f, *args], tmp_path,
                                              PYTHONHASHSEED="0"), ["hashy.py", "plain.py"])
    assert hashy.returncode == 1, hashy.stdout + hashy.stderr
    doc = json.loads(hashy.stdout)
    assert doc["verdict"] == "violation"
    note = [w for w in doc["warnings"] if "depends on the process" in w]
    assert note and "PYTHONHASHSEED=1 and 2" in note[0] and "run 0" in note[0], doc
    assert "warning: the failure of run 0" in hashy.stderr
    # a failure that does not depend on it: no such warning
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert json.loads(plain.stdout)["warnings"] == [], plain.stdout
    # and the other hash seed's verdict, for the record: no violation at all
    other = cli(["simulate", "hashy.py", *args], tmp_path, PYTHONHASHSEED="1")
    assert other.returncode == 0 and json.loads(other.stdout)["verdict"] == "ok"


# --- the audit: each claim of a summary, with the bug it must not survive --------------------

def counter(prop: str = "c.n <= 3", limit: int = 3, terminal: bool = True,
            extra: str = "") -> str:
    """A counter ticking up to `limit`, with `always` property `prop` over it."""
    return COUNTER.replace("self.n < 3", f"self.n < {limit}") + f"""
def system() -> System:
    s = System("counter")
    s.add("c", Counter)

    @s.always
    def small(g):
        return all({prop} for c in g.instances(Counter))
{extra}
    {"s.terminal(lambda g: True)" if terminal else ""}
    return s
"""


LIVE = """
from assay import Component, System, action


class Worker(Component):
    done: bool = False
    flag: bool = False

    @action(when=lambda self: not self.done)
    def spin(self):
        self.flag = not self.flag

    @action(when=lambda self: not self.done and self.flag)   # enabled every other step
    def finish(self):
        self.done = True


def system() -> System:
    s = System("live")
    s.add("w", Worker)

    @s.eventually
    def finished(g):
        return FINISHED

    s.terminal(lambda g: g["w"].done)
    return s
"""


def test_check_all_properties_hold_exhaustive(tmp_path: Path) -> None:
    ok = flat(assay.check(spec(tmp_path, counter(), "ok.py")).text())
    assert "✓ all properties hold (exhaustive)" in ok
    # a reachable state breaks the property
    bad = assay.check(spec(tmp_path, counter("c.n < 3"), "bad.py"))
    assert bad.verdict == "violation" and "all properties hold" not in bad.text()
    assert "✗ violation: property 'small' does not hold" in bad.text()
    # a bound stopped the search before the state that breaks it: not "exhaustive"
    cut = assay.check(tmp_path / "bad.py", max_states=2)
    assert cut.verdict == "incomplete" and cut.exit_code == 3
    assert "exhaustive" not in cut.text() and "✓" not in cut.text()
    assert "? incomplete: stopped at the max-states bound" in flat(cut.text())
    # a state with nothing enabled that is not final: a deadlock, not "all hold"
    stuck = assay.check(spec(tmp_path, counter(terminal=False), "stuck.py"))
    assert stuck.verdict == "violation" and stuck.violation.kind == "deadlock"
    assert "all properties hold" not in stuck.text()
    # nothing enabled at all (deadlocks not reported): ✓, but with the warning that
    # nothing beyond the initial state was checked
    idle = assay.check(spec(tmp_path, counter(limit=0), "idle.py"))
    assert idle.warnings[0].startswith("0 transitions: is anything enabled?")
    assert "0 transitions: is anything enabled?" in flat(idle.text())


def test_check_exhaustive_says_what_state_constraints_left_out(tmp_path: Path) -> None:
    # the property fails at n=3, beyond the constraint n < 2: "✓ all properties hold
    # (exhaustive)" with no word that the constraint bounded the search
    body = counter("c.n < 3", extra="\n    s.constraint(lambda g: g['c'].n < 2)\n")
    r = assay.check(spec(tmp_path, body))
    assert r.verdict == "ok"
    assert r.constraints is not None and r.constraints["pruned"] is True, r.constraints
    assert "exhaustive within the state constraints" in flat(r.text())
    r = cli(["check", "spec.py", "--json", "-q"], tmp_path)
    assert json.loads(r.stdout)["constraints"]["pruned"] is True, r.stdout
    # without a constraint, no such note
    free = assay.check(spec(tmp_path, counter(), "free.py"))
    assert free.warnings == () and free.constraints is None


def test_check_liveness_under_the_fairness_it_names(tmp_path: Path) -> None:
    path = spec(tmp_path, LIVE.replace("FINISHED", 'g["w"].done'))
    # `finish` is enabled every other step: weak fairness does not force it, strong does
    strong = assay.check(path, fairness="strong")
    assert "liveness, under strong fairness: finished" in strong.text()
    for fairness in ("weak", "none"):
        r = assay.check(path, fairness=fairness)
        assert r.verdict == "violation" and r.violation.kind == "liveness", fairness
        assert "liveness, under" not in r.text() and "all properties hold" not in r.text()
    # a bound: liveness needs every state, so it is said not checked
    cut = flat(assay.check(path, fairness="strong", max_states=1).text())
    assert "liveness not checked: it needs every state" in cut and "liveness, under" not in cut


def test_check_symmetry_reduces_only_where_it_is_sound(tmp_path: Path) -> None:
    # a declared symmetry that a property breaks (it reads 'b' by name): reducing to one
    # state per orbit could hide b's state; the reduction is not applied, the bug found
    body = counter(limit=2, extra="""
    s.symmetric(*[s.add(n, Counter) for n in ("a", "b")])

    @s.always
    def b_small(g):
        return g["b"].n < 2
""")
    r = assay.check(spec(tmp_path, body))
    assert r.verdict == "violation" and r.violation.name == "b_small"
    text = flat(r.text())
    assert "orbits " not in text and "symmetry not applied: property 'b_small' is not " \
        "symmetric" in text, text


def test_simulate_no_violation_and_liveness_claims(tmp_path: Path) -> None:
    ok = flat(assay.simulate(spec(tmp_path, counter(), "ok.py"), runs=3, steps=10).text())
    assert "✓ no violation in 3 runs (a sample of the behaviours, not a proof)" in ok
    bad = assay.simulate(spec(tmp_path, counter("c.n < 3"), "bad.py"), runs=3, steps=10)
    assert not bad.ok and "no violation" not in bad.text()
    assert "✗ 3 of 3 runs found a violation" in bad.text()
    # a liveness bug: the summary said "✓ no safety violation" and, from Python
    # (`Campaign.text()`), nothing of the lassos the runs walked nor of liveness
    live = assay.simulate(spec(tmp_path, LIVE.replace("FINISHED", 'g["w"].done'), "live.py"),
                          runs=3, steps=20)
    text = flat(live.text())
    assert live.exit_code == 1 and "✓ no violation" not in text
    assert "runs walked a lasso that breaks a liveness property" in text, text
    assert "liveness (finished): suspected" in text, text
    # no lasso walked: liveness is said not covered, never held
    fine = assay.simulate(spec(tmp_path, LIVE.replace("FINISHED", "True"), "fine.py"),
                          runs=3, steps=20)
    assert "liveness (finished): not covered" in flat(fine.text())


def test_verify_every_obligation_proved_and_protocols_fit(tmp_path: Path) -> None:
    inv = COUNTER.replace("    n: int = 0\n", "    n: int = 0\n    invariant(lambda self: "
                          "self.n <= LIMIT)\n").replace("from assay import Component,",
                                                        "from assay import Component, "
                                                        "invariant,") + """
def system() -> System:
    s = System("inv")
    s.add("c", Counter)
    return s
"""
    ok = assay.verify(spec(tmp_path, inv.replace("LIMIT", "3"), "ok.py"))
    assert "✓ every obligation proved" in ok.text()
    bad = assay.verify(spec(tmp_path, inv.replace("LIMIT", "2"), "bad.py"))
    assert bad.verdict == "refuted" and "every obligation proved" not in bad.text()
    assert "✗ some obligation refuted" in bad.text()
    proto = """
from assay import Component, Message, Port, System, action, on
from assay import protocol as p


class Ping(Message):
    pass


ONCE = p.send(Ping)


class Client(Component):
    out = Port(ONCE)
    sent: int = 0

    @action(when=lambda self: self.sent < SENDS)
    def ping(self):
        self.sent += 1
        self.out.send(Ping())


class Server(Component):
    inp = Port(ONCE.dual())

    @on(Ping)
    def on_ping(self, m):
        pass


def system() -> System:
    s = System("proto")
    s.connect(s.add("c", Client).out, s.add("s", Server).inp)
    return s
"""
    fit = assay.verify(spec(tmp_path, proto.replace("SENDS", "1"), "fit.py"))
    assert "✓ protocols fit" in fit.text(), fit.text()
    # the code sends twice on a protocol of one send: the automata are compatible, the
    # code does not keep to them
    misfit = assay.verify(spec(tmp_path, proto.replace("SENDS", "2"), "misfit.py"))
    assert "protocols fit" not in misfit.text().replace("do not fit", "")
    assert "✗ protocols do not fit: Client.ping" in misfit.text()


def test_verify_of_nothing_says_so_without_a_check_mark(tmp_path: Path) -> None:
    # a component with no handler, action or invariant: "✓ every obligation proved" of 0
    r = assay.verify(spec(tmp_path, """
from assay import Component, System


class Idle(Component):
    n: int = 0


def system() -> System:
    s = System("idle")
    s.add("i", Idle)
    return s
"""))
    assert not r.obligations and r.exit_code == 0
    text = r.text()
    assert "✓" not in text and "every obligation proved" not in text, text
    assert "? nothing to verify: no obligation" in text
    assert "nothing to verify" in repr(r) and "✓" not in r._repr_html_().split("</tr>")[0]


def test_verify_of_one_component_says_the_others_were_not_checked(tmp_path: Path) -> None:
    # `--component Good`: "✓ every obligation proved" of a system whose Counter breaks its
    # invariant, and no word that Counter (and the connections) were left out
    body = COUNTER.replace("from assay import Component,", "from assay import Component, "
                           "invariant,") + """
class Good(Component):
    m: int = 0
    invariant(lambda self: self.m <= 1)

    @action(when=lambda self: self.m < 1)
    def tock(self):
        self.m += 1


def system() -> System:
    s = System("two")
    s.add("c", Counter)
    s.add("g", Good)
    return s
""".replace("class Good", "class Bad(Counter):\n    invariant(lambda self: self.n <= 2)\n\n\n"
            "class Good").replace('s.add("c", Counter)', 's.add("c", Bad)')
    path = spec(tmp_path, body)
    assert assay.verify(path).verdict == "refuted"
    for name in ("Good", "g"):
        one = assay.verify(path, component=name)
        assert one.verdict == "proved"
        assert "only component Good was verified" in flat(one.text())
        assert any("the obligations of Bad and of the connections were not checked" in w
                   for w in one.warnings), one.warnings
    assert assay.verify(path).warnings == ()


def test_replay_claims(tmp_path: Path) -> None:
    spec(tmp_path, LIVE.replace("FINISHED", 'g["w"].done'), "live.py")
    spec(tmp_path, counter("c.n < 3"), "bad.py")
    sims = cli_all([["simulate", f, "--runs", "2", "--steps", "20", "-j", "1", "-q",
                     "--out", "out"] for f in ("live.py", "bad.py")], tmp_path)
    assert [r.returncode for r in sims] == [1, 1], [r.stdout + r.stderr for r in sims]
    lasso = str(sorted((tmp_path / "out").glob("live-*-lasso.json"))[0])
    failing = str(sorted((tmp_path / "out").glob("bad-*.json"))[0])
    # the property fixed (it holds on the cycle): the lasso "shows no violation" there
    spec(tmp_path, LIVE.replace("FINISHED", "True"), "fixed.py")
    spec(tmp_path, counter(), "ok.py")
    live, fixed, bad, ok = cli_all([["replay", lasso, "--spec", "live.py"],
                                    ["replay", lasso, "--spec", "fixed.py"],
                                    ["replay", failing, "--spec", "bad.py"],
                                    ["replay", failing, "--spec", "ok.py"]], tmp_path)
    assert live.returncode == 1 and "lasso shows no violation" not in live.stdout
    assert "the recorded violation is reproduced" in live.stdout, live.stdout
    assert fixed.returncode == 0 and "✓ the trace's lasso shows no violation" in fixed.stdout
    assert bad.returncode == 1 and "ends without a violation" not in bad.stdout
    assert "the recorded violation is reproduced" in bad.stdout, bad.stdout
    assert ok.returncode == 0 and "✓ the run ends without a violation (the trace recorded " \
        "property)" in ok.stdout, ok.stdout


def test_run_no_violation(tmp_path: Path) -> None:
    inv = COUNTER.replace("    n: int = 0\n", "    n: int = 0\n    invariant(lambda self: "
                          "self.n <= LIMIT)\n").replace("from assay import Component,",
                                                        "from assay import Component, "
                                                        "invariant,") + """
def system() -> System:
    s = System("inv")
    s.add("c", Counter)
    return s
"""
    spec(tmp_path, inv.replace("LIMIT", "3"), "ok.py")
    spec(tmp_path, inv.replace("LIMIT", "2"), "bad.py")
    ok, bad, off, off_json = cli_all([["run", "ok.py", "--for", "1"],
                                      ["run", "bad.py", "--for", "1"],
                                      ["run", "bad.py", "--for", "1", "--monitor", "off"],
                                      ["run", "bad.py", "--for", "1", "--monitor", "off",
                                       "--json"]], tmp_path)
    assert ok.returncode == 0 and "✓ no violation" in ok.stdout, ok.stdout + ok.stderr
    assert bad.returncode == 1 and "no violation" not in bad.stdout, bad.stdout
    assert re.search(r"✗ [\d,]+ violation\(s\) rejected", bad.stdout), bad.stdout
    # nothing monitored: "✓ no violation" was printed of an invariant broken at every step
    assert off.returncode == 0 and "✓" not in off.stdout, off.stdout
    assert "? not monitored (--monitor off)" in off.stdout, off.stdout
    doc = json.loads(off_json.stdout)
    assert doc["violation_count"] == 0 and any("--monitor off" in w for w in doc["warnings"])


def test_an_interrupted_verify_states_no_proof(tmp_path: Path) -> None:
    # Ctrl-C with every obligation decided so far proved: the text said so, but the JSON
    # verdict, the repr and the notebook's HTML said "proved" (✓, green) of the whole
    from dataclasses import replace

    done = assay.verify(spec(tmp_path, counter()))
    assert done.to_json()["verdict"] == "proved"
    cut = replace(done, interrupted=True, not_checked=("Counter.tick",))
    assert cut.to_json()["verdict"] == "unknown" and cut.to_json()["stopped"] == "interrupted"
    assert "proved:" not in repr(cut) and "every obligation proved" not in repr(cut)
    assert "every obligation decided so far proved" in repr(cut)
    assert "✓" not in cut._repr_html_().split("</tr>")[0]
    text = flat(cut.text())
    assert "✓ every obligation proved" not in text
    assert "✓ every obligation decided so far proved" in text and "not checked: " \
        "Counter.tick" in text


def test_run_deploy_carries_the_spec_warnings(tmp_path: Path) -> None:
    # `run --deploy` built the system and warned of nothing (`run` alone did)
    from tests.runtime_support import free_ports, write_deployment

    path = spec(tmp_path, VACUOUS)
    (port,) = free_ports(1)
    dep = write_deployment(tmp_path / "deploy.toml", path, {"one": (port, ["c"])})
    r = cli(["run", "--deploy", str(dep), "--for", "1", "--json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert VACUOUS_NOTE in json.loads(r.stdout)["warnings"]
    assert f"warning: {VACUOUS_NOTE}" in r.stderr
