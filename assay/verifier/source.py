"""Finding the source of a function or a lambda: the ast the translation reads.
"""
from __future__ import annotations

import ast
import contextlib
import linecache
import types
from dataclasses import dataclass
from typing import Any

from assay.verifier.types import (
    _MSG_TYPES,
    Unsupported,
    _short,
)

# --- finding the source of a function or a lambda -------------------------------------------------

@dataclass
class _FileIndex:
    lambdas: dict[int, list[ast.Lambda]]
    defs: dict[int, list[ast.FunctionDef]]


_FILES: dict[tuple[str, int], _FileIndex] = {}
_NODES: dict[Any, ast.AST] = {}


def _file_index(filename: str, module_globals: dict[str, Any] | None) -> _FileIndex:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        raise Unsupported(f"the source of {filename} is not available")
    key = (filename, hash("".join(lines)))
    idx = _FILES.get(key)
    if idx is None:
        try:
            tree = ast.parse("".join(lines), filename)
        except SyntaxError:
            raise Unsupported(f"the source of {filename} does not parse") from None
        idx = _FileIndex({}, {})
        for n in ast.walk(tree):
            if isinstance(n, ast.Lambda):
                idx.lambdas.setdefault(n.lineno, []).append(n)
            elif isinstance(n, ast.FunctionDef):
                first = n.decorator_list[0].lineno if n.decorator_list else n.lineno
                idx.defs.setdefault(first, []).append(n)
        _FILES[key] = idx
    return idx


def clear_caches() -> None:
    """Forget parsed sources and message types (after a spec file changed in place)."""
    _FILES.clear()
    _NODES.clear()
    _MSG_TYPES.clear()


def function_node(fn: Any) -> ast.FunctionDef | ast.Lambda:
    """The ast of a function or lambda, found in its file; Unsupported if ambiguous."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        raise Unsupported(f"{_short(fn)} is not a Python function")
    got = _NODES.get(code)
    if got is not None:
        return got  # type: ignore[return-value]
    idx = _file_index(code.co_filename, getattr(fn, "__globals__", None))
    argnames = list(code.co_varnames[:code.co_argcount])
    if code.co_name == "<lambda>":
        cands = [n for n in idx.lambdas.get(code.co_firstlineno, ())
                 if [a.arg for a in n.args.args] == argnames]
        if len(cands) > 1:
            cands = _by_positions(code, cands)
        if len(cands) > 1 and all(ast.dump(c) == ast.dump(cands[0]) for c in cands):
            cands = cands[:1]        # the same text twice means the same function
        where = f"line {code.co_firstlineno}"
        if not cands:
            raise Unsupported(f"cannot find the source of the lambda on {where}",
                              code.co_firstlineno)
        if len(cands) > 1:
            raise Unsupported(f"cannot tell apart the {len(cands)} lambdas on {where}",
                              code.co_firstlineno)
        node: ast.AST = cands[0]
    else:
        cands2 = [n for n in idx.defs.get(code.co_firstlineno, ()) if n.name == code.co_name]
        if len(cands2) != 1:
            raise Unsupported(f"cannot find the source of function {code.co_name}",
                              code.co_firstlineno)
        node = cands2[0]
    _NODES[code] = node
    return node  # type: ignore[return-value]


def _by_positions(code: types.CodeType, cands: list[ast.Lambda]) -> list[ast.Lambda]:
    """The lambdas whose body spans every source position of the code's instructions."""
    try:
        pos = [p for p in code.co_positions()
               if p[0] is not None and p[2] is not None and p[3] is not None
               and not (p[2] == 0 and p[3] == 0)]
    except AttributeError:                  # Python < 3.11: no positions
        return cands
    if not pos:
        return cands

    def spans(n: ast.Lambda) -> bool:
        b = n.body
        lo = (b.lineno, b.col_offset)
        hi = (b.end_lineno, b.end_col_offset)
        return all(lo <= (p[0], p[2]) and (p[1], p[3]) <= hi for p in pos)  # type: ignore
    return [n for n in cands if spans(n)]


def fn_names(fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The closure cells and the globals a function's free names resolve in."""
    fn = getattr(fn, "__func__", fn)
    closure: dict[str, Any] = {}
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        with contextlib.suppress(ValueError):          # an empty cell: the name is unbound
            closure[name] = cell.cell_contents
    return closure, fn.__globals__


# --- the translation ------------------------------------------------------------------------------
