"""Model checker red team, second round: what the first differential (test_redteam_check.py)
does not cover.

Partial-order reduction on random systems of independent groups (choices, start handlers,
guarded receives, protocols, contracts, exceptions, several initial states, properties
that read two groups or read one only sometimes) against the naive reference; the worker
processes, the spill to disk past `--max-memory` and the full-state search against one
process on the first round's random specs; liveness verdicts of every engine alike, and
without fairness equal to a plain reference (a cycle or a stop among the states where the
goal has not held); a checkpointed check killed (SIGKILL, Ctrl-C) at random points and
resumed, against one never stopped, and a checkpoint of another check refused; the bounds
never reported as exhaustive; a state constraint that cut the search said in the report.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from test_redteam_check import found, reference, specs

from assay.checker import CheckResult, check
from assay.errors import UsageError
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel
from assay.kernel.liveness import can_stop
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]


def quick(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))


def write_spec(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


# --- partial-order reduction: independent groups, against the reference ---------------------

POR_PROPERTIES = [
    "g['p0'].x + g['c1'].got != {t}",              # two groups that never talk: one order
    "not (g['k0'].c == 1 and g['k1'].c == {t})",    # two unrelated counters
    "g['p0'].x < 2 or g['k0'].c <= {t}",            # the counter read only sometimes
    "g['c0'].got <= {t}",
    "g['k1'].c < {t} or g['p1'].x == 0",
    "sum(k.c for k in g.instances(K)) != {t}",
    "g['c0'].last != 2 or g['c1'].last != {t}",
]


@st.composite
def por_specs(draw: Any) -> str:
    """Two producer/consumer pairs (optionally a protocol on each link, the consumers
    forwarding to each other), and one or two counters nobody talks to; producers that
    choose their step or start elsewhere, consumers with a guard, a precondition, an
    invariant or an exception; counters with two initial states; 1-2 properties."""
    top = [draw(st.integers(1, 3)) for _ in range(2)]
    choose, start, proto = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    ack = draw(st.booleans()) or proto
    forward = draw(st.booleans())
    guard = draw(st.sampled_from(["", ", when=lambda self, m: m.v != 2 or self.got > 0"]))
    req = draw(st.sampled_from([None, "m.v < 3", "self.got < 2"]))
    boom = draw(st.sampled_from([None, "self.got == 3 and m.v == 1"]))
    inv = draw(st.sampled_from([None, "self.got <= 4"]))
    counters, two_starts = draw(st.integers(1, 2)), draw(st.booleans())
    count_to = draw(st.integers(1, 3))
    network = draw(st.sampled_from(["unordered", "fifo"]))
    props = draw(st.lists(st.sampled_from(POR_PROPERTIES), min_size=1, max_size=2,
                          unique=True))
    terminal = draw(st.sampled_from([None, "True", "g['c0'].got > 0"]))
    lines = [
        "from assay import Component, Message, Port, System, action, on, on_start, "
        "requires, invariant",
        "from assay import protocol as p",
        "class Msg(Message):\n    v: int",
        "class Ack(Message):\n    v: int",
        "class Fwd(Message):\n    v: int",
        "PROTO = p.loop(lambda again: p.send(Msg) >> p.recv(Ack) >> again)" if proto
        else "PROTO = None",
        "class P(Component):",
        "    out = Port(PROTO)",
        "    x: int = 0",
        "    top: int = 1",
        "    busy: bool = False",
    ]
    if start:
        lines += ["    @on_start", "    def hello(self):",
                  "        self.x = 1 if self.top > 2 else 0"]
    lines += ["    @action(when=lambda self: self.x < self.top"
              + (" and not self.busy)" if proto else ")"), "    def emit(self):"]
    lines += (["        self.x = min(self.x + self.choose((1, 2)), self.top)"] if choose
              else ["        self.x = self.x + 1"])
    lines += ["        self.busy = True" if proto else "        pass",
              "        self.out.send(Msg(self.x))",
              "    @on(Ack)", "    def ack(self, m):", "        self.busy = False",
              "class C(Component):",
              "    inp = Port(PROTO.dual() if PROTO else None)",
              "    fwd = Port()", "    side = Port(many=True)",
              "    got: int = 0", "    last: int = 0"]
    if inv:
        lines.append(f"    invariant(lambda self: {inv})")
    lines.append(f"    @on(Msg{guard})")
    if req:
        lines.append(f"    @requires(lambda self, m: {req})")
    lines += ["    def msg(self, m):", "        self.got = self.got + m.v",
              "        self.last = m.v"]
    if boom:
        lines += [f"        if {boom}:", "            raise ValueError('boom')"]
    if ack:
        lines.append("        self.inp.send(Ack(m.v))")
    if forward:
        lines += ["        if m.v == 1:", "            self.fwd.send(Fwd(m.v))"]
    lines += ["    @on(Fwd)", "    def fw(self, m):", "        self.last = 5",
              "class K(Component):", "    c: int = 0",
              f"    @action(when=lambda self: self.c < {count_to})",
              "    def tick(self):", "        self.c = self.c + 1",
              "def system() -> System:",
              f"    s = System('por_random', network={network!r})"]
    for i in range(2):
        lines += [f"    p{i} = s.add('p{i}', P, initially=[dict(top={top[i]})])",
                  f"    c{i} = s.add('c{i}', C)", f"    s.connect(p{i}.out, c{i}.inp)"]
    if forward:
        lines += ["    s.connect(c0.fwd, c1.side)", "    s.connect(c1.fwd, c0.side)"]
    for i in range(counters):
        lines.append(f"    s.add('k{i}', K" + (", initially=[dict(c=0), dict(c=1)])"
                                                if two_starts else ")"))
    for j, prop in enumerate(props):
        if counters < 2:
            prop = prop.replace("k1", "k0")
        lines += ["    @s.always", f"    def q{j}(g):",
                  "        return " + prop.format(t=draw(st.integers(0, 5)))]
    if terminal:
        lines += ["    @s.terminal", "    def t(g):", f"        return {terminal}"]
    lines.append("    return s")
    return "\n".join(lines) + "\n"


@quick(40)
@given(por_specs())
def test_partial_order_reduction_agrees_with_the_reference_on_independent_groups(
        tmp_path: Path, text: str) -> None:
    """The reduced search finds a violation exactly when the reference meets one, of a kind
    the reference meets, and explores no more states; where nothing is violated it says
    'ok'.  (The reduction applies to each: no liveness, faults, timers or constraints.)"""
    path = tmp_path / "por_random.py"
    path.write_text(text)
    n, bad, complete = reference(Kernel(build(str(path))[0]), 3_000)
    assume(complete)
    r = check(build(str(path))[0], por=True, symmetry=False)
    assert r.por is not None and r.por["applied"], r.por
    where = f"{r.verdict} {r.violation} {r.por}; reference {n} states {bad}\n{text}"
    assert found(r) == bool(bad), where
    if bad:
        assert r.violation is not None and (r.violation.kind, r.violation.name) in bad, where
    else:
        assert r.ok and r.states <= n, where


# --- workers, spill to disk, full states: the counts of one process -------------------------

def signature(r: CheckResult) -> tuple[Any, ...]:
    """What any search of the same system must report alike.  A violation: the verdict and
    the counterexample's length (a shortest one, under BFS); the counts at a violation
    depend on the order of the search (the workers finish the level)."""
    if r.verdict == "violation" and r.violation is not None and r.violation.kind != "liveness":
        return (r.verdict, len(r.steps))
    return (r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal, r.deadlocked,
            None if r.violation is None else (r.violation.kind, r.violation.name),
            len(r.steps), r.cycle_start is not None, dict(r.liveness))


@quick(15)
@given(specs())
def test_workers_spill_and_full_states_give_the_counts_of_one_process(
        tmp_path: Path, spec: tuple[str, str | None]) -> None:
    text, faults = spec
    path = tmp_path / "random_spec.py"
    path.write_text(text)
    budget = Faults.parse(faults) if faults else None

    def run(**options: Any) -> CheckResult:
        return check(build(str(path))[0], faults=budget, max_states=4_000, **options)

    one = run(symmetry=False)
    assume(one.reason != "max-states")
    for options in ({"workers": 2}, {"max_memory": 1}, {"full_states": True}):
        r = run(symmetry=False, **options)
        assert signature(r) == signature(one), (options, text, faults)
        if options.get("max_memory") and one.reason == "exhausted" and one.states > 2_100:
            assert r.storage.get("spills"), r.storage      # (memory is looked at every 1,024)
    assert signature(run(workers=2)) == signature(run())    # with symmetry declared, too


SPILL = """
import json, sys
from assay.checker import check
from assay.checker.search import resident_bytes
from assay.model.load import build
spec, headroom = sys.argv[1], int(sys.argv[2])
check(build(spec)[0], max_states=10)             # (the process's own memory, first)
r = check(build(spec)[0], max_memory=resident_bytes() + headroom if headroom else None)
print(json.dumps([r.verdict, r.reason, r.states, r.transitions, r.depth, r.terminal,
                  r.storage.get("spills", 0)]))
"""


def test_a_search_forced_to_spill_ends_with_the_counts_of_one_that_did_not_or_says_it_stopped(
        ) -> None:
    """Past --max-memory the compact search moves its states to disk and goes on: the same
    states and transitions as one that never spilled; when spilling does not bring the
    memory down (a bound below what the process needs anyway) it stops, incomplete, and
    never 'ok' over a part of the states.  (Each in a fresh process: its memory is the
    search's.)"""
    spec = str(REPO / "specs/paxos.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(headroom: int) -> list[Any]:
        out = subprocess.run([sys.executable, "-c", SPILL, spec, str(headroom)], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return list(json.loads(out.stdout))

    whole = run(0)
    assert whole[:2] == ["ok", "exhausted"] and whole[-1] == 0
    spilled = 0
    for headroom in (1, 8 << 20):
        r = run(headroom)
        if r[1] == "max-memory":
            assert r[0] == "incomplete" and r[2] < whole[2]
            continue
        assert r[:-1] == whole[:-1], (headroom, r, whole)
        spilled += r[-1] > 0
    assert spilled, "no bound made the search spill and go on"


# --- liveness: every engine alike; without fairness, the plain reference --------------------

def eventually_violated(kernel: Kernel, goal: Any) -> bool:
    """◇goal without fairness, plainly: some behaviour from an initial state where the goal
    does not hold stays among such states forever — it reaches a cycle of them, or one
    where it may stop (`can_stop`: nothing but faults enabled, or beyond a constraint)."""
    from assay.kernel.kernel import World

    def bad(s: Any) -> bool:
        return not goal(World(kernel, s))

    region: dict[Any, list[Any]] = {}
    stack = [s for s, _ in kernel.initial_states() if bad(s)]
    while stack:
        s = stack.pop()
        if s in region:
            continue
        if can_stop(kernel, s):
            return True
        succ = [t for t in (kernel.step(s, e).state for e in kernel.enabled_events(s))
                if bad(t)]
        region[s] = succ
        stack.extend(succ)
    # a cycle in the region: peel off the states with no successor left in it
    alive = set(region)
    changed = True
    while changed:
        changed = False
        for s in list(alive):
            if not any(t in alive for t in region[s]):
                alive.discard(s)
                changed = True
    return bool(alive)


LIVE_MODES: list[dict[str, Any]] = [
    {"symmetry": False}, {"symmetry": False, "full_states": True},
    {"symmetry": False, "strategy": "dfs"}, {}, {"keep_going": True, "symmetry": False},
]


@quick(12)
@given(specs(), st.sampled_from(["none", "weak", "strong"]))
def test_liveness_verdicts_agree_across_engines_and_with_the_reference(
        tmp_path: Path, spec: tuple[str, str | None], fairness: str) -> None:
    text, faults = spec
    assume("s.eventually" in text)
    path = tmp_path / "random_live.py"
    path.write_text(text)
    budget = Faults.parse(faults) if faults else None
    system = build(str(path))[0]
    n, bad, complete = reference(Kernel(system, budget, None), 3_000)
    assume(complete and not bad)
    verdicts = set()
    for options in LIVE_MODES:
        r = check(build(str(path))[0], faults=budget, fairness=fairness, **options)
        assert r.reason in ("exhausted", "violation"), (options, r.reason)
        verdicts.add((r.verdict, r.liveness["live"]))
    assert len(verdicts) == 1, (verdicts, fairness, faults, text)
    if fairness == "none":
        kernel = Kernel(build(str(path))[0], budget, "none")
        goal = next(p for p in kernel.system.liveness if p.name == "live").fn
        expected = "violated" if eventually_violated(kernel, goal) else "holds"
        assert verdicts == {("violation" if expected == "violated" else "ok", expected)}, \
            (verdicts, faults, text)


# --- bounds: never "exhaustive" -------------------------------------------------------------

BOUND_MODES: dict[str, dict[str, Any]] = {
    "compact": {}, "full-states": {"full_states": True}, "dfs": {"strategy": "dfs"},
    "keep-going": {"keep_going": True}, "workers": {"workers": 2},
    "por": {"por": True}, "spill": {"max_memory": 1},
}


@pytest.mark.parametrize("mode", BOUND_MODES)
def test_a_bound_one_short_of_the_whole_search_is_never_exhaustive(mode: str) -> None:
    """--max-depth one less than the depth, --max-states one less than the states: the
    search is incomplete (exit 3), in every mode; at the depth or the count, it is whole."""
    spec = str(REPO / "specs/two_phase_commit.py")
    options = {"symmetry": False, **BOUND_MODES[mode]}
    whole = check(build(spec)[0], **options)
    assert whole.ok
    for bound, value in (("max_depth", whole.depth - 1), ("max_states", whole.states - 1)):
        r = check(build(spec)[0], **{bound: value}, **options)
        if mode == "por" and bound == "max_states" and r.states <= value:
            continue                        # (the reduced graph has fewer states)
        assert (r.verdict, r.exit_code) == ("incomplete", 3), (bound, r.reason)
        assert r.reason == bound.replace("_", "-")
        assert "exhaustive" not in r.text() and "✓" not in r.text()
    for bound, value in (("max_depth", whole.depth), ("max_states", whole.states)):
        r = check(build(spec)[0], **{bound: value}, **options)
        assert (r.verdict, r.states) == ("ok", whole.states), (bound, r.reason)


# --- state constraints: a search they cut says so ----------------------------------------------

CONSTRAINED = """
    from assay import Component, System, action


    class W(Component):
        n: int = 0

        @action(when=lambda self: self.n < 10)
        def go(self):
            self.n = self.n + 1


    def system(limit: int = 3) -> System:
        s = System("constrained")
        s.add("w", W)

        @s.always
        def small(g):
            return g["w"].n < 6             # false beyond the constraint only

        @s.constraint
        def short(g):
            return g["w"].n < limit

        @s.terminal
        def anywhere(g):
            return True
        return s
"""


def test_a_constraint_that_cut_the_search_is_said_in_the_report(tmp_path: Path) -> None:
    """'✓ all properties hold (exhaustive)' was printed, and nothing else, over a search the
    constraint stopped at n = 3 (`small` breaks at 6): the report now says the search was
    exhaustive within the constraints, and which cut it; one that never did is said too."""
    path = write_spec(tmp_path, "constrained", CONSTRAINED)
    for options in ({}, {"full_states": True}, {"strategy": "dfs"}, {"keep_going": True}):
        r = check(build(str(path))[0], **options)
        assert r.ok and r.constraints is not None, options
        assert r.constraints["pruned"] is True
        assert r.constraints["names"][0].startswith("short (")
        text = " ".join(r.text().split())        # (the summary's lines are wrapped)
        assert "exhaustive within the state constraints" in text
        assert "short (" in text and "cut the search" in text
        assert r.to_json()["constraints"]["pruned"] is True
    r = check(build(str(path), params={"limit": "20"})[0])  # never false: the real verdict
    assert r.verdict == "violation" and r.constraints == {
        "names": r.constraints["names"], "pruned": False}
    # worker processes do not say whether they met a state beyond: "may have"
    r = check(build(str(path))[0], workers=2)
    assert r.ok and r.constraints is not None and r.constraints["pruned"] is None
    assert "exhaustive within the state constraints" in r.text()
    assert "may have cut" in " ".join(r.text().split())
    # the CLI, with a checkpoint (one worker, in this process)
    out = subprocess.run([sys.executable, "-m", "assay.cli", "check", "--checkpoint",
                          str(tmp_path / "ck"), str(path)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "exhaustive within the state constraints" in out.stdout
    # and the system's own constraint is back after the check
    system = build(str(path))[0]
    fn = system.constraints[0][0]
    check(system)
    assert system.constraints[0][0] is fn


# --- checkpoints: killed anywhere, resumed to the same counts; another check refused -------------

def _check_json(spec: str, ck: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "assay.cli", "check", "--json", "--checkpoint", str(ck),
            "--checkpoint-every", "0", spec, *extra]


def _outcome(stdout: str) -> tuple[Any, ...]:
    j = json.loads(stdout)
    return (j["verdict"], j["reason"], j["states"], j["transitions"], j["depth"],
            j["terminal"], j["deadlocked"], json.dumps(j["violation"]), json.dumps(j["trace"]))


def test_a_check_killed_at_random_points_resumes_to_the_counts_of_one_never_stopped(
        tmp_path: Path) -> None:
    """SIGKILL or Ctrl-C at a random moment (while loading, during a level, while a
    checkpoint is written: one is written at every level), twice, then let it end:
    the same counts, verdict and counterexample as the check never stopped."""
    spec = str(REPO / "specs/paxos.py")
    extra = ("--no-symmetry",)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole = subprocess.run(_check_json(spec, tmp_path / "whole", *extra), cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=300)
    expected = _outcome(whole.stdout)
    rng = random.Random(3)
    ck = tmp_path / "ck"
    for _ in range(2):
        p = subprocess.Popen(_check_json(spec, ck, *extra), cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            p.wait(rng.uniform(0.4, 1.0))
        except subprocess.TimeoutExpired:
            p.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT]))
        out, err = p.communicate(timeout=300)
        if p.returncode in (0, 1):            # it ended before the signal
            assert _outcome(out) == expected
    end = subprocess.run(_check_json(spec, ck, *extra), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert end.returncode in (0, 1), end.stderr[-2000:]
    assert _outcome(end.stdout) == expected


def test_a_checkpoint_of_another_check_or_damaged_is_refused(tmp_path: Path) -> None:
    """Another fault budget, parameter, fairness, --keep-going, an edited spec, a truncated
    worker file: each refused with what differs, never resumed (another symmetry setting:
    tests/test_checkpoint_modes.py)."""
    path = tmp_path / "tla_twophase.py"
    shutil.copy(REPO / "specs/tla_twophase.py", path)
    ck = tmp_path / "ck"

    def run(params: dict[str, str] | None = None, **options: Any) -> CheckResult:
        system, name, typed = build(str(path), None, params or {})
        return check(system, spec=str(path), system_name=name, params=typed,
                     checkpoint=str(ck), checkpoint_every=0, **options)

    first = run(max_depth=3)
    assert first.reason == "max-depth"
    for change, options, said in (
            ("faults", {"faults": Faults.parse("crash=1")}, "the fault budget differs"),
            ("params", {"params": {"rm_count": "2"}}, "the parameters differ"),
            ("fairness", {"fairness": "strong"}, "the fairness differs"),
            ("keep-going", {"keep_going": True}, "--keep-going differs")):
        with pytest.raises(UsageError) as e:
            run(**options)
        assert said in str(e.value) + " ".join(e.value.notes), change
    path.write_text(path.read_text() + "\n# an edit\n")
    with pytest.raises(UsageError, match="another check"):
        run()
    path.write_text(path.read_text().replace("\n# an edit\n", ""))
    shard = next((ck / "current").glob("shard-*"))
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(UsageError, match="damaged"):
        run()


# --- liveness under fairness: each kind, declared everywhere it can be, against a reference ---

@st.composite
def fair_specs(draw: Any) -> tuple[str, str | None]:
    """Two workers cycling (or counting up) a counter, flipping a flag, and taking once
    while the flag is up (weak fairness lets the flag flip forever past it, strong does
    not), reporting to a hub; fairness declared on the system, an action (`fair=`), a
    handler, an instance, a class; ◇, □◇ or ~>; a crash or a drop, or no fault."""
    default = draw(st.sampled_from(["none", "weak", "strong", "strong"]))
    kinds = st.sampled_from([None, None, None, "none", "weak", "strong"])
    step_fair, take_fair, recv_fair, inst, cls = (draw(kinds) for _ in range(5))
    wrap, cycle, symmetric = draw(st.integers(2, 3)), draw(st.booleans()), draw(st.booleans())
    prop = draw(st.sampled_from([
        ("eventually", "g['hub'].n >= 1"),
        ("eventually", "g['w0'].took"),
        ("eventually", f"all(w.x == {wrap} - 1 for w in g.instances(W))"),
        ("always_eventually", "g['w0'].x == 0"),
        ("always_eventually", "not g['w1'].up"),
        ("leads_to", "g['w0'].up", "g['w0'].took or not g['w0'].up"),
        ("leads_to", "g['w1'].x == 1", "g['hub'].n >= 1"),
    ]))
    faults = draw(st.sampled_from([None, None, "crash=1", "drop=1"]))

    def fair(kind: str | None) -> str:
        return "" if kind is None else f", fair={kind!r}"

    lines = ["from assay import Component, Message, Port, System, action, on",
             "class Rep(Message):\n    v: int",
             "class W(Component):", "    out = Port()",
             "    x: int = 0", "    up: bool = False", "    took: bool = False",
             f"    @action(when=lambda self: {'True' if cycle else f'self.x < {wrap} - 1'}"
             f"{fair(step_fair)})",
             "    def step(self):", f"        self.x = (self.x + 1) % {wrap}",
             "    @action()", "    def flip(self):", "        self.up = not self.up",
             f"    @action(when=lambda self: self.up and not self.took{fair(take_fair)})",
             "    def take(self):", "        self.took = True",
             "        self.out.send(Rep(self.x))",
             "class Hub(Component):", "    inp = Port(many=True)", "    n: int = 0",
             f"    @on(Rep{fair(recv_fair)})", "    def rep(self, m):",
             "        self.n = min(self.n + 1, 2)",
             "def system() -> System:",
             f"    s = System('fair', network='unordered', fairness={default!r})",
             "    hub = s.add('hub', Hub)",
             "    ws = [s.add(f'w{i}', W) for i in range(2)]",
             "    for w in ws:", "        s.connect(w.out, hub.inp)"]
    if symmetric and inst is None:          # (fairness of one member: not interchangeable)
        lines.append("    s.symmetric(ws)")
    if inst is not None:
        lines.append(f"    s.fair({inst!r}, ws[0])")
    if cls is not None:
        lines.append(f"    s.fair({cls!r}, W)")
    if prop[0] == "leads_to":
        lines.append(f"    s.leads_to(lambda g: {prop[1]}, lambda g: {prop[2]}, name='live')")
    else:
        lines += [f"    @s.{prop[0]}", "    def live(g):", f"        return {prop[1]}"]
    lines += ["    @s.terminal", "    def t(g):", "        return True", "    return s"]
    return "\n".join(lines) + "\n", faults


def _sccs(succ: dict[Any, list[Any]], inside: set[Any]) -> list[set[Any]]:
    """Kosaraju's strongly connected components of the subgraph on `inside`."""
    order: list[Any] = []
    seen: set[Any] = set()
    for root in inside:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if w in inside and w not in seen:
                    seen.add(w)
                    stack.append((w, iter(succ[w])))
                    break
            else:
                stack.pop()
                order.append(v)
    pred: dict[Any, list[Any]] = {v: [] for v in inside}
    for v in inside:
        for w in succ[v]:
            if w in inside:
                pred[w].append(v)
    out: list[set[Any]] = []
    done: set[Any] = set()
    for root in reversed(order):
        if root in done:
            continue
        comp, todo = set(), [root]
        done.add(root)
        while todo:
            v = todo.pop()
            comp.add(v)
            for w in pred[v]:
                if w not in done:
                    done.add(w)
                    todo.append(w)
        out.append(comp)
    return out


def fair_violated(kernel: Kernel, name: str) -> bool:
    """Whether liveness property `name` is violated under the kernel's fairness, plainly:
    the whole graph in memory; the states a violating behaviour can stay in (the region);
    violated when one of them may stop (`can_stop`) or a set of them is a fair cycle —
    Emerson and Lei: an SCC with an edge, no weak task enabled on all its states and never
    taken in it, and each strong task enabled in it taken in it, or else, the states that
    enable an untaken strong task removed, a fair cycle in what is left."""
    from assay.kernel.kernel import World

    prop = next(p for p in kernel.system.liveness if p.name == name)
    edges: dict[Any, list[tuple[int, Any]]] = {}
    init = [s for s, _ in kernel.initial_states()]
    todo = list(init)
    while todo:
        s = todo.pop()
        if s in edges:
            continue
        edges[s] = [(e, kernel.step(s, e).state) for e in kernel.enabled_events(s)]
        todo.extend(t for _, t in edges[s])

    def holds(fn: Any, s: Any) -> bool:
        return bool(fn(World(kernel, s)))

    bad = {s for s in edges if not holds(prop.fn, s)}
    if prop.kind == "always_eventually":
        region = set(bad)
    else:
        starts = [s for s in (init if prop.kind == "eventually" else edges) if s in bad
                  and (prop.kind == "eventually" or holds(prop.trigger, s))]
        region, todo = set(), list(starts)
        while todo:
            s = todo.pop()
            if s not in region:
                region.add(s)
                todo.extend(t for _, t in edges[s] if t in bad)
    if any(can_stop(kernel, s) for s in region):
        return True

    def task(e: int) -> tuple[Any, int] | None:
        return kernel.fair_task(e)

    succ = {s: [t for _, t in edges[s]] for s in edges}

    def fair_cycle(inside: set[Any]) -> bool:
        for comp in _sccs(succ, inside):
            inner = [e for s in comp for e, t in edges[s] if t in comp]
            if not inner:
                continue
            taken = {ft[0] for e in inner if (ft := task(e)) is not None}
            enabled = {s: {ft for e, _ in edges[s] if (ft := task(e)) is not None}
                       for s in comp}
            tasks = set().union(*enabled.values())
            if any(k == 1 and key not in taken and all((key, 1) in enabled[s] for s in comp)
                   for key, k in tasks):
                continue
            strong = {ft for ft in tasks if ft[1] == 2 and ft[0] not in taken}
            if not strong:
                return True
            if fair_cycle({s for s in comp if not enabled[s] & strong}):
                return True
        return False

    return fair_cycle(region)


@quick(15)
@given(fair_specs())
def test_liveness_under_every_kind_of_fairness_agrees_with_the_reference(
        tmp_path: Path, spec: tuple[str, str | None]) -> None:
    """Weak and strong, on the system, an action, a handler, an instance, a class; lassos
    through a crash or a drop; with and without symmetry: every engine decides the property
    as the reference does."""
    text, faults = spec
    path = tmp_path / "fair.py"
    path.write_text(text)
    budget = Faults.parse(faults) if faults else None
    expected = fair_violated(Kernel(build(str(path))[0], budget, None), "live")
    for options in ({}, {"symmetry": False}, {"symmetry": False, "full_states": True},
                    {"symmetry": False, "strategy": "dfs"}, {"keep_going": True}):
        r = check(build(str(path))[0], faults=budget, **options)
        assert r.liveness["live"] == ("violated" if expected else "holds"), \
            (options, faults, r.liveness, text)


CUT_EARLY = """
    from assay import Component, System, action


    class W(Component):
        n: int = 0

        @action(when=lambda self: self.n < 4)
        def go(self):
            self.n = self.n + 1


    def system() -> System:
        s = System("cut_early")
        s.add("a", W)
        s.add("b", W)

        @s.always
        def never_a_first(g):
            return not (g["a"].n == 2 and g["b"].n == 0)

        @s.constraint
        def b_first(g):                     # cuts at depth 1 only
            return g["a"].n != 1 or g["b"].n > 0

        @s.terminal
        def anywhere(g):
            return True
        return s
"""


def test_a_search_resumed_past_the_states_a_constraint_cut_does_not_say_nothing_was_cut(
        tmp_path: Path) -> None:
    """The constraint cuts one state at depth 1, before the checkpoint at depth 2: the
    resumed search never meets it, and said 'true on every state met: nothing was cut'
    over a search that was cut (and would break `never_a_first` without the cut)."""
    path = write_spec(tmp_path, "cut_early", CUT_EARLY)

    def run(**options: Any) -> CheckResult:
        system, name, typed = build(str(path))
        return check(system, spec=str(path), system_name=name, params=typed,
                     checkpoint=str(tmp_path / "ck"), checkpoint_every=0, **options)

    first = run(max_depth=2)
    assert first.reason == "max-depth"
    assert first.constraints is not None and first.constraints["pruned"] is True
    resumed = run()
    assert resumed.ok and resumed.constraints is not None
    assert resumed.constraints["pruned"] is None
    assert "exhaustive within the state constraints" in resumed.text()
    whole = check(build(str(path))[0])
    assert whole.ok and whole.constraints is not None and whole.constraints["pruned"] is True
