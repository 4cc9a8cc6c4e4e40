"""Loading a spec file and building one of its systems, with every failure a `SpecError`."""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.errors import Location, SpecError, UsageError, exit_error, traceback_location
from assay.model.system import System

SPEC_MODULE_PREFIX = "assay_spec_"        # the module name of every loaded spec starts so


def load_module(path: str | Path) -> Any:
    """Import a spec file as a module; syntax and import errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"spec file {str(path)!r} does not exist")
    digest = hashlib.blake2b(str(p.resolve()).encode(), digest_size=4).hexdigest()
    name = f"{SPEC_MODULE_PREFIX}{p.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
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
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except SpecError:
        del sys.modules[name]
        raise
    except ImportError as e:
        del sys.modules[name]
        raise SpecError(f"import failed: {e}", traceback_location(sys.exc_info()[2])
                        or Location(str(p)),
                        ["install the missing module, or fix the import"]) from None
    except SystemExit as e:
        del sys.modules[name]
        raise exit_error(e, "the spec", Location(str(p)), when=" while loading") from None
    except Exception as e:
        del sys.modules[name]
        raise SpecError(f"the spec raised {type(e).__name__} while loading: {e}",
                        traceback_location(sys.exc_info()[2]) or Location(str(p))) from None
    return module


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
          params: dict[str, str] | None = None) -> tuple[System, str, dict[str, Any]]:
    """Load `path`, pick a system function, parse `params` and build the `System`.

    Returns the system, the function's name and the parameters as typed values.
    """
    module = load_module(path)
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
                             notes=["choose one with --system NAME"])
    if system not in funcs:
        raise UsageError(f"{path} has no system {system!r}",
                         notes=[f"systems: {', '.join(sorted(funcs))}"])
    fn = funcs[system]
    known = parameters(fn)
    def_line = Location(str(path), _def_line(fn))
    typed: dict[str, Any] = {}
    for k, raw in (params or {}).items():
        if k not in known:
            raise UsageError(f"system {system!r} has no parameter {k!r}", def_line,
                             [f"parameters: {', '.join(known) or '(none)'}"])
        typed[k] = _parse_param(k, raw, known[k], fn, def_line)
    missing = [k for k, d in known.items() if d is inspect.Parameter.empty and k not in typed]
    if missing:
        raise UsageError(f"system {system!r} needs a value for parameter {missing[0]!r}",
                         def_line, [f"give it with --param {missing[0]}=<value>"])
    try:
        result = fn(**typed)
    except SpecError:
        raise
    except SystemExit as e:
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
    full = {**{k: v for k, v in known.items() if v is not inspect.Parameter.empty}, **typed}
    return result, system, full


def _def_line(fn: Callable[..., Any]) -> int:
    from assay.errors import object_location

    loc = object_location(fn)
    return loc.line if loc and loc.line else fn.__code__.co_firstlineno


def _parse_param(name: str, raw: str, default: Any, fn: Callable[..., Any],
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
    kind = ann if isinstance(ann, type) else type(default) if default is not \
        inspect.Parameter.empty else str
    value = _convert_param(name, raw, kind, where)
    if bounds is not None and not (bounds.lo <= value <= bounds.hi):
        raise UsageError(f"--param {name}={_clip(raw)}: must be between {bounds.lo} and "
                         f"{bounds.hi}", where)
    return value


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
