"""assay's pytest plugin (entry point `pytest11`): specs as test items, and a fixture.

* `pytest --assay specs/` collects every spec file (a `.py` file that imports assay and
  defines a system function; not a test module) as test items: one per system function, and
  per parameter set the spec ships (`ASSAY_PARAMS`).  An item runs `assay.check` and passes
  iff the result is what the spec expects: by default no violation, every state explored;
  `ASSAY_EXPECT = "violation"` (or `{"verdict": "violation", "property": "mutex"}`) for a
  spec that must break.  `ASSAY_CHECK = {...}` gives `assay.check` options (faults, bounds).
* The `assay_check` fixture is `assay.check` for a test's own assertions; a test marked
  `@pytest.mark.assay_expect("violation", property="mutex")` fails when a check it makes
  does not end so.
* A failure shows the counterexample as `assay check` prints it, and the trace file written
  for `assay replay` (under `--assay-traces`, by default `assay-traces/` in the rootdir).
* A check that ends as expected but whose result carries warnings (`CheckResult.warnings`:
  a property that reads nothing, "0 transitions", a reduction not applied) issues each as an
  `AssayCheckWarning`, so that it shows in pytest's warnings summary rather than passing
  silently; `-W error::assay.pytest_plugin.AssayCheckWarning` makes it fail the test.

Everything runs in the process (or the pytest-xdist worker) that runs the item; nothing here
is semantics: `assay.api` loads, builds and checks.
"""
from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from assay.errors import AssayError, UsageError

if TYPE_CHECKING:
    from assay.checker import CheckResult

VERDICTS = ("ok", "violation")


class AssayCheckWarning(UserWarning):
    """A check that ended as expected, with something its result says a person should look
    at (`CheckResult.warnings`): filter it (`ignore::assay.pytest_plugin.AssayCheckWarning`)
    or make it fail the test (`error::...`) like any warning."""


def _warnings_of(r: CheckResult, where: str) -> list[AssayCheckWarning]:
    """One `AssayCheckWarning` per warning of `r`, each naming the check it comes from."""
    return [AssayCheckWarning(f"{where}: {w}") for w in r.warnings]


# --- what a check is expected to end with ---------------------------------------------------

@dataclass(frozen=True)
class Expectation:
    """The verdict a check must end with: "ok" (every state explored, nothing broken) or
    "violation" — optionally of one `property` (a violation's name: a property, or
    "deadlock") and one `kind` (property, invariant, requires, ensures, protocol, deadlock,
    liveness, exception, ...)."""

    verdict: str = "ok"
    property: str | None = None
    kind: str | None = None

    @classmethod
    def of(cls, value: Any, where: str) -> Expectation:
        """From `ASSAY_EXPECT` or a marker's arguments: a verdict, or a dict of the fields."""
        if isinstance(value, Expectation):
            return value
        if isinstance(value, str):
            value = {"verdict": value}
        if not isinstance(value, Mapping) or not set(value) <= {"verdict", "property", "kind"}:
            raise UsageError(f"{where}: {value!r} is not an expectation",
                             notes=["write 'ok', 'violation', or "
                                    "{'verdict': 'violation', 'property': NAME, 'kind': KIND}"])
        verdict = value.get("verdict", "violation" if len(value) else "ok")
        if verdict not in VERDICTS:
            raise UsageError(f"{where}: verdict {verdict!r} is not one of "
                             f"{', '.join(VERDICTS)}")
        if verdict == "ok" and (value.get("property") or value.get("kind")):
            raise UsageError(f"{where}: property= and kind= name the violation expected; "
                             "they go with 'violation'")
        return cls(verdict, value.get("property"), value.get("kind"))

    def mismatch(self, r: CheckResult) -> str | None:
        """Why `r` is not what was expected, in one sentence; None when it is."""
        if r.verdict == "incomplete":
            why = "interrupted" if r.reason == "interrupted" else \
                f"stopped at the {r.reason} bound"
            return (f"incomplete: the check {why} before every state was explored, so it "
                    f"shows neither that everything holds nor the expected violation"
                    if self.verdict == "violation" else
                    f"incomplete: the check {why} before every state was explored (no "
                    "violation so far); raise the bound or give max_states/max_time")
        if self.verdict == "ok":
            return None if r.verdict == "ok" else "a violation was found"
        if r.verdict != "violation":
            return f"no violation was found, but {self.describe()} was expected"
        found = [f.violation for f in r.findings] or \
            ([r.violation] if r.violation is not None else [])
        if any((self.property is None or v.name == self.property)
               and (self.kind is None or v.kind == self.kind) for v in found):
            return None
        got = ", ".join(f"{v.kind} {v.name or ''}".rstrip() for v in found)
        return f"{self.describe()} was expected, but the check found: {got}"

    def describe(self) -> str:
        what = " ".join(x for x in (self.kind, repr(self.property) if self.property else None)
                        if x)
        return f"a violation ({what})" if what else "a violation"


def _marker_expectation(marker: pytest.Mark) -> Expectation:
    args = dict(marker.kwargs)
    if marker.args:
        if len(marker.args) > 1 or "verdict" in args:
            raise UsageError("assay_expect takes one verdict: "
                             "@pytest.mark.assay_expect('violation', property=NAME)")
        args["verdict"] = marker.args[0]
    args.setdefault("verdict", "violation")
    return Expectation.of(args, "@pytest.mark.assay_expect")


# --- options ----------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("assay", "assay specs as tests")
    group.addoption("--assay", action="store_true", default=False,
                    help="collect spec files (a .py file that defines a system function) as "
                         "test items, one per system and parameter set: each passes iff "
                         "`assay check` ends as the spec expects (ASSAY_EXPECT; by default: "
                         "no violation, every state explored)")
    group.addoption("--assay-max-states", type=int, default=None, metavar="N",
                    help="stop each spec item's check after N states (it then fails: "
                         "incomplete)")
    group.addoption("--assay-max-time", type=float, default=None, metavar="SECONDS",
                    help="stop each spec item's check after this long (it then fails: "
                         "incomplete)")
    group.addoption("--assay-traces", default=None, metavar="DIR",
                    help="where the counterexample of a failing check is written as a trace "
                         "file (default: assay-traces/ in the rootdir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "assay_expect(verdict='violation', *, property=None, kind=None): every "
        "check this test makes with the assay_check fixture must end so")


def _traces_dir(config: pytest.Config) -> Path:
    given = config.getoption("assay_traces")
    return Path(given) if given else config.rootpath / "assay-traces"


def _write_trace(config: pytest.Config, r: CheckResult, stem: str) -> Path | None:
    """Write `r`'s counterexample as a trace file; its path, or None (no counterexample)."""
    if r.trace is None:
        return None
    folder = _traces_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^\w.=,-]+", "_", stem).strip("_") + ".json")
    r.trace.write(path)
    _write_page(r, path)
    return path


def _page_of(trace: Path) -> Path:
    return trace.with_suffix(".html")


def _write_page(r: CheckResult, trace: Path) -> None:
    """Beside the trace file, the trace explorer's page of it (`assay replay TRACE --html`);
    none when the trace cannot be replayed from a file (a `System` built in the test)."""
    from assay.errors import AssayError
    from assay.explorer import trace_page

    assert r.trace is not None
    if not r.spec:
        return
    try:
        page = trace_page(r.trace, str(trace))
    except AssayError:
        return
    _page_of(trace).write_text(page, encoding="utf-8")


def _failure_text(head: str, r: CheckResult, trace: Path | None) -> str:
    text = f"{head}\n\n{r.text()}"
    if trace is not None:
        text += f"trace written to {trace}\n  replay it: assay replay {trace}\n"
        if _page_of(trace).exists():
            text += f"  see it in a browser: {_page_of(trace)}\n"
    return text


# --- spec files as test items -----------------------------------------------------------------

def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not config.getoption("assay") or file_path.suffix != ".py":
        return None
    if file_path.name in ("conftest.py", "__init__.py", "setup.py") or any(
            fnmatch.fnmatch(file_path.name, p) for p in config.getini("python_files")):
        return None                         # a test module: pytest's own collector's
    try:
        source = file_path.read_text(errors="replace")
    except OSError:
        return None
    if not re.search(r"^\s*(from\s+assay\b|import\s+assay\b)", source, re.M):
        return None
    return SpecFile.from_parent(parent, path=file_path)


class SpecFile(pytest.File):
    """A spec file: one item per system function (and per parameter set it ships)."""

    def collect(self) -> Iterator[pytest.Item]:
        from assay.model.load import load_module, parameters, system_functions

        try:
            module = load_module(self.path)
            funcs = system_functions(module)
            sets = _parameter_sets(module, sorted(funcs))
            expect = Expectation.of(getattr(module, "ASSAY_EXPECT", "ok"),
                                    f"{self.path.name}: ASSAY_EXPECT")
            options = getattr(module, "ASSAY_CHECK", {})
            if not isinstance(options, Mapping):
                raise UsageError(f"{self.path.name}: ASSAY_CHECK is a "
                                 f"{type(options).__name__}, not a dict of assay.check "
                                 "options", notes=["e.g. ASSAY_CHECK = {'faults': 'crash=1'}"])
        except AssayError as e:
            yield SpecItem.from_parent(self, name="load", error=e)
            return
        if not funcs:
            return                          # a module beside the specs, not a spec
        for name in sorted(funcs):
            for params in sets.get(name, [{}]):
                label = ",".join(f"{k}={v}" for k, v in params.items())
                known = parameters(funcs[name])
                error = None
                unknown = [k for k in params if k not in known]
                if unknown:
                    error = UsageError(f"{self.path.name}: ASSAY_PARAMS gives {unknown[0]!r}, "
                                       f"which system {name!r} does not take",
                                       notes=[f"parameters: {', '.join(known) or '(none)'}"])
                yield SpecItem.from_parent(self, name=f"{name}[{label}]" if label else name,
                                           system=name, params=params, expect=expect,
                                           options=dict(options), error=error,
                                           line=funcs[name].__code__.co_firstlineno)


def _parameter_sets(module: Any, systems: list[str]) -> dict[str, list[dict[str, Any]]]:
    """`ASSAY_PARAMS`: a list of parameter sets (dicts) for every system of the spec, or a
    dict from system name to such a list."""
    raw = getattr(module, "ASSAY_PARAMS", None)
    fix = ["write ASSAY_PARAMS = [{'n': 2}, {'n': 3}] (one item each), or "
           "{'system_name': [{...}, ...]}"]
    if raw is None:
        return {}
    if isinstance(raw, Mapping) and all(isinstance(v, list | tuple) for v in raw.values()):
        unknown = [k for k in raw if k not in systems]
        if unknown:
            raise UsageError(f"ASSAY_PARAMS names {unknown[0]!r}, which is not a system of "
                             "this spec", notes=[f"systems: {', '.join(systems)}"])
        table = {k: list(v) for k, v in raw.items()}
    elif isinstance(raw, list | tuple):
        table = {name: list(raw) for name in systems}
    else:
        raise UsageError(f"ASSAY_PARAMS is a {type(raw).__name__}", notes=fix)
    for sets in table.values():
        if not sets or not all(isinstance(p, Mapping) for p in sets):
            raise UsageError("ASSAY_PARAMS: every parameter set is a dict", notes=fix)
    return {k: [dict(p) for p in v] for k, v in table.items()}


class SpecFailure(Exception):
    """A spec item's check did not end as expected."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class SpecItem(pytest.Item):
    """One system (with one parameter set) of a spec file, checked."""

    def __init__(self, *, system: str = "", params: dict[str, Any] | None = None,
                 expect: Expectation | None = None, options: dict[str, Any] | None = None,
                 error: AssayError | None = None, line: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.line = line                    # the system function's, in the spec file
        self.system = system
        self.params = params or {}
        self.expect = expect or Expectation()
        self.options = options or {}
        self.error = error
        self.result: CheckResult | None = None

    def runtest(self) -> None:
        from assay.api import check

        if self.error is not None:
            raise self.error
        options = dict(self.options)
        for key in ("max_states", "max_time"):
            value = self.config.getoption(f"assay_{key}")
            if value is not None:
                options[key] = value
        spec = _as_given(self.path, self.config)
        try:
            r = check(spec, self.system, params=self.params, **options)
        except TypeError as e:              # an ASSAY_CHECK key that check() does not take
            raise UsageError(f"{self.path.name}: ASSAY_CHECK: {e}") from None
        self.result = r
        wrong = self.expect.mismatch(r)
        if wrong is None:
            for w in _warnings_of(r, f"assay check {spec} :: {self.name}"):
                # (not `self.warn`: it needs a line, and an item has none; the system
                # function's is where a reader looks)
                warnings.warn_explicit(w, AssayCheckWarning, str(self.path), self.line)
            return
        stem = f"{self.path.stem}-{self.name}"
        trace = _write_trace(self.config, r, stem)
        if trace is not None:
            self.user_properties.append(("assay_trace", str(trace)))
        raise SpecFailure(_failure_text(f"assay check {spec} :: {self.name}: {wrong}", r, trace))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        if isinstance(excinfo.value, SpecFailure):
            return excinfo.value.text
        if isinstance(excinfo.value, AssayError):
            return excinfo.value.render()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"assay check {self.path.name} :: {self.name}"


def _as_given(path: Path, config: pytest.Config) -> str:
    """A spec's path as a user would type it: relative to where pytest was started."""
    try:
        return os.path.relpath(path, config.invocation_params.dir)
    except ValueError:                      # another drive (Windows)
        return str(path)


# --- the fixture ------------------------------------------------------------------------------

class AssayCheck:
    """`assay_check(spec, system=None, *, faults=..., params=..., **options)`: `assay.check`
    within a test.  A relative spec path is found from the working directory, else from the
    rootdir.  Under `@pytest.mark.assay_expect(...)` a check that does not end as expected
    fails the test, with its counterexample; otherwise the test asserts on the result."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.results: list[CheckResult] = []
        self.shown: set[int] = set()        # failed the test with their text already

    def __call__(self, spec: Any, system: str | None = None, **kwargs: Any) -> CheckResult:
        from assay.api import check

        config = self.request.config
        if isinstance(spec, str | os.PathLike):
            p = Path(spec)
            if not p.is_absolute() and not p.exists() and (config.rootpath / p).exists():
                spec = str(config.rootpath / p)
        r = check(spec, system, **kwargs)
        self.results.append(r)
        marker = self.request.node.get_closest_marker("assay_expect")
        if marker is not None:
            wrong = _marker_expectation(marker).mismatch(r)
            if wrong is not None:
                trace = self.write_trace(r)
                self.shown.add(id(r))
                pytest.fail(_failure_text(f"assay_check: {wrong}", r, trace), pytrace=False)
        for w in _warnings_of(r, f"assay_check({r.spec or r.system_name!r})"):
            warnings.warn(w, stacklevel=2)      # at the test's line that called the check
        return r

    def write_trace(self, r: CheckResult) -> Path | None:
        n = self.results.index(r) + 1 if r in self.results else 0
        return _write_trace(self.request.config, r, f"{self.request.node.name}-{n}")


@pytest.fixture
def assay_check(request: pytest.FixtureRequest) -> AssayCheck:
    """`assay.check` for a test: returns the `CheckResult` to assert on (`r.ok`,
    `r.verdict`, `r.violation`); a failing test shows each check's counterexample."""
    checker = AssayCheck(request)
    request.node.stash[_CHECKS] = checker
    return checker


_CHECKS = pytest.StashKey[AssayCheck]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    checker = item.stash.get(_CHECKS, None)
    if checker is None or report.when != "call" or not report.failed:
        return report
    # a test that failed after checks that found something: show what they found
    for r in checker.results:
        if r.verdict == "ok" or id(r) in checker.shown:
            continue
        trace = checker.write_trace(r)
        text = r.text()
        if trace is not None:
            text += f"trace written to {trace}\n"
            if _page_of(trace).exists():
                text += f"  see it in a browser: {_page_of(trace)}\n"
        report.sections.append((f"assay check {r.spec or r.system_name}", text))
    return report
