"""Every way a spec or a command line can be wrong is reported as a `SpecError`/`UsageError`:
at the right file and line, naming the offending thing, with a note that says how to fix it,
and, on the command line, as `file:line: error: message` on stderr with exit code 2 and never
a traceback.

Each case is one small spec in tests/fixtures/bad_specs/; the faulty line carries the marker
comment `# <- error here`, and the expected line number is computed from it.  Each case is
checked twice: through the Python API (`build(...)`, then `check(system)` for the errors that
only show during exploration) and through `python -m assay.cli check` in a subprocess.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assay.checker import check
from assay.errors import AssayError, SpecError, UsageError
from assay.model.load import build

REPO = Path(__file__).resolve().parents[1]
BAD = REPO / "tests" / "fixtures" / "bad_specs"
MARKER = "# <- error here"


def marker_line(path: Path) -> int:
    """The 1-based line of the fixture that carries the marker comment (exactly one)."""
    lines = [i for i, text in enumerate(path.read_text().splitlines(), 1) if MARKER in text]
    assert len(lines) == 1, f"{path.name} must mark exactly one line with {MARKER!r}"
    return lines[0]


def flat(text: str) -> str:
    """Whitespace-normalised text, so checks do not depend on how a console wraps lines."""
    return " ".join(text.split())


def cli_env() -> dict[str, str]:
    """The environment of a user's shell, minus what would make rich's output vary."""
    env = dict(os.environ)
    for k in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
              "CLICOLOR_FORCE", "PY_COLORS"):
        env.pop(k, None)
    return env


@dataclass(frozen=True)
class Case:
    """One kind of error: where it is, when it shows, and what its report must say."""

    id: str
    fixture: str                                # file name in tests/fixtures/bad_specs
    error: type[AssayError] = SpecError
    when: str = "build"                         # "build", or "check": only while exploring
    system: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    message: tuple[str, ...] = ()               # substrings of the message
    notes: tuple[str, ...] = ()                 # substrings of the notes, joined
    where: str = "marker"                       # "marker": file and marked line;
                                                # "file": the file, no line; "message": no
                                                # location, the file is named in the message
    location_bug: str | None = None             # an assay bug: the location is wrong
    kind_bug: str | None = None                 # an assay bug: wrong class, message or notes
    volatile: bool = False                      # its notes quote values that differ per run

    @property
    def path(self) -> Path:
        return BAD / self.fixture

    @property
    def rel(self) -> str:
        return f"tests/fixtures/bad_specs/{self.fixture}"

    def cli_args(self) -> list[str]:
        args = ["check", self.rel]
        if self.system is not None:
            args += ["--system", self.system]
        for k, v in self.params.items():
            args += ["--param", f"{k}={v}"]
        return args


_FIELD_NOTE = "use bool, int"
_EXIT_NOTE = "must not end the process"
CASES = [
    # --- the spec does not load ------------------------------------------------------------
    Case("syntax-error", "syntax_error.py",
         message=("syntax error", "invalid syntax"), notes=('s.add("b", Node)',)),
    Case("import-error", "import_error.py",
         message=("import failed", "assay_no_such_module"),
         notes=("install the missing module",)),
    Case("import-name-error", "import_name_error.py",
         message=("import failed", "Channel"), notes=("fix the import",)),
    Case("load-raises", "load_raises.py",
         message=("NameError", "while loading", "undefined_timeout")),
    Case("file-does-not-exist", "does_not_exist.py", error=UsageError, where="message",
         message=("does_not_exist.py", "does not exist")),
    # --- which system, which parameters ----------------------------------------------------
    Case("no-system", "no_system.py", where="file",
         message=("no system",), notes=("def system(", "-> System")),
    Case("several-systems", "two_systems.py", error=UsageError, where="message",
         message=("two_systems.py", "several systems", "big", "small"),
         notes=("--system NAME",)),
    Case("unknown-system", "params.py", error=UsageError, where="message", system="nope",
         message=("params.py", "no system", "'nope'"), notes=("systems: system",)),
    Case("unknown-param", "params.py", error=UsageError, params={"nope": "1"},
         message=("no parameter", "'nope'"), notes=("node_count",)),
    Case("param-wrong-type", "params.py", error=UsageError, params={"node_count": "abc"},
         message=("node_count", "abc", "int")),
    Case("missing-param", "required_param.py", error=UsageError,
         message=("'node_count'",), notes=("--param node_count=",)),
    Case("system-raises", "system_raises.py",
         message=("building system 'system'", "IndexError", "list index out of range")),
    Case("system-returns-none", "system_returns_none.py",
         message=("system()", "NoneType", "not a System")),
    Case("no-instances", "no_instances.py",
         message=("no instances",), notes=("s.add(",)),
    Case("unknown-network", "unknown_network.py",
         message=("unknown network model", "'lossy'"),
         notes=("unordered", "fifo", "duplicating")),
    # --- message contracts on ports -----------------------------------------------------------
    Case("where-not-a-dict", "where_not_dict.py",
         message=("where=", "'peer'", "Node", "list", "not a dict"), notes=("MessageType",)),
    Case("where-key-not-a-message", "where_key.py",
         message=("where=", "'peer'", "int", "not a Message class"), notes=("MessageType",)),
    Case("where-wrong-arity", "where_arity.py",
         message=("where=", "Ping", "takes 2 arguments", "the message alone"),
         notes=("lambda m:",)),
    Case("where-not-callable", "where_callable.py",
         message=("where=", "Ping", "not callable"), notes=("lambda m:",)),
    # --- fields ------------------------------------------------------------------------------
    Case("unsupported-type-float", "unsupported_type_float.py",
         message=("'reading'", "Sensor", "float", "use int"), notes=(_FIELD_NOTE,)),
    Case("unsupported-type-dict", "unsupported_type_dict.py",
         message=("'votes'", "Store", "dict", "Map[K, V]"), notes=(_FIELD_NOTE,)),
    Case("unsupported-type-object", "unsupported_type_object.py",
         message=("'content'", "Box", "object"), notes=(_FIELD_NOTE,)),
    Case("mutable-default-set", "mutable_default.py",
         message=("'prepared'", "Coordinator", "mutable default", "set"),
         notes=("frozenset instead of set",)),
    Case("mutable-default-list", "mutable_default_list.py",
         message=("'entries'", "Log", "mutable default", "list"),
         notes=("tuple instead of list",)),
    Case("no-initial-value", "no_initial_value.py",
         message=("'count'", "Counter", "no initial value"), notes=("count: int = ",)),
    Case("reserved-field-name", "reserved_field.py",
         message=("'name'", "Node", "reserved"), notes=("rename the field",)),
    # --- handlers and contracts --------------------------------------------------------------
    Case("handler-unknown-port", "handler_unknown_port.py",
         message=("Node.on_ping", "Ping", "'nope'"), notes=("ports of Node: peer",)),
    Case("handler-no-ports", "handler_no_ports.py",
         message=("Lonely.on_ping", "Ping", "no port"), notes=("Port()",)),
    Case("handler-not-a-message", "handler_not_a_message.py",
         message=("@on(Ping)", "Node.on_ping", "not a Message"), notes=("(Message)",)),
    Case("handler-arity", "handler_arity.py",
         message=("Node.on_ping", "takes 1 argument", "passes 2"), notes=("(self, m)",)),
    Case("contract-arity", "contract_arity.py",
         message=("requires", "on_ping", "takes 1 argument", "passes 2"),
         notes=("lambda self, m",)),
    Case("action-without-parentheses", "action_without_parentheses.py",
         message=("Counter.step", "@action is written without its arguments"),
         notes=("write @action()",)),
    Case("on-without-message", "on_without_message.py",
         message=("Counter.step", "@on is written without its arguments"),
         notes=("write @on(Msg)",)),
    Case("requires-without-predicate", "requires_without_predicate.py",
         message=("Node.ping", "@requires is written without its arguments"),
         notes=("write @requires(lambda self, m: ...)",)),
    Case("requires-on-an-action", "action_requires.py",
         message=("Node.ping", "an action has no caller to require something of: put the "
                  "condition in @action(when=...)"),
         notes=("@action(when=lambda self: ...)",)),
    # --- ill-formed handler code: seen in the source when the class is compiled ------------
    Case("typo-field-assign", "typo_field_assign.py",
         message=("Follower.on_promote", "assigns self.promotd", "not a field of Follower"),
         notes=("did you mean 'promoted'?", "fields of Follower: promoted")),
    Case("tuple-item-assign", "tuple_item_assign.py",
         message=("Flags.raise_flag", "assigns an item of a tuple", "immutable", "self.flag"),
         notes=("self.flag = self.flag[:i] + (True,) + self.flag[i + 1:]",
                "self.flag = self.flag.set(i, True)")),
    Case("map-item-assign", "map_item_assign.py",
         message=("Coordinator.on_vote", "assigns an item of a Map", "self.votes"),
         notes=("self.votes = self.votes.set(m.sender, True)",)),
    Case("typo-field-read", "typo_field_read.py",
         message=("Follower.on_promote", "reads self.promotd", "not a field of Follower"),
         notes=("did you mean 'promoted'?",)),
    Case("message-missing-field", "message_missing_field.py",
         message=("ResourceManager.on_prepare", "Prepared is missing field 'rm'"),
         notes=("fields of Prepared: rm: str",)),
    Case("message-unknown-field", "message_unknown_field.py",
         message=("ResourceManager.on_prepare", "Prepared has no field 'vote'"),
         notes=("fields of Prepared: rm: str",)),
    Case("message-too-many-fields", "message_arity_field.py",
         message=("ResourceManager.on_prepare", "Prepared takes 1 field(s)",
                  "got 2 positional arguments")),
    # --- wiring ------------------------------------------------------------------------------
    Case("connect-single-port-twice", "connect_single_twice.py",
         message=("c.server", "single port", "already connected"),
         notes=("Port(many=True)",)),
    Case("connect-instance-not-port", "connect_instance.py",
         message=("instance 'a'", "not one of its ports"), notes=("a.<port>", "peer")),
    Case("connect-port-to-itself", "connect_self.py",
         message=("port r.left", "itself"), notes=("s.connect(r.left, r.right)",)),
    Case("connect-class-port", "connect_class_port.py",
         message=("class attribute", "'peer'"), notes=("s.connect(x.port, y.port)",)),
    Case("unknown-port-of-instance", "unknown_port.py",
         message=("instance 'a'", "Node", "no port 'pear'"), notes=("ports of Node: peer",)),
    Case("duplicate-instance", "duplicate_instance.py",
         message=("'node'", "added twice")),
    # --- only while exploring ----------------------------------------------------------------
    Case("send-on-unconnected-port", "send_unconnected.py", when="check",
         message=("port 'peer'", "not connected"), notes=("s.connect(a.peer",)),
    Case("property-raises", "property_raises.py", when="check",
         message=("property 'bounded'", "KeyError", "'b'"),
         notes=("a property must be total", "in state: a(x=0)")),
    Case("terminal-raises", "terminal_raises.py", when="check",
         message=("terminal", "AttributeError", "'y'")),
    # a handler that is not a function of its state and event: it reads outside state
    Case("nondeterministic-clock", "nondeterministic_clock.py", when="check", volatile=True,
         message=("Stamper.tick (instance c)", "two different results for the same state and "
                  "action", "reads the clock, random numbers or other outside state"),
         notes=("the new state: stamp = ", "c fires tick, in state c(ticks=0, stamp=0)",
                "must be functions of the instance's state and the event")),
    Case("nondeterministic-random", "nondeterministic_random.py", when="check",
         volatile=True,
         message=("Dice.roll (instance d)", "same state and timer message"),
         notes=("the new state: last = ", "timer Roll()")),
    Case("nondeterministic-identity", "nondeterministic_identity.py", when="check",
         volatile=True,
         message=("Server.on_ask (instance s)", "same state and message"),
         notes=("the messages sent: [Token(value=", "on Ask() from a, in state s()")),
    Case("nondeterministic-counter", "nondeterministic_counter.py", when="check",
         volatile=True,
         message=("Counter.on_ping (instance c)", "same state and message"),
         notes=("the new state: seen = ",)),
    Case("nondeterministic-domain", "nondeterministic_guard.py", when="check", volatile=True,
         message=("the guard or domain of Picker.pick (instance p)",),
         notes=("enabled with ",)),
    # "the first" element of a set of strs: its order follows PYTHONHASHSEED (redteam)
    Case("nondeterministic-set-order", "nondeterministic_set_order.py", when="check",
         volatile=True,
         message=("Coordinator.elect (instance c)", "same state and action"),
         notes=("the new state: leader = ", "c fires elect, in state c(leader='')",
                "the second run iterated each set the other way round")),
    # ill-formed handler code that only running it shows: a spec error, not a violation
    Case("typo-field-assign-dynamic", "typo_field_assign_dynamic.py", when="check",
         message=("f.on_promote", "assigns self.promotd", "not a field of Follower"),
         notes=("did you mean 'promoted'?",)),
    Case("tuple-item-assign-dynamic", "tuple_item_assign_dynamic.py", when="check",
         message=("a.go", "assigns an item of a tuple", "immutable"),
         notes=("flags = flags[:0] + (True,) + flags[1:]", "flags = flags.set(0, True)")),
    Case("record-field-assign-dynamic", "record_field_assign_dynamic.py", when="check",
         message=("a.bump", "assigns field 'n' of a record", "immutable"),
         notes=("b = b.replace(n=b.n + 1)",)),
    Case("typo-field-read-dynamic", "typo_field_read_dynamic.py", when="check",
         message=("f.on_promote", "reads self.promotd", "not a field of Follower"),
         notes=("did you mean 'promoted'?",)),
    Case("message-missing-field-dynamic", "message_missing_field_dynamic.py", when="check",
         message=("rm.on_prepare", "Prepared is missing field 'rm'"),
         notes=("fields of Prepared: rm: str",)),
    # --- code in the spec ends the process: sys.exit(), exit(), raise SystemExit ---------------
    Case("sys-exit-at-load", "sys_exit_load.py",
         message=("the spec", "SystemExit(0)", "while loading"), notes=(_EXIT_NOTE,)),
    Case("sys-exit-in-system-function", "sys_exit_system.py",
         message=("building system 'system'", "SystemExit(5)"), notes=(_EXIT_NOTE,)),
    Case("sys-exit-in-handler", "sys_exit_handler.py", when="check",
         message=("server.on_ping", "SystemExit(0)"), notes=(_EXIT_NOTE,)),
    Case("exit-in-action", "sys_exit_action.py", when="check",
         message=("a.step", "SystemExit(3)"), notes=(_EXIT_NOTE,)),
    Case("sys-exit-in-guard", "sys_exit_guard.py", when="check",
         message=("the guard of a.step", "SystemExit()"), notes=(_EXIT_NOTE,)),
    Case("system-exit-in-contract", "sys_exit_contract.py", when="check",
         message=("ensures of a.step", "SystemExit(1)"), notes=(_EXIT_NOTE,)),
    Case("sys-exit-in-property", "sys_exit_property.py", when="check",
         message=("property 'bounded'", "SystemExit(0)"), notes=(_EXIT_NOTE,)),
    # os._exit(0) ended the check with exit code 0 and nothing printed: a clean pass
    Case("os-exit-in-handler", "os_exit_handler.py", when="check",
         message=("server.on_ping", "called os._exit(0)"), notes=(_EXIT_NOTE,)),
    Case("os-exit-in-property", "os_exit_property.py", when="check",
         message=("property 'bounded'", "called os._exit(0)"), notes=(_EXIT_NOTE,)),
    # not an Exception: a traceback (exit 1), or "a bug in assay" from a worker process
    Case("generator-exit-in-guard", "generator_exit_guard.py", when="check",
         message=("the guard of a.step", "raised GeneratorExit"), notes=(_EXIT_NOTE,)),
    Case("base-exception-in-handler", "base_exception_handler.py", when="check",
         message=("server.on_ping", "raised Stop: enough", "not an Exception"),
         notes=(_EXIT_NOTE,)),
]

BY_ID = {c.id: c for c in CASES}
IDS = [c.id for c in CASES]


def _cases_with(bug: str) -> list[Any]:
    """CASES, with a strict xfail on the cases where assay has the given kind of bug."""
    out = []
    for c in CASES:
        reason = getattr(c, bug)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def test_every_case_has_its_fixture() -> None:
    on_disk = {p.name for p in BAD.glob("*.py")}
    used = {c.fixture for c in CASES}
    assert used - on_disk == {"does_not_exist.py"}
    assert on_disk - used == set(), "a fixture in bad_specs that no case uses"
    for c in CASES:
        if c.where == "marker" and c.path.exists():
            marker_line(c.path)


# --- the Python API -------------------------------------------------------------------------------

def api_error(case: Case, spec: str | Path | None = None) -> AssayError:
    """Build (and, for errors that show while exploring, check) the case's spec; the error."""
    spec = case.path if spec is None else spec
    if case.when == "build":
        with pytest.raises(AssayError) as info:
            build(spec, case.system, dict(case.params))
    else:
        system, _, _ = build(spec, case.system, dict(case.params))   # loads and builds fine
        with pytest.raises(AssayError) as info:
            check(system)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api_raises_a_user_error(case: Case) -> None:
    err = api_error(case)
    assert isinstance(err, SpecError | UsageError), f"{type(err).__name__}: {err}"
    assert err.exit_code == 2
    rendered = err.render()
    assert "error: " in rendered.splitlines()[0]
    assert all(line.startswith("  note: ") for line in rendered.splitlines()[1:])


@pytest.mark.parametrize("case", _cases_with("kind_bug"))
def test_api_error_kind_message_and_notes(case: Case) -> None:
    err = api_error(case)
    assert type(err) is case.error, f"{type(err).__name__}: {err}"
    for part in case.message:
        assert part in err.message, f"{part!r} not in message {err.message!r}"
    notes = " | ".join(err.notes)
    for part in case.notes:
        assert part in notes, f"{part!r} not in notes {err.notes!r}"
    assert err.__suppress_context__ or err.__cause__ is None and err.__context__ is None, \
        "a user error should not chain the internal exception"


@pytest.mark.parametrize("case", _cases_with("location_bug"))
def test_api_error_location(case: Case) -> None:
    err = api_error(case)
    if case.where == "message":
        assert err.location is None
        assert case.fixture in err.message
        return
    assert err.location is not None, f"no location: {err}"
    assert Path(err.location.file).resolve() == case.path.resolve()
    if case.where == "file":
        assert err.location.line is None
    else:
        assert err.location.line == marker_line(case.path), str(err)


def test_api_errors_that_show_while_exploring_do_so_under_dfs_too() -> None:
    for case in CASES:
        if case.when != "check":
            continue
        system, _, _ = build(case.path)
        with pytest.raises(SpecError) as info:
            check(system, strategy="dfs")
        assert info.value.location is not None
        assert info.value.location.line == marker_line(case.path), case.id


# --- the command line -----------------------------------------------------------------------------

def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def cli() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case through `python -m assay.cli check`, run once, a few at a time."""
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        runs = dict(zip(IDS, pool.map(run_cli, [c.cli_args() for c in CASES])))
    return runs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_exit_code_2_error_on_stderr_no_traceback(
        case: Case, cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    r = cli[case.id]
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "internal error" not in r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert "error:" in r.stderr


@pytest.mark.parametrize("case", _cases_with("kind_bug"))
def test_cli_error_message_and_notes(
        case: Case, cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    r = cli[case.id]
    text = flat(r.stderr)
    for part in case.message + case.notes:
        assert flat(part) in text, f"{part!r} not in {r.stderr!r}"


@pytest.mark.parametrize("case", _cases_with("location_bug"))
def test_cli_error_location(case: Case,
                            cli: dict[str, subprocess.CompletedProcess[str]]) -> None:
    err = cli[case.id].stderr
    if case.where == "message":
        assert err.startswith("error: ")
        assert case.rel in flat(err)
    elif case.where == "file":
        assert err.startswith(f"{case.rel}: error: ")
    else:
        assert err.startswith(f"{case.rel}:{marker_line(case.path)}: error: "), err


def test_cli_prints_each_error_exactly_as_render_does(
        cli: dict[str, subprocess.CompletedProcess[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    wrong = []
    for case in CASES:
        err = api_error(case, case.rel)          # the same relative path the CLI was given
        printed, rendered = cli[case.id].stderr, err.render() + "\n"
        if case.volatile:
            printed, rendered = printed.split("\n")[0], rendered.split("\n")[0]
        if printed != rendered:
            wrong.append(case.id)
    assert wrong == []


def test_cli_spec_error_with_json_flag_still_goes_to_stderr() -> None:
    r = run_cli(["check", BY_ID["unknown-network"].rel, "--json"])
    assert r.returncode == 2
    assert r.stdout == ""
    assert "unknown network model" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_malformed_param_is_a_usage_error() -> None:
    r = run_cli(["check", BY_ID["unknown-param"].rel, "--param", "node_count"])
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    assert re.search(r"error: .*node_count.*name=value", flat(r.stderr)), r.stderr


# --- parameters are typed by their annotation -----------------------------------------------------

def test_api_param_without_default_is_parsed_by_its_annotation() -> None:
    system, name, typed = build(BY_ID["missing-param"].path, params={"node_count": "2"})
    assert typed == {"node_count": 2}
    assert list(system.instances) == ["n0", "n1"]
    assert check(system).states == 4


def test_cli_param_without_default_is_parsed_by_its_annotation() -> None:
    r = run_cli(["check", BY_ID["missing-param"].rel, "--param", "node_count=2", "--json"])
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode == 0, r.stderr
    assert '"states": 4,' in r.stdout


# --- one meaning in every engine ------------------------------------------------------------------

def test_a_requires_on_an_action_is_the_same_spec_error_for_every_command() -> None:
    """An action has no sender to blame, so `@requires` on one has no meaning: `check`,
    `verify` and `simulate` all refuse the spec when it loads, at the decorator's line."""
    case = BY_ID["requires-on-an-action"]
    runs = [run_cli([cmd, case.rel]) for cmd in ("check", "verify", "simulate")]
    for r in runs:
        assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
        assert r.stderr.startswith(f"{case.rel}:{marker_line(case.path)}: error: ")
    assert runs[0].stderr == runs[1].stderr == runs[2].stderr


# --- ill-formed and nondeterministic handler code under the other engines -----------------------

def _deliver(src: str, src_port: str, dst: str, dst_port: str, mtype: str) -> dict[str, Any]:
    return {"kind": "deliver", "to": dst, "port": dst_port, "from": src, "from_port": src_port,
            "message": {"type": mtype, "fields": {}}}


def _fire(instance: str, name: str) -> dict[str, Any]:
    return {"kind": "action", "instance": instance, "action": name, "arg": None}


# hand-written traces whose last step runs the faulty handler
TO_THE_FAULT = {
    "typo-field-assign-dynamic": [_fire("l", "go"), _deliver("l", "peer", "f", "peer", "Promote")],
    "typo-field-read-dynamic": [_fire("l", "go"), _deliver("l", "peer", "f", "peer", "Promote")],
    "message-missing-field-dynamic": [_fire("tm", "ask"),
                                      _deliver("tm", "rm", "rm", "tm", "Prepare")],
    "tuple-item-assign-dynamic": [_fire("a", "go")],
    "record-field-assign-dynamic": [_fire("a", "bump")],
    "nondeterministic-clock": [_fire("c", "tick")],
    "nondeterministic-counter": [_fire("p", "ping"), _deliver("p", "peer", "c", "peer", "Ping")],
}


def _trace(case: Case, path: Path) -> str:
    path.write_text(json.dumps({"format": "assay-trace", "version": 1, "spec": case.rel,
                                "system": "system", "params": {},
                                "events": TO_THE_FAULT[case.id], "verdict": None}))
    return str(path)


@pytest.mark.parametrize("case_id", list(TO_THE_FAULT))
@pytest.mark.parametrize("engine", ["simulate", "simulate-jobs-2", "replay", "run"])
def test_cli_ill_formed_or_nondeterministic_handler_is_exit_2_under_every_engine(
        case_id: str, engine: str, tmp_path: Path) -> None:
    case = BY_ID[case_id]
    args = {"simulate": ["simulate", case.rel, "--runs", "3", "--jobs", "1",
                         "--out", str(tmp_path)],
            "simulate-jobs-2": ["simulate", case.rel, "--runs", "3", "--jobs", "2",
                                "--out", str(tmp_path)],
            "replay": ["replay", _trace(case, tmp_path / "t.json")],
            "run": ["run", case.rel, "--for", "5"]}[engine]
    r = run_cli(args)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"{case.rel}:{marker_line(case.path)}: error: "), r.stderr
    for part in case.message:
        assert flat(part) in flat(r.stderr), r.stderr


# --- sys.exit() in a spec, in every engine --------------------------------------------------------

# (command, fixture, extra arguments): the check engine is covered by CASES above.
EXIT_RUNS = [
    ("simulate", "sys_exit_load.py", ("--runs", "2")),
    ("simulate", "sys_exit_handler.py", ("--runs", "4", "--jobs", "1")),
    ("simulate", "sys_exit_handler.py", ("--runs", "4", "--jobs", "2")),
    ("simulate", "sys_exit_guard.py", ("--runs", "2", "--jobs", "1")),
    ("simulate", "sys_exit_contract.py", ("--runs", "2", "--jobs", "1")),
    ("simulate", "sys_exit_property.py", ("--runs", "2", "--jobs", "1")),
    ("run", "sys_exit_load.py", ()),
    ("run", "sys_exit_handler.py", ()),
    ("run", "sys_exit_action.py", ()),
    ("run", "sys_exit_guard.py", ()),
    ("run", "sys_exit_contract.py", ()),
    ("verify", "sys_exit_load.py", ()),
    ("verify", "sys_exit_system.py", ()),
    ("verify", "sys_exit_contract.py", ()),
    ("simulate", "os_exit_handler.py", ("--runs", "4", "--jobs", "2")),
    ("simulate", "base_exception_handler.py", ("--runs", "4", "--jobs", "2")),
    ("simulate", "generator_exit_guard.py", ("--runs", "2", "--jobs", "1")),
    ("check", "os_exit_handler.py", ("--workers", "2")),
    ("check", "base_exception_handler.py", ("--workers", "2")),
    ("run", "os_exit_handler.py", ()),
    ("run", "base_exception_handler.py", ()),
    ("verify", "base_exception_handler.py", ()),
]


@pytest.mark.parametrize("command,fixture,extra", EXIT_RUNS,
                         ids=[f"{c}-{f.removesuffix('.py')}-{'-'.join(x)}".rstrip("-")
                              for c, f, x in EXIT_RUNS])
def test_cli_sys_exit_in_a_spec_is_a_spec_error_in_every_engine(
        command: str, fixture: str, extra: tuple[str, ...], tmp_path: Path) -> None:
    """SystemExit is a BaseException: it escaped the engines, which then ended with the spec's
    exit code (0 mostly) and no output at all."""
    rel = f"tests/fixtures/bad_specs/{fixture}"
    args = [command, rel, *extra]
    if command == "simulate":
        args += ["--out", str(tmp_path)]
    r = run_cli(args)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"{rel}:{marker_line(BAD / fixture)}: error: "), r.stderr
    said = {"os_exit_handler.py": "called os._exit(0)", "base_exception_handler.py":
            "raised Stop: enough", "generator_exit_guard.py": "raised GeneratorExit"}
    assert said.get(fixture, "SystemExit(") in r.stderr and _EXIT_NOTE in flat(r.stderr)
