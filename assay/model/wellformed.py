"""Static checks of a component's code, when its class is compiled: what its methods do with
`self`, and the messages they build, read from the source.

Each finding is a `SpecError` at the exact line, before anything runs and on paths no run may
reach.  The kernel finds the same mistakes when a handler runs (`exec.ill_formed`), including
those no reading of the source can see (`setattr`, another name for `self`), so this is an
early warning, never the only check.
"""
from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from typing import Any

from assay.errors import Location, SpecError, is_user_file
from assay.model.message import Message


def check_code(cls: type, fields: tuple[str, ...]) -> None:
    """Raise a `SpecError` at the first method line of `cls` (or of a base it inherits
    methods from) that assigns or reads an attribute of `self` that is not a field, a port,
    a method or another class attribute, or that builds a message with missing or unknown
    fields."""
    for klass in cls.__mro__:
        try:
            file = inspect.getsourcefile(klass)
            if file is None or not is_user_file(file):
                continue
            lines, start = inspect.getsourcelines(klass)
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except (OSError, TypeError, SyntaxError):
            continue                         # no source to read: the kernel still checks
        node = tree.body[0] if tree.body else None
        if not isinstance(node, ast.ClassDef):
            continue
        names = vars(sys.modules[klass.__module__]) if klass.__module__ in sys.modules else {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                _Method(cls, fields, item, names, file, start).check()


class _Method:
    """One method of the class body, checked against the class `cls` it runs as."""

    def __init__(self, cls: type, fields: tuple[str, ...],
                 fn: ast.FunctionDef | ast.AsyncFunctionDef, names: dict[str, Any], file: str,
                 start: int) -> None:
        self.cls = cls
        self.fields = fields
        self.fn = fn
        self.names = names
        self.file = file
        self.start = start
        self.where = f"{cls.__name__}.{fn.name}"

    def location(self, node: ast.AST) -> Location:
        return Location(self.file, self.start + getattr(node, "lineno", 1) - 1)

    def check(self) -> None:
        for node in ast.walk(self.fn):
            if isinstance(node, ast.Call):
                self.check_message(node)
        decorators = {d.id for d in self.fn.decorator_list if isinstance(d, ast.Name)}
        args = self.fn.args.posonlyargs + self.fn.args.args
        if decorators & {"staticmethod", "classmethod"} or not args:
            return
        me = args[0].arg
        for node in _walk_binding(self.fn.body, me):
            if isinstance(node, ast.Name) and node.id == me and \
                    not isinstance(node.ctx, ast.Load):
                return                       # `self` is rebound: cannot tell what it is
        for node in _walk_binding(self.fn.body, me):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == me:
                self.check_attribute(node)

    def check_attribute(self, node: ast.Attribute) -> None:
        from assay.model.component import Port

        attr = node.attr
        if attr in self.fields:
            return
        cname = self.cls.__name__
        if isinstance(node.ctx, ast.Store):
            if "__setattr__" in _own(self.cls):
                return                       # the class decides what it accepts
            static = inspect.getattr_static(self.cls, attr, None)
            if isinstance(static, Port):
                raise SpecError(f"{self.where} assigns self.{attr}, which is a port of {cname}, "
                                "not a field", self.location(node),
                                [f"send through it: self.{attr}.send(...)",
                                 f"fields of {cname}: {', '.join(self.fields) or '(none)'}"])
            if getattr(static, "__set__", None) is not None:
                return                       # a property with a setter, say
            raise SpecError(f"{self.where} assigns self.{attr}, which is not a field of "
                            f"{cname}", self.location(node),
                            field_notes(cname, self.fields, attr))
        if "__getattr__" in _own(self.cls):
            return                           # the class answers any name itself
        if isinstance(node.ctx, ast.Load) and not hasattr(self.cls, attr):
            raise SpecError(f"{self.where} reads self.{attr}, which is not a field of {cname}",
                            self.location(node), field_notes(cname, self.fields, attr))

    def check_message(self, call: ast.Call) -> None:
        """`M(...)` where `M` names a message class: the fields it gives."""
        if not isinstance(call.func, ast.Name):
            return
        mcls = self.names.get(call.func.id)
        if not (isinstance(mcls, type) and issubclass(mcls, Message)):
            return
        if any(isinstance(a, ast.Starred) for a in call.args) or \
                any(k.arg is None for k in call.keywords):
            return                           # *args or **kwargs: only running it tells
        fields = mcls.__assay_fields__
        name = mcls.__name__
        given = fields[:len(call.args)]
        problem = None
        if len(call.args) > len(fields):
            problem = f"{name} takes {len(fields)} field(s), got {len(call.args)} positional " \
                      "arguments"
        else:
            for k in call.keywords:
                if k.arg not in fields:
                    problem = f"{name} has no field {k.arg!r}; fields: " \
                              f"{', '.join(fields) or '(none)'}"
                elif k.arg in given:
                    problem = f"{name} got field {k.arg!r} twice (by position and by name)"
                if problem:
                    break
            else:
                named = {k.arg for k in call.keywords}
                missing = [f for f in fields[len(call.args):]
                           if f not in named and f not in mcls.__assay_defaults__]
                if missing:
                    problem = f"{name} is missing field {missing[0]!r}"
        if problem:
            raise SpecError(f"{self.where} builds a message wrongly: {problem}",
                            self.location(call),
                            [f"fields of {name}: {mcls.describe_fields()}",
                             "give every field without a default, by position or by name, "
                             "and no others"])


def field_notes(owner: str, fields: tuple[str, ...], attr: str) -> list[str]:
    """Notes for a misspelt field: the fields, and the nearest one."""
    import difflib

    notes = [f"fields of {owner}: {', '.join(fields) or '(none)'}"]
    near = difflib.get_close_matches(attr, fields, n=1)
    if near:
        notes.insert(0, f"did you mean {near[0]!r}?")
    return notes


def _walk_binding(body: list[ast.stmt], name: str) -> list[ast.AST]:
    """The nodes of `body`, without nested functions, lambdas or classes that bind `name`
    again (there it is something else)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            bound = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            bound |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
            if name in bound:
                continue
        elif isinstance(node, ast.ClassDef):
            continue
        out.append(node)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out


def _own(cls: type) -> set[str]:
    """The names the spec's own classes in `cls`'s hierarchy define (not assay's, not
    `object`'s)."""
    return {n for k in cls.__mro__ if k.__module__ != "builtins"
            and not k.__module__.startswith("assay.") for n in vars(k)}
