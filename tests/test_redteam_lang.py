"""Red team of the spec language's errors: mistakes users make writing specs.

Each case is a small spec with one realistic mistake, run as a user runs it — one `assay`
subprocess per case, under the command named in the case (check, verify, simulate or run:
a mistake read when the system is built is the same spec error in every engine).  Each must
be refused with exit 2, `file:line: error: ...` on stderr naming the line of the mistake (the
line marked `# <- error here`) and a note with the fix — never a traceback, and never a
silent pass (before these fixes, several said "✓ all properties hold" or exit 0: the body of
an `async def` or generator handler never ran, a property returning a generator was always
true, a guard's assignment was thrown away, a handler's `return False` was ignored).

The cases run concurrently (a module fixture) to keep the file well under 30 s.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "# <- error here"

HEAD = """\
from assay import (
    Component,
    Message,
    Port,
    System,
    action,
    ensures,
    invariant,
    on,
    one_of,
    requires,
)
from assay import protocol as p


class Ping(Message):
    n: int


class Pong(Message):
    n: int

"""

# a pair of nodes, `a` pings `b` once; {node} is the body of class Node
PAIR = HEAD + """
class Node(Component):
    peer = Port()
    got: int = 0
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def go(self):
        self.sent = True
        self.peer.send(Ping(1))
{node}

def system():
    s = System("pair")
    a = s.add("a", Node)
    b = s.add("b", Node)
    s.connect(a.peer, b.peer)
    s.terminal(lambda g: True)
{props}
    return s
"""

# one counter that counts to 3; {node} is more of its body, {props} properties
COUNTER = HEAD + """
class Counter(Component):
    x: int = 0
{node}
    @action(when=lambda self: self.x < 3)
    def step(self):
        self.x += 1


def system({params}):
    s = System("counter")
    s.add("c", Counter)
    s.terminal(lambda g: True)
{props}
    return s
"""

def pair(node: str, props: str = "") -> str:
    return PAIR.format(node=textwrap.indent(textwrap.dedent(node), "    "),
                       props=textwrap.indent(textwrap.dedent(props), "    "))


def counter(node: str = "", props: str = "", params: str = "") -> str:
    return COUNTER.format(node=textwrap.indent(textwrap.dedent(node), "    "),
                          props=textwrap.indent(textwrap.dedent(props), "    "), params=params)


def counter_tail() -> str:
    """The rest of a spec after HEAD: the counter and its system."""
    return counter()[len(HEAD):]


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    command: tuple[str, ...]          # the assay command and its options
    says: tuple[str, ...]             # substrings of stderr (the error and its notes)
    before: str                       # what assay did before the fix
    at: str = MARKER                  # the text on the line the error must name


CASES = [
    # --- bodies that never run ---------------------------------------------------------------
    Case("async-handler", pair("""
        @on(Ping)
        async def on_ping(self, m):  # <- error here
            self.got = 5
        """, """
        @s.always
        def never_five(g):
            return g["b"].got != 5
        """), ("run", "--for", "2"),
         ("handler Node.on_ping is an 'async def'", "body would never run", "plain 'def'"),
         "run: exit 0, 'coroutine was never awaited'; check: a deadlock"),
    Case("generator-action", counter("""
        @action(when=lambda self: self.x == 0)
        def jump(self):  # <- error here
            self.x = 9
            yield
        """, """
        @s.always
        def small(g):
            return g["c"].x < 5
        """), ("check",),
         ("action Counter.jump contains 'yield'", "body would never run", "remove the yield"),
         "check: exit 0, ✓ all properties hold"),
    Case("generator-handler", pair("""
        @on(Ping)
        def on_ping(self, m):  # <- error here
            self.got = m.n
            yield m
        """), ("simulate", "--runs", "2", "--steps", "20", "-j", "1", "-q"),
         ("handler Node.on_ping contains 'yield'",), "simulate: a deadlock"),
    # --- a definition silently replaced or ignored --------------------------------------------
    Case("same-method-name-twice", pair("""
        @on(Ping)
        def handle(self, m):
            self.peer.send(Pong(m.n))

        @on(Pong)
        def handle(self, m):  # <- error here
            self.got += 1
        """), ("check",),
         ("Node defines handle twice", "replaces the first", "with @on", "its own method name"),
         "check: 'Node has no handler for Ping', a violation blamed on the sender"),
    Case("override-without-the-decorator", counter().replace(
        "\n\ndef system(", """

class SlowCounter(Counter):
    def step(self):  # <- error here
        self.x += 2


def system(""").replace('s.add("c", Counter)', 's.add("c", SlowCounter)'), ("simulate", "-q"),
         ("SlowCounter.step overrides Counter.step without its @action",
          "repeat the decorator"),
         "simulate and check: exit 0, ✓ (the action gone: nothing enabled)"),
    Case("component-init", counter("""
        def __init__(self):  # <- error here
            self.x = 2
        """), ("verify",),
         ("Counter defines __init__, which assay never calls", "s.add(name, Counter, x=5)",
          "@on_start"), "verify/run: exit 0, x started at 0"),
    Case("handler-returns-false", pair("""
        @on(Ping)
        def on_ping(self, m):
            if m.n > 0:
                return False  # <- error here
            self.got = m.n
        """), ("check",),
         ("Node.on_ping returns a value, which assay ignores", "@on(M, when=",
          "bare 'return'"), "every engine: the return value silently ignored"),
    Case("guard-assigns-a-field", counter("""
        polls: int = 0

        def ready(self):
            self.polls += 1
            return self.x < 3

        @action(when=ready)  # <- error here
        def poll(self):
            pass
        """), ("check",),
         ("the guard of Counter.poll assigns self.polls", "must not change the state"),
         "check: the assignment silently thrown away"),
    Case("two-properties-with-one-name", counter(props="""
        @s.always
        def small(g):
            return g["c"].x < 2

        @s.always
        def small(g):  # <- error here
            return True
        """), ("check",),
         ("two properties named 'small'", "another name"),
         "check: both checked under one name"),
    Case("class-attribute-list-as-state", counter("""
        log = []

        @action(when=lambda self: len(self.log) < 2)
        def record(self):
            self.log.append(self.x)  # <- error here
        """), ("check",),
         ("Counter.record changes self.log, a list in the class body of Counter",
          "shared by every instance", "log: tuple[int, ...] = ()"),
         "check: exit 0, ✓ over 2 states (the list outside the state, the step memoised)"),
    Case("one-of-in-an-action", counter("""
        @action(when=lambda self: self.x == 3)
        def restart(self):  # <- error here
            self.x = one_of(0, 1)
        """), ("run", "--for", "2"),
         ("c.restart sets self.x to one_of(0, 1)", "its initial values",
          "self.x = self.choose((0, 1))"), "run and check: a type violation, no hint"),
    Case("enum-field-compared-with-its-value", counter("""
        mode: Mode = Mode.IDLE

        @action(when=lambda self: self.mode == "idle")  # <- error here
        def wake(self):
            self.mode = Mode.BUSY
        """, """
        @s.always
        def stays_idle(g):
            return g["c"].mode == Mode.IDLE
        """).replace("class Counter(Component):", "class Mode(Enum):\n    IDLE = 'idle'\n"
                     "    BUSY = 'busy'\n\n\nclass Counter(Component):")
         .replace("from assay import (", "from enum import Enum\n\nfrom assay import ("),
         ("check",),
         ("Counter.wake compares self.mode, a Mode member, with the str 'idle': never equal",
          "self.mode == Mode.IDLE"),
         "check: exit 0, ✓ (the guard never true, the property never tested)"),
    Case("ensures-old-and-self-swapped", counter("""
        @action(when=lambda self: self.x == 3)
        @ensures(lambda self, old: self.x == 0)  # <- error here
        def reset(self):
            self.x = 0
        """), ("check",),
         ("ensures of reset is written (self, old, ...)", "'self' would be the old state",
          "lambda old, self: ..."), "check: 'ensures of c.reset fails', a false violation"),
    # --- predicates whose result is no verdict -------------------------------------------------
    Case("property-without-return", counter(props="""
        @s.always
        def small(g):  # <- error here
            g["c"].x < 10
        """), ("check",),
         ("property 'small' returned None, not a bool", "did you forget 'return'?"),
         "check: 'property small does not hold' in the initial state"),
    Case("property-returns-a-generator", counter(props="""
        @s.always
        def small(g):  # <- error here
            return (c.x < 2 for c in g.instances(Counter))
        """), ("simulate", "--runs", "2", "--steps", "20", "-j", "1", "-q"),
         ("property 'small' returned a generator object, which is always true",
          "all(...) or any(...)"), "simulate and check: exit 0, ✓"),
    Case("requires-returns-a-generator", pair("""
        @on(Ping)
        @requires(lambda self, m: (m.n > 5 for _ in "x"))  # <- error here
        def on_ping(self, m):
            self.got = m.n
        """), ("check",),
         ("requires of b.on_ping returned a generator object",), "check: exit 0, ✓"),
    Case("guard-forgets-to-call-a-method", counter("""
        def idle(self):
            return self.x >= 3

        @action(when=lambda self: self.idle)  # <- error here
        def rest(self):
            self.x = 0
        """), ("check",),
         ("the guard of c.rest returned", "a function, which is always true",
          "call it"), "check: the action always enabled"),
    Case("invariant-without-return", counter("""
        @invariant  # <- error here
        def small(self):
            self.x < 10
        """), ("check",),
         ("invariant of Counter returned None, not a bool",),
         "check: 'invariant of Counter fails' in the initial state"),
    Case("invariant-without-return-under-verify", counter("""
        @invariant
        def small(self):
            self.x < 10
        """), ("verify",),
         ("a contract of instance 'c' returned None, not a bool", "forget 'return'"),
         "verify: 'refuted: the invariant is false in this initial state'",
         at="def small(self):"),
    Case("guard-is-a-string", counter("""
        @action(when="self.x < 3")  # <- error here
        def other(self):
            self.x += 1
        """), ("check",),
         ("guard of other is a str", "not a function", "lambda self: ..."),
         "check: a TypeError at run time, with no line"),
    Case("over-holds-lists", counter("""
        @action(over=[[1], [2]])  # <- error here
        def add(self, d):
            self.x += d[0]
        """), ("check",),
         ("over= of action add holds [1], a list", "a tuple instead of a list"),
         "check: exit 70, a traceback"),
    Case("property-takes-no-argument", counter(props="""
        @s.always
        def fine():  # <- error here
            return True
        """), ("check",),
         ("s.always predicate fine takes 0 argument(s), assay passes 1", "def p(g)"),
         "check: a TypeError when first evaluated"),
    Case("instances-of-a-message-class", counter(props="""
        @s.always
        def small(g):
            return all(m.n < 5 for m in g.instances(Ping))  # <- error here
        """), ("simulate", "--runs", "2", "--steps", "20", "-j", "1", "-q"),
         ("g.instances() takes a Component class, not Ping",),
         "simulate: exit 0, ✓ (an empty list: the property vacuously true)"),
    Case("property-reads-the-handle-not-the-state", counter().replace(
        's.add("c", Counter)', 'c = s.add("c", Counter)\n'
        '    s.always(lambda g: c.x < 5)  # <- error here'), ("check",),
         ("instance 'c' (Counter) has no port 'x'", "'x' is a field", "g['c'].x"),
         "check: 'property raised SpecError: <the same error again>', no fix"),
    Case("over-function-returns-an-int", counter("""
        @action(over=lambda self: 3)  # <- error here
        def add(self, d):
            self.x += d
        """), ("check",),
         ("the domain (over=) of c.add raised TypeError",), "check: no line"),
    Case("instance-name-typo-in-a-property", counter(props="""
        @s.always
        def small(g):
            return g["cc"].x < 5  # <- error here
        """), ("check",),
         ("no instance named 'cc'; did you mean 'c'?",), "check: no suggestion"),
    # --- a message field shadowed by what every message has ---------------------------------
    Case("message-field-named-values", pair("""
        @on(Batch)
        def on_batch(self, m):
            if m.values == (1, 2):
                self.got = 3
        """, """
        @s.always
        def never_three(g):
            return g["b"].got != 3
        """).replace("class Pong(Message):", "class Batch(Message):  # <- error here\n"
                     "    values: tuple[int, ...]\n\n\nclass Pong(Message):")
         .replace("self.peer.send(Ping(1))", "self.peer.send(Batch((1, 2)))"), ("check",),
         ("field 'values' of message Batch uses a reserved name", "a method of every message",
          "rename the field"),
         "check: exit 0, ✓ (m.values was the method, never equal to the field's value)"),
    Case("message-field-named-sender", HEAD.replace(
        "class Pong(Message):", "class Vote(Message):  # <- error here\n    sender: str\n\n\n"
        "class Pong(Message):") + counter_tail(), ("check",),
         ("field 'sender' of message Vote uses a reserved name", "'m.sender' names the peer"),
         "check: m.sender silently the field, not the peer it came from"),
    # --- parameters ----------------------------------------------------------------------------
    Case("param-default-none-untyped", counter(props="""
        @s.always
        def bounded(g):
            return limit is None or g["c"].x < limit
        """, params="limit=None"), ("check", "-p", "limit=2"),
         ("--param limit=2", "its type is unknown", "limit: int | None = None"),
         "check: 'parameter limit has type _empty, which --param cannot set'",
         at="def system(limit=None)"),
]
IDS = [c.id for c in CASES]


def marker_line(source: str, at: str = MARKER) -> int:
    lines = [i for i, t in enumerate(source.splitlines(), 1) if at in t]
    assert len(lines) == 1, lines
    return lines[0]


def flat(text: str) -> str:
    return " ".join(text.split())


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for k in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(k, None)
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, timeout=120)


def run_cases(cases: list[Case], root: Path, workers: int
              ) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each case's spec written in ROOT and its command run there (a few at a time), by id."""
    jobs = []
    for c in cases:
        name = c.id.replace("-", "_") + ".py"
        (root / name).write_text(c.source)
        cmd, *opts = c.command
        jobs.append([cmd, name, *opts])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip([c.id for c in cases], pool.map(lambda a: _run(a, root), jobs)))


def assert_spec_error_at_its_line(case: Case, r: subprocess.CompletedProcess[str]) -> None:
    """Exit 2, no traceback, `file:line: error:` at the case's marked line, and what it says."""
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "internal error" not in out, out
    assert r.returncode == 2, (case.before, r.returncode, out)
    name = case.id.replace("-", "_") + ".py"
    assert r.stderr.startswith(f"{name}:{marker_line(case.source, case.at)}: error: "), \
        r.stderr
    for part in case.says:
        assert flat(part) in flat(r.stderr), (part, r.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_cases(CASES, tmp_path_factory.mktemp("redlang"), 4)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_users_mistake_is_a_spec_error_at_its_line(
        case: Case, runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert_spec_error_at_its_line(case, runs[case.id])


# --- what held, or was fixed without an error: the mistake now means what the user meant -----

def test_an_unannotated_parameter_is_typed_by_its_default(tmp_path: Path) -> None:
    # `def system(limit=2)` with `-p limit=3`: was a usage error ("type _empty")
    (tmp_path / "spec.py").write_text(counter(props="""
        @s.always
        def bounded(g):
            return g["c"].x < limit
        """, params="limit=2"))
    r = _run(["check", "spec.py", "-p", "limit=3", "--json"], tmp_path)
    assert r.returncode == 1, r.stderr          # x reaches 3: the property fails
    assert '"limit": 3' in r.stdout


def test_an_optional_parameter_takes_a_value_or_none(tmp_path: Path) -> None:
    from assay.model.load import build

    (tmp_path / "spec.py").write_text(counter(props="""
        @s.always
        def bounded(g):
            return limit is None or g["c"].x <= limit
        """, params="limit: int | None = None"))
    assert build(tmp_path / "spec.py", params={"limit": "3"})[2] == {"limit": 3}
    assert build(tmp_path / "spec.py", params={"limit": "none"})[2] == {"limit": None}
