"""Loading a spec file and building one of its systems, with every failure a `SpecError`.

A spec may import the modules beside it (`from common import Ping` with `common.py` in the
spec's folder), as a script run from its folder would.  They are not found through
`sys.path`, which stays as it was: each folder's modules live in a package of their own,
`assay_specdir_<hash of the folder>` (so two folders that both have a `common.py` do not
meet in one process), and a spec's `import` (at load time or later, in a handler) looks in
its folder first.  Every engine loads a spec here, worker and node processes included.
"""
from __future__ import annotations

import builtins
import contextlib
import difflib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import linecache
import os
import sys
import sysconfig
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

from assay.errors import (
    LoadInterrupted,
    Location,
    SpecError,
    UsageError,
    exit_error,
    is_user_file,
    not_exceptions,
    traceback_location,
)
from assay.model.system import System

SPEC_MODULE_PREFIX = "assay_spec_"        # the module name of every loaded spec starts so
FOLDER_PREFIX = "assay_specdir_"          # the package of the modules beside a spec


def load_module(path: str | Path) -> Any:
    """Import a spec file as a module; syntax and import errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"spec file {str(path)!r} does not exist")
    digest = hashlib.blake2b(str(p.resolve()).encode(), digest_size=4).hexdigest()
    name = f"{SPEC_MODULE_PREFIX}{p.stem}_{digest}"
    if name in sys.modules:
        if not _changed(name):
            return sys.modules[name]
        _forget(name, p.resolve().parent)    # edited since: a notebook's second verify
    try:
        source = p.read_text()
        code = compile(source, str(p), "exec", dont_inherit=True)
    except SyntaxError as e:
        # the offending line is quoted only from a .py file: a file that is not Python (a
        # trace or a command line may name any file) is never echoed
        quote = p.suffix == ".py" and bool(e.text)
        raise SpecError(f"syntax error: {e.msg}", Location(str(p), e.lineno),
                        [(e.text or "").rstrip()] if quote else
                        [] if p.suffix == ".py" else ["a spec is a Python file (.py)"]) from None
    except UnicodeDecodeError as e:
        raise SpecError(f"the spec is not UTF-8 text: {e.reason}", Location(str(p))) from None
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None:                     # a name Python does not import (not .py): was an
        raise SpecError("not a spec file: a spec is a Python file (.py)",   # AssertionError
                        Location(str(p)), [f"rename it to {p.stem}.py"])
    guard_os_exit()
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = _folder_builtins(p.resolve().parent)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except SpecError:
        del sys.modules[name]
        raise
    except KeyboardInterrupt as e:       # not left half-imported for the next load
        del sys.modules[name]
        if type(e) is KeyboardInterrupt:     # Ctrl-C (not a watch's time limit)
            raise LoadInterrupted(str(path)) from None
        raise
    except SyntaxError as e:             # in a module beside the spec, which it imports
        del sys.modules[name]
        by = _spec_line(sys.exc_info()[2])
        raise SpecError(f"syntax error: {e.msg}", Location(e.filename or str(p), e.lineno),
                        ([(e.text or "").rstrip()] if e.text else [])
                        + ([f"imported at {by}"] if by else [])) from None
    except ImportError as e:
        del sys.modules[name]
        raise SpecError(f"import failed: {_import_message(e)}",
                        _spec_line(sys.exc_info()[2]) or Location(str(p)),
                        _import_notes(e, p.resolve().parent)) from None
    except not_exceptions() as e:
        del sys.modules[name]
        raise exit_error(e, "the spec", Location(str(p)), when=" while loading") from None
    except Exception as e:
        del sys.modules[name]
        raise SpecError(f"the spec raised {type(e).__name__} while loading: {e}",
                        traceback_location(sys.exc_info()[2]) or Location(str(p))) from None
    _LOADED[name] = {f: _read(f) for f in [p, *modules_beside(p)]}
    return module


# the text of each file a loaded spec was built from (its own and the modules beside it that
# were imported by then): a file edited since makes the next load read it again
_LOADED: dict[str, dict[Path, str | None]] = {}


def _read(f: Path) -> str | None:
    try:
        return f.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _changed(name: str) -> bool:
    files = _LOADED.get(name)
    return files is not None and any(_read(f) != text for f, text in files.items())


def _forget(name: str, folder: Path) -> None:
    """Drop a loaded spec and the modules beside it, so that they are imported afresh."""
    del sys.modules[name]
    files = {f.resolve() for f in _LOADED.pop(name, {})}
    for key in [k for k in linecache.cache if not k.startswith("<")]:
        with contextlib.suppress(OSError, ValueError):
            if Path(key).resolve() in files:      # the verifier reads functions' source here
                del linecache.cache[key]
    digest = hashlib.blake2b(str(folder).encode(), digest_size=4).hexdigest()
    prefix = f"{FOLDER_PREFIX}{digest}."
    for n in [n for n in sys.modules if n.startswith(prefix)]:
        del sys.modules[n]


# --- the modules beside a spec -----------------------------------------------------------------

_BUILTINS: dict[Path, dict[str, Any]] = {}


def spec_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame of a loaded spec's code (or of a module beside one) among
    `frame` and the frames that called it, if any."""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.startswith((SPEC_MODULE_PREFIX, FOLDER_PREFIX)):
            return frame
        frame = frame.f_back
    return None


def in_spec_code(frame: FrameType | None) -> bool:
    """Whether code of a loaded spec, or of a module beside one, is running in `frame` or
    a frame that called it."""
    return spec_frame(frame) is not None


_real_os_exit = os._exit


def _os_exit(status: int) -> NoReturn:
    """`os._exit` while specs are loaded: called from a spec's code it raises the
    `SystemExit` that every engine reports as a spec error (else it would end a check with
    the spec's exit code and no report: `os._exit(0)` in a handler passed as a clean run);
    from anywhere else (a worker process ending, the user's own code) it exits."""
    if in_spec_code(sys._getframe(1)):
        e = SystemExit(status)
        e.os_exit = True                 # type: ignore[attr-defined]  # exit_error says so
        raise e
    _real_os_exit(status)


def guard_os_exit() -> None:
    """Put `_os_exit` in place of `os._exit` (once; a process that loads a spec)."""
    if os._exit is _real_os_exit:
        os._exit = _os_exit


def _folder_builtins(folder: Path) -> dict[str, Any]:
    """The builtins of the code of one folder's specs and modules: Python's, with an
    `__import__` that finds the folder's modules first."""
    got = _BUILTINS.get(folder)
    if got is None:
        got = _BUILTINS[folder] = dict(vars(builtins))
        got["__import__"] = _importer(folder)
    return got


def _package(folder: Path) -> str:
    """The name of the package of `folder`'s modules, created on first use."""
    digest = hashlib.blake2b(str(folder).encode(), digest_size=4).hexdigest()
    name = f"{FOLDER_PREFIX}{digest}"
    if name not in sys.modules:
        pkg = types.ModuleType(name, f"the modules beside the specs in {folder}")
        pkg.__path__ = [str(folder)]
        pkg.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        pkg.__spec__.submodule_search_locations = [str(folder)]
        sys.modules[name] = pkg
    if not any(isinstance(f, _FolderFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FolderFinder())
    return name


def modules_beside(spec: str | Path) -> list[Path]:
    """The files of the modules beside `spec` (in its folder's package) that this process has
    imported, sorted: what a spec's behaviour depends on beside its own file."""
    folder = Path(spec).resolve().parent
    digest = hashlib.blake2b(str(folder).encode(), digest_size=4).hexdigest()
    prefix = f"{FOLDER_PREFIX}{digest}."
    files = {getattr(m, "__file__", None) for n, m in list(sys.modules.items())
             if n.startswith(prefix)}
    return sorted(Path(f) for f in files if f)


def _beside(folder: Path, top: str) -> bool:
    """Whether `top` names a module (or package) in `folder`.  `assay` is never one: a spec
    always gets the real one."""
    return top != "assay" and top.isidentifier() and (
        (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file())


def _importer(folder: Path) -> Callable[..., Any]:
    real = builtins.__import__

    def __import__(name: str, globals: Any = None, locals: Any = None,
                   fromlist: Sequence[str] | None = (), level: int = 0) -> Any:
        top = name.partition(".")[0]
        if level == 0 and _beside(folder, top):
            pkg = _package(folder)
            module = importlib.import_module(f"{pkg}.{name}")
            return module if fromlist else sys.modules[f"{pkg}.{top}"]
        return real(name, globals, locals, fromlist or (), level)

    return __import__


class _FolderFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of a folder's package (`assay_specdir_...`): its files and
    subpackages, loaded with the folder's builtins so that they import their siblings too."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(FOLDER_PREFIX) or "." not in name:
            return None
        top = sys.modules.get(name.partition(".")[0])
        parent = sys.modules.get(name.rpartition(".")[0])
        if top is None or parent is None:
            return None
        folder = Path(top.__path__[0])
        last = name.rpartition(".")[2]
        for d in getattr(parent, "__path__", ()):
            init, file = Path(d) / last / "__init__.py", Path(d) / f"{last}.py"
            if init.is_file():
                return importlib.util.spec_from_file_location(
                    name, init, loader=_FolderLoader(name, str(init), folder),
                    submodule_search_locations=[str(init.parent)])
            if file.is_file():
                return importlib.util.spec_from_file_location(
                    name, file, loader=_FolderLoader(name, str(file), folder))
        return None


class _FolderLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, name: str, path: str, folder: Path) -> None:
        super().__init__(name, path)
        self.folder = folder

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = _folder_builtins(self.folder)
        super().exec_module(module)


_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def _spec_line(tb: TracebackType | None) -> Location | None:
    """The innermost line of a spec's (or of a module beside it) in a traceback: not
    assay's, not the standard library's (`importlib` runs between them)."""
    found = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if is_user_file(name) and not os.path.abspath(name).startswith(_STDLIB):
            found = Location(name, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _import_message(e: ImportError) -> str:
    """An import error as the spec wrote it: the folder's package name left out."""
    text = str(e)
    name = getattr(e, "name", None) or ""
    if name.startswith(FOLDER_PREFIX):
        text = text.replace(name, name.partition(".")[2])
    for part in text.split("'"):
        if part.startswith(FOLDER_PREFIX) and "." in part:
            text = text.replace(part, part.partition(".")[2])
    return text


def _import_notes(e: ImportError, folder: Path) -> list[str]:
    missing = getattr(e, "name", None)
    if not isinstance(e, ModuleNotFoundError) or not missing:
        return ["fix the import"]
    here = sorted(f.stem for f in folder.glob("*.py") if f.stem.isidentifier()) + sorted(
        d.name for d in folder.iterdir() if (d / "__init__.py").is_file()) \
        if folder.is_dir() else []
    near = difflib.get_close_matches(missing.partition(".")[0], here, n=1)
    notes = [f"did you mean {near[0]!r}, beside the spec?"] if near else []
    return notes + [f"a spec imports the modules in its folder ({folder}) and installed ones; "
                    "install the missing module, or fix the import"]


def system_functions(module: Any) -> dict[str, Callable[..., System]]:
    """The functions of a spec that build systems: annotated `-> System`, or named `system`."""
    out: dict[str, Callable[..., System]] = {}
    for name, obj in vars(module).items():
        if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        ret = inspect.signature(obj).return_annotation
        if ret is System or ret == "System" or name == "system":
            out[name] = obj
    return out


def parameters(fn: Callable[..., System]) -> dict[str, Any]:
    """The parameters of a system function and their defaults."""
    return {n: p.default for n, p in inspect.signature(fn).parameters.items()}


def build(path: str | Path, system: str | None = None,
          params: dict[str, Any] | None = None) -> tuple[System, str, dict[str, Any]]:
    """Load `path`, pick a system function, parse `params` and build the `System`.

    Returns the system, the function's name and the parameters as typed values.  A
    parameter's value is text (`--param`, a trace), parsed by the parameter's type, or a
    value of that type already (the Python API, `assay.check(path, n=3)`).
    """
    return build_module(load_module(path), str(path), system, params)


def build_module(module: Any, path: str, system: str | None = None,
                 params: dict[str, Any] | None = None) -> tuple[System, str, dict[str, Any]]:
    """`build` for a spec module already imported (`path` names it in messages)."""
    funcs = system_functions(module)
    where = Location(str(path))
    if not funcs:
        raise SpecError("no system in this spec", where,
                        ["define a function that returns a System, e.g. "
                         "'def system(n: int = 3) -> System: ...'"])
    if system is None:
        if len(funcs) == 1:
            system = next(iter(funcs))
        elif "system" in funcs:
            system = "system"
        else:
            raise UsageError(f"{path} defines several systems: {', '.join(sorted(funcs))}",
                             notes=["choose one with --system NAME (from Python: "
                                    "system='NAME')"])
    if system not in funcs:
        raise UsageError(f"{path} has no system {system!r}",
                         notes=[f"systems: {', '.join(sorted(funcs))}"])
    return build_function(funcs[system], path, params, system)


def build_function(fn: Callable[..., Any], path: str, params: dict[str, Any] | None = None,
                   system: str | None = None) -> tuple[System, str, dict[str, Any]]:
    """Build the `System` of the system function `fn` (named `system`, by default its own
    name), with `params` checked and typed as `build` does."""
    system = system or fn.__name__
    where = Location(str(path))
    known = parameters(fn)
    def_line = Location(str(path), _def_line(fn))
    typed: dict[str, Any] = {}
    # `shard0.n=3`: a parameter of the composite shard0 (composite.param_overrides)
    inner: dict[str, dict[str, Any]] = {}
    for k, raw in (params or {}).items():
        if "." in k and k not in known:
            path, _, name = k.rpartition(".")
            inner.setdefault(path, {})[name] = raw
            continue
        if k not in known:
            raise UsageError(f"system {system!r} has no parameter {k!r}", def_line,
                             [f"parameters: {', '.join(known) or '(none)'}"])
        typed[k] = _parse_param(k, raw, known[k], fn, def_line)
    missing = [k for k, d in known.items() if d is inspect.Parameter.empty and k not in typed]
    if missing:
        raise UsageError(f"system {system!r} needs a value for parameter {missing[0]!r}",
                         def_line, [f"give it with --param {missing[0]}=<value> (from "
                                    f"Python: {missing[0]}=<value>)"])
    from assay.model.composite import param_overrides

    try:
        with param_overrides(inner) as ov:
            result = fn(**typed)
    except (SpecError, UsageError):
        raise
    except not_exceptions() as e:
        raise exit_error(e, f"building system {system!r}", where) from None
    except Exception as e:
        raise SpecError(f"building system {system!r} raised {type(e).__name__}: {e}",
                        traceback_location(sys.exc_info()[2]) or where) from None
    if not isinstance(result, System):
        raise SpecError(f"{system}() returned {type(result).__name__}, not a System",
                        Location(str(path), fn.__code__.co_firstlineno))
    if not result.instances:
        raise SpecError(f"system {system!r} has no instances",
                        Location(str(path), fn.__code__.co_firstlineno),
                        ["add instances with s.add(name, ComponentClass)"])
    unused = sorted(f"{p}.{k}" for p, ks in inner.items() for k in ks if p not in ov.seen)
    if unused:
        comps = sorted(ov.seen)
        raise UsageError(f"--param {unused[0]}: system {system!r} has no composite "
                         f"{unused[0].rpartition('.')[0]!r}", def_line,
                         [f"composites: {', '.join(comps)}" if comps else
                          f"system {system!r} adds no composite; its parameters: "
                          f"{', '.join(known) or '(none)'}"])
    full = {**{k: v for k, v in known.items() if v is not inspect.Parameter.empty}, **typed,
            **ov.typed}
    result.load_warnings[:0] = unregistered_properties(fn, system)   # its composites' after
    return result, system, full


def unregistered_properties(fn: Callable[..., Any], system: str | None = None) -> list[str]:
    """A warning for each function the system function `fn` defines that has the shape of
    a property — one parameter (`def safe(g): ...` or `safe = lambda g: ...`), no decorator
    — and that `fn` never names: not registered (`@s.always`, `s.leads_to(p, q)`, ...) nor
    used, so no engine ever evaluates it, and a summary's "all properties hold" says nothing
    of it.  Read from `fn`'s source (none: no warning); the methods of a class defined in
    `fn` are not its functions."""
    import ast
    import textwrap

    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []
    top = tree.body[0] if tree.body else None
    if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    file = inspect.getsourcefile(fn) or ""
    named: set[str] = set()
    defined: list[tuple[str, int]] = []

    def one_parameter(a: ast.arguments) -> bool:
        return len(a.posonlyargs) + len(a.args) == 1 and not (
            a.vararg or a.kwarg or a.kwonlyargs)

    def scan(node: ast.AST, functions: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not functions:
                pass
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and not child.decorator_list and one_parameter(child.args):
                defined.append((child.name, child.lineno))
            elif isinstance(child, ast.Assign) and isinstance(child.value, ast.Lambda) \
                    and one_parameter(child.value.args):
                defined.extend((t.id, child.lineno) for t in child.targets
                               if isinstance(t, ast.Name))
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                named.add(child.id)
            # a class's methods are reached as attributes, not by name: not functions of
            # `fn`; what its body names counts all the same
            scan(child, functions and not isinstance(child, ast.ClassDef))

    scan(top, True)
    return [f"function {name!r} ({file or fn.__name__}:{first + line - 1}) in "
            f"{system or fn.__name__}() looks like a property (one parameter) but is never "
            "registered (@s.always, @s.eventually, s.leads_to, ...) nor used: no engine "
            "evaluates it" for name, line in defined if name not in named]


def _def_line(fn: Callable[..., Any]) -> int:
    from assay.errors import object_location

    loc = object_location(fn)
    return loc.line if loc and loc.line else fn.__code__.co_firstlineno


def _parse_param(name: str, raw: Any, default: Any, fn: Callable[..., Any],
                 where: Location) -> Any:
    """A parameter's value from its text (`--param`, or a trace's `params`), typed by its
    annotation or default; `Annotated[int, Range(lo, hi)]` bounds it."""
    from typing import Annotated, get_args, get_origin

    from assay.model.types import Range

    ann = inspect.signature(fn).parameters[name].annotation
    bounds = None
    if get_origin(ann) is Annotated:
        ann, *extras = get_args(ann)
        bounds = next((x for x in extras if isinstance(x, Range)), None)
    optional = False
    args = get_args(ann)
    if len(args) == 2 and type(None) in args:             # Optional[int], int | None
        optional = True
        ann = next(a for a in args if a is not type(None))
    empty = inspect.Parameter.empty
    # (`empty` is itself a class: an unannotated parameter is typed by its default)
    kind = ann if isinstance(ann, type) and ann is not empty else \
        type(default) if default is not empty and default is not None else str
    if default is None and ann is empty:
        optional = True
    if optional and (raw is None or isinstance(raw, str) and raw.lower() == "none"):
        return None
    if default is None and ann is empty:
        raise UsageError(f"--param {name}={_clip(str(raw))}: parameter {name!r} has neither a "
                         "type nor a default other than None, so its type is unknown", where,
                         [f"annotate it in the system function: {name}: int | None = None "
                          "(or bool, or str)"])
    value = _convert_param(name, raw, kind, where) if isinstance(raw, str) else \
        _typed_param(name, raw, kind, where)
    if bounds is not None and not (bounds.lo <= value <= bounds.hi):
        raise UsageError(f"--param {name}={_clip(str(raw))}: must be between {bounds.lo} and "
                         f"{bounds.hi}", where)
    return value


def _typed_param(name: str, value: Any, kind: Any, where: Location) -> Any:
    """A parameter given as a Python value: it must have the parameter's type (int, bool)."""
    if kind in (int, bool) and isinstance(value, kind) and not (
            kind is int and isinstance(value, bool)):
        return value
    if kind is str:
        raise UsageError(f"parameter {name}={_clip(repr(value))}: expected a str", where)
    name_of = getattr(kind, "__name__", str(kind))
    if kind in (int, bool):
        article = "an" if name_of[0] in "aeiou" else "a"
        raise UsageError(f"parameter {name}={_clip(repr(value))}: expected {article} "
                         f"{name_of}, got {type(value).__name__}", where)
    raise UsageError(f"parameter {name!r} has type {name_of}, which cannot be set", where,
                     ["use int, bool or str parameters"])


def _convert_param(name: str, raw: str, kind: Any, where: Location) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is str:
            return raw
    except ValueError:
        article = "an" if kind.__name__[0] in "aeiou" else "a"
        raise UsageError(f"--param {name}={_clip(raw)}: expected {article} {kind.__name__}",
                         where) from None
    raise UsageError(f"parameter {name!r} has type {getattr(kind, '__name__', kind)}, which "
                     "--param cannot set", where, ["use int, bool or str parameters"])


def _clip(raw: str, most: int = 40) -> str:
    return raw if len(raw) <= most else raw[:most] + "..."
