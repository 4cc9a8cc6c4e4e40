"""Set order in the determinism check: the second run of a local step sees its sets iterated
the other way round.

A frozenset of strs, Peers or Enum members is iterated in an order that follows the strings'
hashes, which change with PYTHONHASHSEED (and equal sets of ints may iterate differently after
different histories).  A handler that takes "the first" element (`next(iter(self.peers))`,
`list(self.names)[0]`, a `for` that stops early) is then a function of the process, not of the
state: `assay check` would find a violation under one seed and not under another.  Running
the step twice (`determinism.twice`) in one process sees the same order both times, so on the
second run (`ACTIVE`) the sets a handler reads — its component's fields and the message it
handles, inside tuples and records too, and a port's peers — are `Reordered`: equal
frozensets whose iteration is reversed.  A step whose result depends on the order then gives
two results: the `SpecError` of `determinism`.  (Sets inside a `Map` are not reordered.)

What a second run makes goes back to plain frozensets where it leaves the handler (`plain`:
the new field values, a message sent or set as a timer), so type checks see what the first
run saw.  A property's first evaluations are repeated the same way, with the sets reversed
and rotated (`property_reads_order`).
"""
from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from assay.model.message import Message
from assay.model.record import Record

ACTIVE = [False]        # set by `determinism.twice` during the second run


ROTATE = [0]            # 0: `Reordered` sets iterate reversed; k > 0: rotated by k


class Reordered(frozenset):
    """An equal frozenset that iterates the other way round (or rotated: `ROTATE`)."""

    __slots__ = ()

    def __iter__(self) -> Any:
        items = list(frozenset.__iter__(self))
        k = ROTATE[0] % len(items)
        return iter(items[k:] + items[:k]) if k else reversed(items)

    def __repr__(self) -> str:
        return repr(frozenset(self))


def reordered(v: Any, sizes: set[int] | None = None) -> Any:
    """`v` with each set of two or more elements in it (itself, inside tuples, records and
    messages) `Reordered`; their sizes noted into `sizes`, if given."""
    t = type(v)
    if t is frozenset:
        if len(v) < 2:
            return v
        if sizes is not None:
            sizes.add(len(v))
        return Reordered(v)
    if t is tuple and v:
        items = tuple(map(reordered, v)) if sizes is None else \
            tuple([reordered(x, sizes) for x in v])
        return items if any(a is not b for a, b in zip(items, v)) else v
    if isinstance(v, Record):
        return _with_values(v, tuple(map(reordered, v._values)) if sizes is None else
                            tuple([reordered(x, sizes) for x in v._values]))
    return v


def plain(v: Any) -> Any:
    """`v` with each `Reordered` in it (itself, inside tuples, records and messages) a plain
    frozenset again."""
    t = type(v)
    if t is Reordered:
        return frozenset(frozenset.__iter__(v))
    if t is tuple and v:
        items = tuple(map(plain, v))
        return items if any(a is not b for a, b in zip(items, v)) else v
    if isinstance(v, Record):
        return _with_values(v, tuple(map(plain, v._values)))
    return v


# values with no set inside, whatever their value (`_reordered_noting` does not walk them)
_FLAT = frozenset({int, str, bool, float, type(None)})
# the last local state `reordered_values` reordered: (its values, theirs reordered, and
# id(a reordered object) -> the object it was made from, for every object made anew)
_LAST: list[Any] = [None, None, {}]


def reordered_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """`tuple(map(reordered, values))`, of a local state's values: made once for one state
    however many of its steps run again (its guards, then each of its actions, one after the
    other), so the same objects, whose originals `plain_values` finds by identity."""
    last = _LAST
    if last[0] is values:
        return last[1]                          # type: ignore[no-any-return]
    back: dict[int, Any] = {}
    again = tuple([_reordered_noting(v, back) for v in values])
    last[:] = [values, again, back]
    return again


def _reordered_noting(v: Any, back: dict[int, Any]) -> Any:
    """`reordered(v)`, noting into `back` the original of each set, tuple and record in the
    result (itself where it was kept): all kept alive by the result, so their ids stay
    theirs while `_LAST` holds it."""
    t = type(v)
    if t is frozenset:
        r: Any = Reordered(v) if len(v) > 1 else v
    elif t is tuple and v:
        if _FLAT.issuperset(map(type, v)):      # ints, strs: nothing to reorder inside
            r = v
        else:
            items = tuple([_reordered_noting(x, back) for x in v])
            r = v if all(a is b for a, b in zip(items, v)) else items
    elif isinstance(v, Record):
        r = v if _FLAT.issuperset(map(type, v._values)) else \
            _with_values(v, tuple([_reordered_noting(x, back) for x in v._values]))
    else:
        return v
    back[id(r)] = v
    return r


def plain_values(new: tuple[Any, ...]) -> tuple[Any, ...]:
    """`tuple(map(plain, new))`, of the new values a second run made: a part of them that is
    one of the last `reordered_values`' objects (a field or a channel the step did not
    change) is its original, equal object (found by identity, not walked), not a copy —
    so the type check of the new state sees the old state's objects where the step kept
    them, as after the first run."""
    back = _LAST[2]
    return tuple([_plain_back(v, back) for v in new])


def _plain_back(v: Any, back: dict[int, Any]) -> Any:
    o = back.get(id(v))
    if o is not None:
        return o
    t = type(v)
    if t is Reordered:
        return frozenset(frozenset.__iter__(v))
    if t is tuple and v:
        items = tuple([_plain_back(x, back) for x in v])
        return items if any(a is not b for a, b in zip(items, v)) else v
    if isinstance(v, Record):
        return _with_values(v, tuple([_plain_back(x, back) for x in v._values]))
    return v


def _with_values(r: Any, values: tuple[Any, ...]) -> Any:
    """Record `r` with these field values (`r` itself when they are its own)."""
    if all(a is b for a, b in zip(values, r._values)):
        return r
    new = object.__new__(type(r))
    object.__setattr__(new, "_values", values)
    object.__setattr__(new, "_hash", None)
    if isinstance(r, Message):                  # the same sender and meta
        object.__setattr__(new, "sender", r.sender)
        object.__setattr__(new, "_meta", getattr(r, "_meta", ()))
    return new


def property_reads_order(kernel: Any, fn: Any, state: Any, ok: Any,
                         prepared: tuple[Any, list[int]] | None = None) -> bool:
    """Whether property `fn`, which gave `ok` on `state`, gives another truth value when the
    sets in the local states it reads iterate in another order — reversed, then rotated by
    1, 2, 3 (a property's result is only its truth value: "the first element is x" needs x
    first in one of them) — or then raises: it reads a set's order.  The kernel asks for the
    first evaluations, those whose reads it notes (evaluated in `determinism.outside(0)`).

    An order that iterates every set of the state as an earlier one did is not evaluated
    again (`_orders`: a set of 2 rotated by 1 or 3 is that set reversed), but one evaluation
    always is: on fresh views, it also tells a property that reads the clock, a counter or
    the addresses of objects.  `prepared`: `prepare(kernel, state)`, made once for every
    property of the state."""
    from assay.kernel.determinism import outside

    world, orders = prepared or prepare(kernel, state)
    for k in orders:
        ROTATE[0] = k
        try:
            with outside(1):        # other random numbers, another time (the first: 0)
                again = fn(world)
        except Exception:
            return True
        finally:
            ROTATE[0] = 0
        if bool(again) != bool(ok):
            return True
    return False


def prepare(kernel: Any, state: Any) -> tuple[Any, list[int]]:
    """What `property_reads_order` evaluates the properties of `state` on: the world with
    its sets `Reordered` (its views made afresh on each read) and the orders to take."""
    return _reordered_world(kernel, state), _orders(kernel, state)


PROPERTY_ORDERS = 4
_WORLD: list[Any] = []
# per kernel: (instance, local state id) -> (its values with their sets `Reordered`, the sizes
# of its sets of two or more elements)
_LOCALS: WeakKeyDictionary[Any, dict[tuple[int, int], tuple[tuple[Any, ...], frozenset[int]]]] \
    = WeakKeyDictionary()


def _permutation(k: int, n: int) -> tuple[int, ...]:
    """The order a `Reordered` set of `n` elements iterates in with `ROTATE` `k`."""
    return tuple(range(n - 1, -1, -1)) if k == 0 else tuple((i + k) % n for i in range(n))


def _orders(kernel: Any, state: Any) -> list[int]:
    """The values of `ROTATE` (of 0 .. PROPERTY_ORDERS - 1) that iterate the sets of `state`'s
    local states in orders no earlier one did (nor the plain order); [0] when none does (no
    set of two or more elements)."""
    sizes: set[int] = set()
    for i, lid in enumerate(state[0]):
        sizes |= _local(kernel, i, lid)[1]
    return orders_for(sizes)


def orders_for(sizes: set[int]) -> list[int]:
    """`_orders` of a state whose sets of two or more elements have these sizes."""
    ns = sorted(sizes)
    seen = {tuple(tuple(range(n)) for n in ns)}         # the plain order: evaluated already
    out = []
    for k in range(PROPERTY_ORDERS):
        how = tuple(_permutation(k, n) for n in ns)
        if how not in seen:
            seen.add(how)
            out.append(k)
    return out or [0]


def _local(kernel: Any, i: int, lid: int) -> tuple[tuple[Any, ...], frozenset[int]]:
    memo = _LOCALS.get(kernel)
    if memo is None:
        memo = _LOCALS[kernel] = {}
    got = memo.get((i, lid))
    if got is None:
        sizes: set[int] = set()
        again = tuple([reordered(v, sizes) for v in kernel.instances[i].table.values[lid]])
        got = memo[(i, lid)] = (again, frozenset(sizes))
    return got


def _reordered_world(kernel: Any, state: Any) -> Any:
    if not _WORLD:
        from assay.kernel.kernel import World

        class ReorderedWorld(World):
            """`World` whose views hold `Reordered` sets (fresh views, not the kernel's)."""

            __slots__ = ()

            def _view(self, i: int, lid: int) -> Any:
                return self._k.instances[i].runner.view(_local(self._k, i, lid)[0])

            def __getitem__(self, name: str) -> Any:
                i = self._k.index.get(name)
                if i is None:
                    raise KeyError(f"no instance named {name!r}")
                return self._view(i, self._state[0][i])

            def instances(self, cls: type | None = None) -> list[Any]:
                k = self._k
                return [self._view(i, self._state[0][i]) for i, inst in enumerate(k.instances)
                        if (cls is None or issubclass(inst.cls, cls))
                        and self._state[0][i] != k.dormant[i]]

        _WORLD.append(ReorderedWorld)
    return _WORLD[0](kernel, state)
