"""Checks of a whole system before anything runs: what can be known from the wiring alone."""
from __future__ import annotations

import ast
import inspect
import textwrap

from assay.errors import Location, SpecError, object_location
from assay.model.component import component_info
from assay.model.system import System
from assay.model.types import SUPPORTED, UnsupportedType


def validate(system: System) -> None:
    """Raise `SpecError` for a handled message type assay cannot check, or for a send on a
    port that no connection reaches.

    The kernel reports such a send when it happens; this finds it before exploring, at the
    line that would make it.
    """
    for cls in system.instances.values():
        for h in component_info(cls).handlers.values():
            try:
                h.message.field_types()
            except UnsupportedType as e:
                raise SpecError(str(e), object_location(h.message),
                                [f"use {SUPPORTED}"]) from None
    conns = [*system.connections, *system.hops]
    connected = {(c.a.instance, c.a.port) for c in conns} | \
                {(c.b.instance, c.b.port) for c in conns}
    checked: set[tuple[type, str]] = set()
    for name, cls in system.instances.items():
        info = component_info(cls)
        for port in info.ports:
            if (name, port) in connected or (cls, port) in checked:
                continue
            checked.add((cls, port))
            where = _send_site(cls, port)
            if where is not None:
                exported = next((f"{c}.{e}" for c, comp in system.composites.items()
                                 for e, ref in comp.exports.items()
                                 if (ref.instance, ref.port) == (name, port)), None)
                raise SpecError(f"{name} ({cls.__name__}) sends on port {port!r}, which is not "
                                "connected in this system", where,
                                [f"connect it: s.connect({name}.{port}, <peer>.<port>), or remove "
                                 "the send"] if exported is None else
                                [f"it is exported as {exported}: connect that, "
                                 f"s.connect(<peer>.<port>, {exported})"])


def _send_site(cls: type, port: str) -> Location | None:
    """The first `self.<port>.send(...)` or `.broadcast(...)` in the class body or in a method
    it inherits (a handler of a base class runs for the subclass too), if any.  A base's
    method that the class overrides is not its code and is skipped."""
    for base in cls.__mro__:
        if base is object or (base is not cls and base.__module__.startswith("assay.")):
            continue
        where = _own_send_site(cls, base, port)
        if where is not None:
            return where
    return None


def _own_send_site(cls: type, base: type, port: str) -> Location | None:
    try:
        lines, start = inspect.getsourcelines(base)
        file = inspect.getsourcefile(base) or "?"
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    hidden: set[int] = set()           # the nodes of methods overridden below `base`
    if base is not cls and tree.body and isinstance(tree.body[0], ast.ClassDef):
        for stmt in tree.body[0].body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    next((k for k in cls.__mro__ if stmt.name in vars(k)), base) is not base:
                hidden.update(id(n) for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if (id(node) not in hidden and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("send", "broadcast")
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == port
                and isinstance(node.func.value.value, ast.Name)
                and node.func.value.value.id == "self"):
            return Location(file, start + node.lineno - 1)
    return None
