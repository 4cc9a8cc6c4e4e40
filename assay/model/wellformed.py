"""Static checks of a component's code, when its class is compiled: what its methods do with
`self`, the messages and records they build, and changes made in place to a field's value
(`self.flag[i] = True`: every assay value is immutable), read from the source.

Each finding is a `SpecError` at the exact line, before anything runs and on paths no run may
reach.  The kernel finds the same mistakes when a handler runs (`exec.ill_formed`), including
those no reading of the source can see (`setattr`, another name for `self`), so this is an
early warning, never the only check.
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from typing import Any

from assay.errors import Location, SpecError, is_user_file, traceback_location
from assay.model.record import Record
from assay.model.types import (
    ImmutableError,
    TypeSpec,
    _FrozenSet,
    _Map,
    _Optional,
    _Record,
    _Str,
    _Tuple,
)


def check_code(cls: type, fields: tuple[str, ...], types: tuple[TypeSpec, ...] = ()) -> None:
    """Raise a `SpecError` at the first method line of `cls` (or of a base it inherits
    methods from) that assigns or reads an attribute of `self` that is not a field, a port,
    a method or another class attribute, that builds a message or record with missing or
    unknown fields, or that changes a field's value in place (an item or an attribute of
    `self.<field>`: `types` are the fields' types, for the fix)."""
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
        _check_redefined(klass, node, file, start)
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                _Method(cls, fields, item, names, file, start,
                        dict(zip(fields, types))).check()


def _own_nodes(body: list[ast.stmt]) -> Any:
    """The nodes of a function body, not those of functions, lambdas or classes in it."""
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                              | ast.ClassDef):
                todo.append(child)


# methods that change a list, set or dict in place
_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "sort",
                       "reverse", "add", "discard", "update", "setdefault", "popitem",
                       "difference_update", "intersection_update",
                       "symmetric_difference_update"})


# the decorators that make a method part of the model: a second `def` of the same name in the
# class body replaces the first, and with it the handler or action it declared
_DECLARING = frozenset({"on", "action", "requires", "ensures", "on_start", "on_restart",
                        "invariant", "initially"})


def _declares(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """What `fn` is by its assay decorators (`@on(...)`, `@assay.action(...)`): "on",
    "action", "on_start", "on_restart", another of `_DECLARING`, or None."""
    names = set()
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.id if isinstance(target, ast.Name) else \
            target.attr if isinstance(target, ast.Attribute) else None
        if name in _DECLARING:
            names.add(name)
    return next((k for k in ("on", "action", "on_start", "on_restart") if k in names),
                min(names) if names else None)


def _check_redefined(klass: type, node: ast.ClassDef, file: str, start: int) -> None:
    """Two methods of one name in a class body, the first a handler or action (say two
    `def handle(self, m)` with `@on(Ping)` and `@on(Pong)`): Python keeps only the second, so
    the first would be silently lost."""
    seen: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for item in node.body:
        if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = seen.get(item.name)
        kind = _declares(first) if first is not None else None
        if first is not None and kind is not None:
            line = start + first.lineno - 1
            raise SpecError(f"{klass.__name__} defines {item.name} twice: the second definition "
                            f"replaces the first (line {line}, with @{kind}), which is lost",
                            Location(file, start + item.lineno - 1),
                            ["give each handler and action its own method name"])
        seen[item.name] = item


class _Method:
    """One method of the class body, checked against the class `cls` it runs as."""

    def __init__(self, cls: type, fields: tuple[str, ...],
                 fn: ast.FunctionDef | ast.AsyncFunctionDef, names: dict[str, Any], file: str,
                 start: int, types: dict[str, TypeSpec] | None = None) -> None:
        self.cls = cls
        self.types = types or {}
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
        kind = _declares(self.fn)
        if kind in ("on", "action", "on_start", "on_restart"):
            self.check_returns(kind)
        for node in ast.walk(self.fn):           # its body and its decorators' lambdas
            if isinstance(node, ast.Compare):
                self.check_enum_compare(node)
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
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                self.check_in_place(node, me)
                self.check_shared(node, me)
            elif isinstance(node, ast.Call):
                self.check_shared(node, me)

    def check_enum_compare(self, node: ast.Compare) -> None:
        """`self.state == "committed"` where `state` is an Enum field: a member is never equal
        to its value, so the comparison is always false (a guard never enabled, a property
        always true) — silently."""
        from assay.model.types import _Enum

        sides = [node.left, *node.comparators]
        for (a, b), op in zip(zip(sides, sides[1:]), node.ops):
            if not isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot):
                continue
            for field, lit in ((a, b), (b, a)):
                if not (isinstance(field, ast.Attribute) and isinstance(field.value, ast.Name)
                        and field.value.id in ("self", "old")
                        and isinstance(lit, ast.Constant)
                        and isinstance(lit.value, str | int) and lit.value is not True
                        and lit.value is not False):
                    continue
                spec = self.types.get(field.attr)
                if not isinstance(spec, _Enum) or issubclass(spec.cls, str | int):
                    continue
                ecls = spec.cls
                member = next((m for m in ecls if m.value == lit.value), None)
                fix = f"{field.value.id}.{field.attr} == {ecls.__name__}." + \
                    (member.name if member is not None else next(iter(ecls)).name)
                raise SpecError(f"{self.where} compares {field.value.id}.{field.attr}, "
                                f"{_article(ecls.__name__)} member, with the "
                                f"{type(lit.value).__name__} {lit.value!r}: never equal",
                                self.location(node), [f"compare with the member: {fix}"])

    def check_shared(self, node: ast.AST, me: str) -> None:
        """`self.log.append(x)` or `self.seen[k] = v` where `log`/`seen` is not a field but a
        list, set or dict in the class body: one object shared by every instance and outside
        the state, so no engine sees it change (and a memoised step never runs again)."""
        if isinstance(node, ast.Call):
            f = node.func
            if not (isinstance(f, ast.Attribute) and f.attr in _MUTATORS):
                return
            target = f.value
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            found = [t.value for t in _targets(node) if isinstance(t, ast.Subscript)]
            if not found:
                return
            target = found[0]
        else:
            return
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                and target.value.id == me and target.attr not in self.fields):
            return
        value = inspect.getattr_static(self.cls, target.attr, None)
        if not isinstance(value, list | set | dict | bytearray):
            return
        kind = type(value).__name__
        fix = {"list": "tuple[int, ...] = ()", "set": "frozenset[int] = frozenset()",
               "dict": "Map[int, int] = Map()"}.get(kind, "tuple[int, ...] = ()")
        raise SpecError(f"{self.where} changes self.{target.attr}, a {kind} in the class body of "
                        f"{self.cls.__name__}: one object shared by every instance and not "
                        "part of the state, so no engine sees the change", self.location(node),
                        [f"make it a field ({target.attr}: {fix}) and assign it a new value: "
                         "every assay value is immutable"])

    def check_returns(self, kind: str) -> None:
        """`return <value>` in a handler or action: the kernel ignores what a step returns,
        so a `return False` meant to refuse a message would silently do nothing."""
        for node in _own_nodes(self.fn.body):
            if isinstance(node, ast.Return) and node.value is not None and not (
                    isinstance(node.value, ast.Constant) and node.value.value is None):
                what = {"on": "handler", "action": "action"}.get(kind, "hook")
                fix = ["to refuse a message until it can be taken, guard the receive: "
                       "@on(M, when=lambda self, m: ...); to blame a sender for it: "
                       "@requires(lambda self, m: ...)"] if kind == "on" else \
                    ["to keep the action from firing, put the condition in "
                     "@action(when=...)"] if kind == "action" else []
                raise SpecError(f"{self.where} returns a value, which assay ignores: a "
                                f"{what}'s effect is only what it assigns and sends",
                                self.location(node),
                                [*fix, "to stop early, write a bare 'return'"])

    def check_in_place(self, stmt: ast.Assign | ast.AugAssign | ast.Delete, me: str) -> None:
        """`self.f[k] = v`, `del self.f[k]` or `self.f.x = v` for a field `f`: its value is
        immutable (every assay value is), so the statement always raises."""
        for target in _targets(stmt):
            inner = target.value if isinstance(target, ast.Subscript | ast.Attribute) else None
            if not (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                    and inner.value.id == me and inner.attr in self.fields):
                continue
            kind = _kind(self.types.get(inner.attr))
            if isinstance(target, ast.Attribute):
                op, attr = "attribute", target.attr
            else:
                op, attr = "deletion" if isinstance(stmt, ast.Delete) else "assignment", None
            raise SpecError(f"{self.where} {change_text(kind, op, attr)} "
                            f"(in {me}.{inner.attr})", self.location(stmt),
                            change_notes(kind, op, stmt))

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
        """`M(...)` where `M` names a message or record class: the fields it gives."""
        if not isinstance(call.func, ast.Name):
            return
        mcls = self.names.get(call.func.id)
        if not (isinstance(mcls, type) and issubclass(mcls, Record)):
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
            raise SpecError(f"{self.where} builds a {mcls.__assay_kind__} wrongly: {problem}",
                            self.location(call),
                            [f"fields of {name}: {mcls.describe_fields()}",
                             "give every field without a default, by position or by name, "
                             "and no others"])


# --- changes in place ---------------------------------------------------------------------------

_ITEM_CHANGE = re.compile(
    r"'(\w+)' object (?:does not|doesn't) support item (assignment|deletion)")


def immutable_change(e: BaseException) -> tuple[str, list[str]] | None:
    """If `e` says the code changed a value in place — assigned or deleted an item of a
    tuple, a frozenset, a str or a `Map`, or assigned a field of a record or message — what
    it did and how to write it instead (from the statement where it happened): such code is
    ill-formed, not behaviour of the model.  Otherwise None."""
    if isinstance(e, ImmutableError):
        kind, op, attr = e.kind, e.op, e.attr
    else:
        m = _ITEM_CHANGE.fullmatch(str(e)) if type(e) is TypeError else None
        if m is None:
            return None
        kind, op, attr = m.group(1), m.group(2), None
    return change_text(kind, op, attr), change_notes(kind, op, _statement_at(e))


def change_text(kind: str, op: str, attr: str | None) -> str:
    """What a change in place did, after the handler's name."""
    a = "an" if kind[:1] in "aeiou" else "a"
    if op == "attribute":
        return f"assigns {'field ' + repr(attr) if attr else 'a field'} of {a} {kind}, which " \
               "is immutable"
    verb = "deletes" if op == "deletion" else "assigns"
    return f"{verb} an item of {a} {kind}, which is immutable"


def change_notes(kind: str, op: str, stmt: ast.stmt | None) -> list[str]:
    """How to write a change in place as a new value, with the statement's own names."""
    target = next((t for t in _targets(stmt) if isinstance(
        t, ast.Attribute if op == "attribute" else ast.Subscript)), None) if stmt else None
    if target is None:
        return [_GENERIC.get(kind) or f"a {kind} is immutable: build a new value and assign it"]
    obj = ast.unparse(target.value)
    if isinstance(stmt, ast.AugAssign):
        val = ast.unparse(ast.BinOp(target, stmt.op, stmt.value))
    elif isinstance(stmt, ast.Assign):
        val = ast.unparse(stmt.value)
    else:
        val = ""
    if isinstance(target, ast.Attribute):
        return [f"a {kind if kind in ('record', 'message') else 'value'} is immutable: build a "
                f"changed copy, {obj} = {obj}.replace({target.attr}={val})"]
    key = ast.unparse(target.slice)
    after = str(target.slice.value + 1) if isinstance(target.slice, ast.Constant) \
        and type(target.slice.value) is int else f"{key} + 1"
    if kind == "Map":
        return [f"a Map is changed by replacing it: write {obj} = {obj}.remove({key})"
                if op == "deletion" else
                f"a Map is changed by replacing it: write {obj} = {obj}.set({key}, {val})"]
    if kind == "frozenset":
        return [f"a frozenset has no items: {obj} = {obj} - {{{key}}} removes an element"
                if op == "deletion" else
                f"a frozenset has no items: {obj} = {obj} | {{{val}}} adds an element",
                f"for a value per key, declare a Map[K, V] and write "
                f"{obj} = {obj}.set({key}, ...)"]
    if kind == "tuple":
        if op == "deletion":
            return [f"tuples are immutable: write {obj} = {obj}[:{key}] + {obj}[{after}:]",
                    f"or declare it a Map[K, V] (assay.Map) and write {obj} = "
                    f"{obj}.remove({key})"]
        return [f"tuples are immutable: write {obj} = {obj}[:{key}] + ({val},) + "
                f"{obj}[{after}:]",
                f"or declare it a Map[K, V] (assay.Map) and write {obj} = "
                f"{obj}.set({key}, {val})"]
    return [_GENERIC.get(kind) or f"a {kind} is immutable: build a new value and assign it"]


_GENERIC = {
    "tuple": "tuples are immutable: build a new one, t[:i] + (v,) + t[i + 1:], and assign it "
             "to the field, or use a Map[K, V] field and self.f = self.f.set(i, v)",
    "Map": "a Map is changed by replacing it: self.f = self.f.set(k, v) (or .remove(k))",
    "frozenset": "frozensets are immutable: self.f = self.f | {x} adds, self.f - {x} removes",
    "str": "strings are immutable: build a new one and assign it",
    "record": "a record is immutable: build a changed copy, self.f = self.f.replace(x=...)",
    "message": "a message is immutable: build a new one, m.replace(x=...)",
}


def _kind(t: TypeSpec | None) -> str:
    """How a change-in-place error names a field's type."""
    while isinstance(t, _Optional):
        t = t.inner
    if isinstance(t, _Tuple):
        return "tuple"
    if isinstance(t, _FrozenSet):
        return "frozenset"
    if isinstance(t, _Map):
        return "Map"
    if isinstance(t, _Record):
        return str(t.cls.__assay_kind__)  # type: ignore[attr-defined]
    if isinstance(t, _Str):
        return "str"
    return t.describe() if t is not None else "value"


def _targets(stmt: ast.stmt | None) -> list[ast.expr]:
    if isinstance(stmt, ast.Assign | ast.Delete):
        return list(stmt.targets)
    if isinstance(stmt, ast.AugAssign):
        return [stmt.target]
    return []


def _statement_at(e: BaseException) -> ast.stmt | None:
    """The assignment or `del` statement of a spec file where `e` was raised, if one is."""
    loc = traceback_location(e.__traceback__)
    if loc is None or loc.line is None:
        return None
    try:
        with open(loc.file, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    found: ast.stmt | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete) and \
                node.lineno <= loc.line <= (node.end_lineno or node.lineno) and \
                (found is None or node.lineno >= found.lineno):
            found = node
    return found


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


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
