"""`Map[K, V]` in the Z3 translation: a Z3 array from K to `Optional[V]` (`none` where the key
is absent), so that Python's equality of maps — the same keys, each with an equal value — is
the array's (extensional) equality, exactly.

What is translated (each with Python's meaning, `assay.model.mapping`): `k in m`, `m[k]` (a
KeyError check: `k in m`), `m.get(k)`, `m.get(k, d)`, `m.set(k, v)`, `m.remove(k)` (a
KeyError check), `==`/`!=`, truth (not empty), `Map()`, `Map({k: v, ...})` with a dict
display, `Map(m)`, a constant `Map` of the module, `Map.fromkeys(s, v)` of a set (a lambda
array) or a tuple, `len(m)` (exact when the keys are finitely many — bools, a plain Enum: the
sum over the keys —, else `mlen`), `all(...)`/`any(...)` of a pure condition over a map's keys,
values or items (a quantifier over its keys; `all(m.values())` too) and `sum(m.values())` of
ints (`msum`).  `mlen` and `msum` are uninterpreted functions of the array known through facts
true of every finite map (`sum_facts`, added by `prove.background`): like a set's `card`, they
may make a proof fail, never succeed wrongly.  Not translated (unknown, with the reason):
iteration (`keys()`, `values()`, `items()` other than in those aggregates; `for k in m` is
translated as a `for` over a set, when its body's effect cannot depend on the order),
`Map.over`, `Map(pairs)`, maps of maps.  `a | b` is a lambda array (exact).

Every Python map is finite; a Z3 array need not be.  A proof over all arrays holds of the
finite ones; a refutation is only reported once its state is read back as real `Map`s and
confirmed by the real handler (`finite_model` makes the map constants of a refuting model
finite first, as it does sets).
"""
from __future__ import annotations

import ast
from typing import Any

import z3

from assay.model.mapping import Map
from assay.verifier.types import (
    EMPTY,
    EMPTY_MAP,
    Bounds,
    Ty,
    Unsupported,
    Val,
    _unsupported,
    finite,
    is_some,
    members,
    model_candidates,
    none_of,
    opt_ty,
    some_of,
    some_value,
    sort_of,
)


def map_ty(key: Ty, value: Ty) -> Ty:
    return Ty("map", items=(key, value))


def key_ty(ty: Ty) -> Ty:
    assert ty.items is not None
    return ty.items[0]


def value_ty(ty: Ty) -> Ty:
    assert ty.items is not None
    return ty.items[1]


def entry_ty(ty: Ty) -> Ty:
    """The type of an entry of the array: `Optional[V]` (none: the key is absent)."""
    return opt_ty(value_ty(ty))


_MAP_SORTS: dict[Any, Ty] = {}        # the Z3 sort of each map type made, -> the type


def map_sort(ty: Ty) -> z3.SortRef:
    s = z3.ArraySort(sort_of(key_ty(ty)), sort_of(entry_ty(ty)))
    _MAP_SORTS.setdefault(s, ty)
    return s


def is_map_sort(s: Any) -> bool:
    return isinstance(s, z3.ArraySortRef) and s in _MAP_SORTS


def empty_map(ty: Ty) -> Val:
    map_sort(ty)                       # known as a map sort (`is_map_sort`, `_MAP_SORTS`)
    return Val(ty, z3.K(sort_of(key_ty(ty)), none_of(entry_ty(ty))))


def has(m: Val, k: Any) -> Any:
    """`k in m`, for a key term `k` of the key sort."""
    if m.ty == EMPTY_MAP:
        return z3.BoolVal(False)
    return is_some(entry_ty(m.ty), z3.Select(m.e, k))


def read(m: Val, k: Any) -> Val:
    """The value of key `k` (meaningful where `has(m, k)`)."""
    return some_value(entry_ty(m.ty), z3.Select(m.e, k))


def store(m: Val, k: Any, v: Any) -> Val:
    return Val(m.ty, z3.Store(m.e, k, some_of(entry_ty(m.ty), v)))


def delete(m: Val, k: Any) -> Val:
    return Val(m.ty, z3.Store(m.e, k, none_of(entry_ty(m.ty))))


def is_empty(m: Val) -> Any:
    if m.ty == EMPTY_MAP:
        return z3.BoolVal(True)
    return m.e == empty_map(m.ty).e


def length(m: Val, node: ast.AST | None) -> Any:
    """`len(m)`: exact when the keys are finitely many (the sum over them), else `mlen`, an
    uninterpreted size known through `sum_facts`."""
    if m.ty == EMPTY_MAP:
        return z3.IntVal(0)
    k = key_ty(m.ty)
    if not finite(k):
        return mlen(m.e)
    return z3.Sum([z3.If(has(m, c), 1, 0) for c in members(k)])


def literal(pairs: list[tuple[Val, Val]], node: ast.AST | None) -> Val:
    """`Map({k: v, ...})` of key and value terms: the types of the first pair (all agree)."""
    if not pairs:
        return Val(EMPTY_MAP, None)
    kt, vt = pairs[0][0].ty, pairs[0][1].ty
    if any(k.ty != kt or v.ty != vt for k, v in pairs) or EMPTY in (kt, vt) \
            or kt.kind == "map" or vt.kind == "map":
        raise _unsupported("a Map whose keys (or values) have different types", node)
    m = empty_map(map_ty(kt, vt))
    for k, v in pairs:
        m = store(m, k.e, v.e)
    return m


def constant(v: Map, node: ast.AST | None) -> Val:
    """A `Map` constant of the module (a global, a default)."""
    from assay.verifier.types import py_const
    pairs = []
    for k, x in v.items():
        a, b = py_const(k, node), py_const(x, node)
        if not (isinstance(a, Val) and isinstance(b, Val)):
            raise _unsupported("a Map constant whose keys or values are not plain values",
                               node)
        pairs.append((a, b))
    return literal(pairs, node)


def to_z3(v: Any, ty: Ty, peers: dict[str, Any]) -> Any:
    """A Python `Map` as a term of the map type `ty`."""
    from assay.verifier.types import to_z3 as value_to_z3
    if type(v) is not Map:
        raise Unsupported(f"the value {v!r} as a {ty.describe()}")
    m = empty_map(ty)
    for k, x in v.items():
        m = store(m, value_to_z3(k, key_ty(ty), peers), value_to_z3(x, value_ty(ty), peers))
    return m.e


def conforms(v: Any, ty: Ty) -> bool:
    from assay.verifier.types import conforms as value_conforms
    return type(v) is Map and all(value_conforms(k, key_ty(ty)) and value_conforms(x, value_ty(ty))
                                  for k, x in v.items())


def read_back(reader: Any, x: Any, ty: Ty) -> Map:
    """The `Map` a model gives the array value `x` (`ModelReader.value`); Unsupported when
    it has infinitely many keys (or ones the model does not name)."""
    model = reader.model
    kt = key_ty(ty)
    ksort = sort_of(kt)
    none = none_of(entry_ty(ty))
    keys = _stored_keys(x, none)
    if keys is None:
        if finite(kt):
            keys = list(members(kt))
        elif kt.kind == "peer":
            keys = list(reader.universe)
        else:
            keys = model_candidates(model, x, ksort)
    present = [k for k in keys
               if z3.is_true(model.eval(has(Val(ty, x), k), model_completion=True))]
    lit = empty_map(ty).e
    for k in present:
        lit = z3.Store(lit, k, z3.Select(x, k))
    if not z3.is_true(model.eval(x == lit, model_completion=True)):
        raise Unsupported("the model has a map with infinitely many keys")
    out = {}
    for k in present:
        pk = reader.value(k, kt)
        out[pk] = reader.value(read(Val(ty, x), k))
    return Map(out)


def complete(reader: Any, e: Any) -> Any:
    """The value of the map term `e` in the reader's model, where a map constant the model
    does not interpret (nothing constrains it) is the empty map: a real map (model completion
    would give it an arbitrary array, often one with every key)."""
    free = [t for t in leaves([e], finite_keys=True) if t.decl().name() not in reader.interpreted]
    if free:
        e = z3.substitute(e, *[(t, empty_map(_MAP_SORTS[t.sort()]).e) for t in free])
    return reader.model.eval(e, model_completion=True)


def _stored_keys(x: Any, none: Any) -> list[Any] | None:
    """The keys stored over an all-absent constant array, else None."""
    out: list[Any] = []
    seen: set[str] = set()
    while z3.is_app_of(x, z3.Z3_OP_STORE):
        k = x.arg(1)
        if str(k) not in seen:
            seen.add(str(k))
            out.append(k)
        x = x.arg(0)
    if z3.is_app_of(x, z3.Z3_OP_CONST_ARRAY) and x.arg(0).eq(none):
        return out
    return None


def bounds(key: Bounds | None, value: Bounds | None, ty: Ty, text: str) -> Bounds | None:
    """The Ranges inside a map type: of every key present and of its value."""
    if key is None and value is None:
        return None
    k = z3.Const("k@bounds", sort_of(key_ty(ty)))

    def holds(e: Any) -> Any:
        m = Val(ty, e)
        inner = [b.holds(x) for b, x in ((key, k), (value, read(m, k).e)) if b is not None]
        return z3.ForAll([k], z3.Implies(has(m, k), z3.And(inner)))
    return Bounds(holds, text)


# --- finite models --------------------------------------------------------------------------------

def leaves(terms: Any, finite_keys: bool = False) -> list[Any]:
    """The map constants (uninterpreted, of a map sort) that `terms` mention, in a
    deterministic order, whose keys are not finitely many (or any, with `finite_keys`)."""
    out: dict[int, Any] = {}
    seen: set[int] = set()
    todo = list(terms)
    while todo:
        t = todo.pop()
        if z3.is_quantifier(t):
            todo.append(t.body())      # the constants inside a quantifier are free in it
            continue
        if not z3.is_app(t) or t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if t.num_args() == 0 and t.decl().kind() == z3.Z3_OP_UNINTERPRETED \
                and is_map_sort(t.sort()) \
                and (finite_keys or not finite(key_ty(_MAP_SORTS[t.sort()]))):
            out[t.get_id()] = t
        todo.extend(t.children())
    return [out[i] for i in sorted(out)]


def finite_definitions(maps: list[Any], n: int) -> list[Any]:
    """Each map constant defined as a map of at most `n` fresh keys, each present or not."""
    out = []
    for m in maps:
        ty = _MAP_SORTS[m.sort()]
        et = entry_ty(ty)
        e = empty_map(ty).e
        keys, entries = [], []
        for i in range(n):
            keys.append(z3.Const(f"{m}@{i}", sort_of(key_ty(ty))))
            entries.append(z3.Const(f"{m}@{i}=", sort_of(et)))
            e = z3.Store(e, keys[-1], entries[-1])
        out.append(m == e)
        used = [kind for kind in ("sum", "len") if (kind, m.sort()) in _AGGS]
        if used and n > 1:             # distinct keys: an aggregate is over the entries
            out.append(z3.Distinct(*keys))
        for kind in used:
            out.append(aggregate_of(kind, m) == z3.Sum([_contribution(kind, et, x)
                                                        for x in entries]))
    return out


def all_finite(model: z3.ModelRef, maps: list[Any]) -> bool:
    """Every map constant has a value with finitely many keys, found in the model."""
    for m in maps:
        ty = _MAP_SORTS[m.sort()]
        x = model.eval(m, model_completion=True)
        keys = _stored_keys(x, none_of(entry_ty(ty)))
        if keys is None:
            return False
        et = entry_ty(ty)
        for kind in ("sum", "len"):
            if (kind, m.sort()) in _AGGS:
                parts = [model.eval(_contribution(kind, et, z3.Select(x, k)),
                                    model_completion=True).as_long() for k in keys]
                if model.eval(aggregate_of(kind, m), model_completion=True).as_long() \
                        != sum(parts):
                    return False
    return True


# --- the expressions on maps (called by `expressions.Expressions`) --------------------------------

_ITERATION = ("iteration over a Map is not translated (how many keys it has, and their "
              "order, are not known to the translation); only all(...) and any(...) of a "
              "condition over its keys, values or items, and sum(m.values()), are")


def key_of(m: Val, k: Any, node: ast.AST) -> Any:
    """The key `k` as a term of `m`'s key sort; refused when its type is not the key type."""
    from assay.verifier.types import _describe, coerce
    if m.ty == EMPTY_MAP:
        return None
    c = coerce(k, key_ty(m.ty))
    if c is None:
        raise _unsupported(f"a key that is {_describe(k)} for a {m.ty.describe()}", node)
    return c.e


def subscript(tr: Any, m: Val, k: Any, node: ast.AST, st: Any) -> Any:
    """`m[k]`: KeyError (a check) where `k` is not in `m`."""
    if m.ty == EMPTY_MAP:
        raise _unsupported("a subscript of the empty Map() (it raises KeyError)", node)
    e = key_of(m, k, node)
    tr.check(st, has(m, e), node, "the key is not in the map (KeyError)")
    return read(m, e)


def contains(m: Val, k: Any, node: ast.AST) -> Any:
    from assay.verifier.types import NONE
    if m.ty == EMPTY_MAP:
        return z3.BoolVal(False)
    if k is NONE and key_ty(m.ty).kind != "opt":
        return z3.BoolVal(False)
    return has(m, key_of(m, k, node))


def method(tr: Any, m: Val, node: ast.Call, st: Any) -> Any:
    """`m.get(k)`, `m.get(k, d)`, `m.set(k, v)`, `m.remove(k)`."""
    from assay.verifier.types import NONE, _describe, _merge, as_val, coerce
    name = node.func.attr  # type: ignore[attr-defined]
    if name in ("keys", "values", "items"):
        raise _unsupported(f"m.{name}(): " + _ITERATION, node)
    if name not in ("get", "set", "remove"):
        raise _unsupported(f"the method call .{name}() on a {m.ty.describe()}", node)
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _unsupported(f"m.{name}() with keyword or starred arguments", node)
    want = {"get": (1, 2), "set": (2, 2), "remove": (1, 1)}[name]
    if not want[0] <= len(node.args) <= want[1]:
        raise _unsupported(f"m.{name}() with {len(node.args)} arguments (TypeError)", node)
    args = [tr.ex(a, st) for a in node.args]
    if name == "set":
        k, v = args
        if m.ty == EMPTY_MAP:
            k, v = as_val(k, node), as_val(v, node)
            if not (isinstance(k, Val) and isinstance(v, Val)) or k.ty.kind == "map" \
                    or v.ty.kind == "map" or EMPTY in (k.ty, v.ty):
                raise _unsupported(f"Map().set() of {_describe(k)} and {_describe(v)} (the "
                                   "map's types are not known)", node)
            m = empty_map(map_ty(k.ty, v.ty))
        cv = coerce(v, value_ty(m.ty))
        if cv is None:
            raise _unsupported(f"m.set() of {_describe(v)} in a {m.ty.describe()}", node)
        return store(m, key_of(m, k, node), cv.e)
    if name == "remove":
        if m.ty == EMPTY_MAP:
            tr.check(st, z3.BoolVal(False), node, "the key is not in the map (KeyError)")
            return m
        e = key_of(m, args[0], node)
        tr.check(st, has(m, e), node, "the key is not in the map (KeyError)")
        return delete(m, e)
    default = args[1] if len(args) == 2 else NONE
    k = args[0]
    if m.ty == EMPTY_MAP or k is NONE and key_ty(m.ty).kind != "opt":
        return default
    e = key_of(m, k, node)
    return _merge(has(m, e), read(m, e), default, "m.get(k, default)", node)


def union(a: Val, b: Val, node: ast.AST) -> Val:
    """`a | b`: the items of `b` added to those of `a`, replacing its own (a lambda array)."""
    if a.ty == EMPTY_MAP:
        return b
    if b.ty == EMPTY_MAP:
        return a
    if a.ty != b.ty:
        raise _unsupported(f"| of a {a.ty.describe()} and a {b.ty.describe()}", node)
    k = z3.Const(f"k@union{next(_FRESH)}", sort_of(key_ty(a.ty)))
    return Val(a.ty, z3.Lambda([k], z3.If(has(b, k), z3.Select(b.e, k), z3.Select(a.e, k))))


def key_set(m: Val) -> Val:
    """The set of the keys of `m` (a lambda array): the domain of `for k in m`."""
    from assay.verifier.types import set_ty
    if m.ty == EMPTY_MAP:
        return Val(EMPTY, None)
    kt = key_ty(m.ty)
    k = z3.Const(f"k@keys{next(_FRESH)}", sort_of(kt))
    return Val(set_ty(kt), z3.Lambda([k], has(m, k)))


def fromkeys(tr: Any, node: ast.Call, st: Any) -> Val:
    """`Map.fromkeys(domain, v)`: every key of a set (or a tuple display) to `v`."""
    from assay.verifier.types import _describe, as_val, tuple_items
    if node.keywords or len(node.args) != 2:
        raise _unsupported("Map.fromkeys() with other than two arguments", node)
    dom = tr.ex(node.args[0], st)
    v = as_val(tr.ex(node.args[1], st), node)
    if not isinstance(v, Val) or v.ty in (EMPTY, EMPTY_MAP) or v.ty.kind == "map":
        raise _unsupported(f"Map.fromkeys() of the value {_describe(v)}", node)
    items = tuple_items(dom)
    if items is not None:
        return literal([(as_val(x, node), v) for x in items], node)
    if isinstance(dom, Val) and dom.ty.kind == "set":
        if dom.ty == EMPTY:
            return Val(EMPTY_MAP, None)
        assert dom.ty.elem is not None
        ty = map_ty(dom.ty.elem, v.ty)
        k = z3.Const(f"k@fromkeys{next(_FRESH)}", sort_of(dom.ty.elem))
        et = entry_ty(ty)
        return Val(ty, z3.Lambda([k], z3.If(z3.IsMember(k, dom.e), some_of(et, v.e),
                                            none_of(et))))
    raise _unsupported(f"Map.fromkeys() over {_describe(dom)} (a set or a tuple only)", node)


def construct(tr: Any, node: ast.Call, st: Any) -> Val:
    """`Map()`, `Map({k: v, ...})` (a dict display), `Map(m)` of a map."""
    if node.keywords or len(node.args) > 1:
        raise _unsupported("Map() with keyword arguments or more than one argument", node)
    if not node.args:
        return Val(EMPTY_MAP, None)
    a = node.args[0]
    if isinstance(a, ast.Dict):
        if any(k is None for k in a.keys):
            raise _unsupported("a ** in the dict given to Map()", node)
        from assay.verifier.types import as_val
        pairs = []
        for kn, vn in zip(a.keys, a.values):
            k, v = as_val(tr.ex(kn, st), node), as_val(tr.ex(vn, st), node)
            if not (isinstance(k, Val) and isinstance(v, Val)):
                raise _unsupported("a Map display whose keys or values are not plain values",
                                   node)
            pairs.append((k, v))
        return literal(pairs, node)
    v = tr.ex(a, st)
    if isinstance(v, Val) and v.ty.kind == "map":
        return v
    raise _unsupported("Map() of something other than a dict display or a map (pairs, "
                       "a comprehension)", node)


# --- aggregates: all/any over a map's keys, values or items; sum of its values -------------------

_AGGS: dict[tuple[str, Any], z3.FuncDeclRef] = {}   # (sum | len, a map sort) -> its function


def aggregate_of(kind: str, e: Any) -> Any:
    """`sum(m.values())` of a map of ints (kind "sum") or `len(m)` (kind "len") of a map
    whose keys are not finitely many: an uninterpreted function of the array, per sort, known
    through `sum_facts` (true of every finite map)."""
    key = (kind, e.sort())
    f = _AGGS.get(key)
    if f is None:
        f = _AGGS[key] = z3.Function(f"m{kind}@{len(_AGGS)}", e.sort(), z3.IntSort())
    return f(e)


def msum(e: Any) -> Any:
    return aggregate_of("sum", e)


def mlen(e: Any) -> Any:
    return aggregate_of("len", e)


def _aggregate_kind(t: Any) -> str | None:
    if not (z3.is_app(t) and t.num_args() == 1):
        return None
    for kind in ("sum", "len"):
        f = _AGGS.get((kind, t.arg(0).sort()))
        if f is not None and f.eq(t.decl()):
            return kind
    return None


def _contribution(kind: str, et: Ty, e: Any) -> Any:
    """What an entry adds: its int value (a sum) or 1 (a size); 0 where the key is absent."""
    return z3.If(is_some(et, e), some_value(et, e).e if kind == "sum" else 1, 0)


def sum_facts(terms: Any) -> list[Any]:
    """Valid facts about each `msum(M)` and `mlen(M)` that `terms` mention, by the form of
    `M`: of the empty map it is 0; of `Store(A, k, e)` it is that of `A`, less A's entry at k
    (its value, or 1, if k is in A) plus e's; of `If(c, A, B)` it is `If(c, f(A), f(B))`; and
    `A == B` implies `f(A) == f(B)` for each equation of maps mentioned.  A size is >= 0, and
    0 exactly for the empty map.  A map constant's aggregate is otherwise free (the
    invariant, assumed of the state before, says what it is)."""
    if not _AGGS:
        return []
    todo: list[tuple[str, Any]] = []
    equals: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    stack = list(terms)
    while stack:
        t = stack.pop()
        if not z3.is_app(t) or t.get_id() in seen:
            continue
        seen.add(t.get_id())
        kind = _aggregate_kind(t)
        if kind is not None:
            todo.append((kind, t))
        elif z3.is_eq(t) and is_map_sort(t.arg(0).sort()):
            equals.append((t.arg(0), t.arg(1)))
        stack.extend(t.children())
    out: list[Any] = []
    kinds = {(kind, c.arg(0).sort()) for kind, c in todo}
    for x, y in equals:                # `A == B`: their aggregates are equal
        for kind in ("sum", "len"):
            if (kind, x.sort()) in kinds:
                fx, fy = aggregate_of(kind, x), aggregate_of(kind, y)
                out.append(z3.Implies(x == y, fx == fy))
                todo += [(kind, fx), (kind, fy)]
    done: set[int] = set()
    while todo:
        kind, c = todo.pop()
        if c.get_id() in done:
            continue
        done.add(c.get_id())
        a = c.arg(0)
        ty = _MAP_SORTS[a.sort()]
        et = entry_ty(ty)
        if kind == "len":
            out += [c >= 0, (c == 0) == (a == empty_map(ty).e)]
        if z3.is_app_of(a, z3.Z3_OP_CONST_ARRAY):
            if a.arg(0).eq(none_of(et)):
                out.append(c == 0)
        elif z3.is_app_of(a, z3.Z3_OP_STORE):
            base, k, e = a.arg(0), a.arg(1), a.arg(2)
            sb = aggregate_of(kind, base)
            todo.append((kind, sb))
            out.append(c == sb - _contribution(kind, et, z3.Select(base, k))
                       + _contribution(kind, et, e))
        elif z3.is_app_of(a, z3.Z3_OP_ITE):
            x, y = aggregate_of(kind, a.arg(1)), aggregate_of(kind, a.arg(2))
            todo += [(kind, x), (kind, y)]
            out.append(c == z3.If(a.arg(0), x, y))
    return [f for f in out if not z3.is_true(z3.simplify(f))]


def total(m: Val, node: ast.AST) -> Val:
    from assay.verifier.types import INT
    if m.ty == EMPTY_MAP:
        return Val(INT, z3.IntVal(0))
    if value_ty(m.ty) != INT:
        raise _unsupported(f"sum() of the values of a {m.ty.describe()} (only of ints)", node)
    return Val(INT, msum(m.e))


def _source(tr: Any, it: ast.expr, st: Any) -> tuple[Val, str] | None:
    """What a generator iterates: a map (its keys), `m.keys()`, `m.values()`, `m.items()`."""
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) \
            and it.func.attr in ("keys", "values", "items") and not it.args \
            and not it.keywords:
        v = tr.ex(it.func.value, st)
        if isinstance(v, Val) and v.ty.kind == "map":
            return v, it.func.attr
        return None
    v = tr.ex(it, st)
    if isinstance(v, Val) and v.ty.kind == "map":
        return v, "keys"
    return None


_FRESH = iter(range(1 << 62))


def _cannot_fail(pc: Any, ok: Any) -> bool:
    """The check `ok` holds wherever `pc` does (decided: a quick solver call)."""
    s = z3.Solver()
    s.set("timeout", 2000)
    s.add(pc, z3.Not(ok))
    return s.check() == z3.unsat


def aggregate(tr: Any, fn: Any, node: ast.Call, st: Any) -> Val | None:
    """`all(P for x in M)`, `any(...)` (with `if` clauses too), `sum(m.values())`; None when
    the call is not one of these over a map."""
    from assay.verifier.types import BOOL, TupleObj
    if len(node.args) != 1 or node.keywords:
        return None
    a = node.args[0]
    if fn is sum:
        src = _source(tr, a, st) if isinstance(a, ast.Call) else None
        if src is None or src[1] != "values":
            return None
        return total(src[0], node)
    if not isinstance(a, ast.GeneratorExp):       # `all(m.values())`: of each one's truth
        src = _source(tr, a, st)
        if src is None:
            return None
        m, what = src
        if m.ty == EMPTY_MAP:
            return Val(BOOL, z3.BoolVal(fn is all))
        k = z3.Const(f"k@gen{next(_FRESH)}", sort_of(key_ty(m.ty)))
        if what == "items":
            p: Any = z3.BoolVal(True)             # a pair is always true
        else:
            from assay.verifier.expressions import truth
            p = truth(Val(key_ty(m.ty), k) if what == "keys" else read(m, k), node)
        if fn is all:
            return Val(BOOL, z3.ForAll([k], z3.Implies(has(m, k), p)))
        return Val(BOOL, z3.Exists([k], z3.And(has(m, k), p)))
    if len(a.generators) != 1:
        return None
    gen = a.generators[0]
    if gen.is_async:
        return None
    src = _source(tr, gen.iter, st)
    if src is None:
        return None
    m, what = src
    if m.ty == EMPTY_MAP:
        return Val(BOOL, z3.BoolVal(fn is all))
    k = z3.Const(f"k@gen{next(_FRESH)}", sort_of(key_ty(m.ty)))
    body = st.copy()
    body.pc = enter = z3.And(st.pc, has(m, k))
    x = read(m, k)
    bind = {"keys": Val(key_ty(m.ty), k), "values": x,
            "items": TupleObj([Val(key_ty(m.ty), k), x])}[what]
    n_checks, n_sends = len(tr.checks), len(tr.sends)
    tr.assign(gen.target, bind, body, node)
    conds = [tr.cond(c, body) for c in gen.ifs]
    p = tr.cond(a.elt, body)
    if len(tr.checks) != n_checks and len(tr.sends) == n_sends \
            and all(_cannot_fail(c.pc, c.ok) for c in tr.checks[n_checks:]):
        del tr.checks[n_checks:]       # `m[k]` of a key of m: it cannot raise
        body.pc = enter
    wrote = any(body.fields[f] is not v for f, v in st.fields.items())  # self.bump() in it
    if len(tr.checks) != n_checks or len(tr.sends) != n_sends or body.pc is not enter \
            or wrote:
        raise _unsupported(f"{fn.__name__}() over a map whose condition may raise or has an "
                           "effect (only pure conditions are translated)", node)
    if fn is all:
        return Val(BOOL, z3.ForAll([k], z3.Implies(z3.And(has(m, k), *conds), p)))
    return Val(BOOL, z3.Exists([k], z3.And(has(m, k), *conds, p)))
