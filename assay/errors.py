"""The one family of errors assay raises at its users.

A user error (a wrong spec, a wrong command line, a trace that does not fit) is an
`AssayError`: it carries a location and notes, and the CLI prints it compiler-style without a
traceback.  A bug in assay itself is an `AssayInternalError` and keeps its traceback.
"""
from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a user's file: where an error is reported."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        path = _relative(self.file)
        return f"{path}:{self.line}" if self.line else path


def _relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C while a spec file was being imported (code at its top level that sleeps or
    loops, or a slow import): the command says so in one line, not with a traceback."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"interrupted while loading {self.path}"


class AssayError(Exception):
    """A user error: printed as `file:line: error: message` followed by `note:` lines."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None,
                 notes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.notes = tuple(notes)

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        head = f"{where}error: {self.message}"
        return "\n".join([head, *(f"  note: {n}" for n in self.notes)])

    def __str__(self) -> str:
        return self.render()


class SpecError(AssayError):
    """The spec is wrong: it does not load, or it uses the language in a way assay rejects."""


class UsageError(AssayError):
    """The command line or an API call is wrong."""


class TraceError(AssayError):
    """A trace file does not fit the spec it names."""


class StateError(AssayError):
    """A state directory holds something assay did not write: a damaged store, one of another
    format, system or node, or an earlier run's files without their store.  Reported at the
    file, never repaired or started over silently (`--fresh` starts over, explicitly)."""


class AssayInternalError(Exception):
    """A bug in assay. Keeps its traceback; please report it."""


def is_user_file(filename: str) -> bool:
    """True for frames that belong to a spec, not to assay or the standard library."""
    if not filename or filename.startswith("<"):
        return False
    filename = os.path.abspath(filename)
    return not filename.startswith(_PACKAGE_DIR + os.sep)


def caller_location(skip: int = 1) -> Location | None:
    """The first frame on the stack outside assay: the spec line that called into the API."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename) and "importlib" not in frame.f_code.co_filename:
            return Location(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


def traceback_location(tb: TracebackType | None) -> Location | None:
    """The innermost frame of a traceback that lies in a user's file."""
    found = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if is_user_file(name):
            found = Location(name, tb.tb_lineno)
        tb = tb.tb_next
    return found


_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def not_exceptions() -> tuple[type[BaseException], ...]:
    """What spec code may raise that is not an `Exception` and not Ctrl-C: `SystemExit`,
    `GeneratorExit`, a `BaseException` of the spec's own.  An engine's `except Exception`
    lets them through and they would end it (or, in a worker process, show as a bug in
    assay); `except not_exceptions()` (evaluated only when something is raised) turns them
    into `exit_error`'s spec error."""
    return tuple(c for c in BaseException.__subclasses__()
                 if c is not Exception and c is not KeyboardInterrupt)


def exit_error(exc: BaseException, what: str, fallback: Location | None = None,
               notes: Sequence[str] = (), when: str = "") -> SpecError:
    """The spec error for code of a spec that raised SystemExit (`sys.exit()`, `exit()`):
    at the spec's line that did it (not the standard library's `exit`), else `fallback`.

    SystemExit is a BaseException, so the `except Exception` that turns a handler's error
    into a violation lets it through, and it would end a check or a run quietly, with the
    spec's exit code.  KeyboardInterrupt is not one of these: it stays Ctrl-C."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if is_user_file(name) and not os.path.abspath(name).startswith(_STDLIB):
            found = Location(name, tb.tb_lineno)
        tb = tb.tb_next
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else repr(exc.code)
        did = f"called os._exit({code})" if getattr(exc, "os_exit", False) else \
            f"raised SystemExit({code})"
    else:                           # GeneratorExit, a BaseException of the spec's own
        did = f"raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "") + \
            " (a BaseException, not an Exception)"
    return SpecError(f"{what} {did}{when}", found or fallback,
                     ["code in a spec must not end the process (sys.exit(), exit(), os._exit() "
                      "and raise SystemExit do) nor raise what is not an Exception: return, "
                      "raise an ordinary exception, or model a stopped component with a field",
                      *notes])


def _decorator_lines(lines: list[str]) -> int:
    """How many lines of a function's source come before its `def` (its decorators)."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:                  # a lambda inside a larger expression, say
        return 0
    node = tree.body[0] if tree.body else None
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.lineno - 1
    return 0


def object_location(obj: object) -> Location | None:
    """Where a function or class is defined."""
    import inspect

    try:
        target = inspect.unwrap(obj)  # type: ignore[arg-type]
        file = inspect.getsourcefile(target)  # type: ignore[arg-type]
        lines, line = inspect.getsourcelines(target)  # type: ignore[arg-type]
        if inspect.isfunction(target) and target.__name__ == "<lambda>":
            # its source block is the statement it is in: a decorator's, say, whose own
            # `def` follows; the lambda is on its first line
            line = target.__code__.co_firstlineno
        elif inspect.isfunction(target):
            line += _decorator_lines(lines)
    except (TypeError, OSError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return None
        return Location(code.co_filename, code.co_firstlineno)
    return Location(file or "<unknown>", line or None)


def verdict(result: object, what: str, where: Location | None) -> bool:
    """The truth of what a predicate (a guard, a contract, an invariant, a property) returned,
    for a result that is not already `True` or `False` (callers test those first: this is on
    the hot path).  A result whose truth says nothing about the state is a spec error, never
    a verdict: `None` (a `def` without `return`: every state would fail), a function or method
    (`self.ready` for `self.ready()`), a generator (`(x for ...)` for `all(x for ...)`) or
    an iterator (each always true, so the predicate would hold everywhere, unchecked)."""
    import inspect
    from collections.abc import Iterator

    if result is None:
        problem, fix = "None", "a predicate returns a bool: did you forget 'return'?"
    elif inspect.isgenerator(result) or inspect.iscoroutine(result) or \
            isinstance(result, Iterator):
        problem = f"a {type(result).__name__} object, which is always true"
        fix = "wrap a generator expression in all(...) or any(...)"
    elif callable(result):
        problem = f"{result!r}, a function, which is always true"
        fix = "call it: self.ready(), not self.ready"
    else:
        return bool(result)
    raise SpecError(f"{what} returned {problem}, not a bool", where, [fix])
