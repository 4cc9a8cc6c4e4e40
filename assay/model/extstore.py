"""External stores: a component field whose contents live in a real database.

    accounts: Map[str, int] = external_store(Map({"a": 5, "b": 5}))

In the model (`check`, `simulate`, `replay`, `verify`) the field is what its annotation says,
a `Map` in the instance's local state — canonical, hashable, counted like any field — and a
handler reads and writes it as a `Map` (`self.accounts.get(k, 0)`,
`self.accounts = self.accounts.set(k, v)`, `.remove(k)`): the language's one way to change
a value, so handlers stay functions of state and event and every engine goes through the
kernel unchanged.  The store is external, so it survives a crash of its instance: an
external store is a persistent field (`ExternalStore` is a `Persistent` mark), and the
kernel's restart semantics keep it.

`consistency` is the store's declared consistency; the one the model gives is
"linearizable": each step reads and writes the store atomically with the step (in
`assay run`, one database transaction per step, committed before the step's messages
leave).  A weaker one (a read that may return an older value) would make every read a choice
the model has to explore; it is not modelled, so any other value is a `SpecError` rather than
a model that claims more than it checks.

In `assay run --store-db FILE` the contents live in SQLite, a table per store
(`assay.runtime.extstore`, which also holds the adapter for any DB-API 2.0 connection), and
`assay replay --against-store FILE` checks that the model's maps after a recorded run and the
database's tables agree (the boundary contract).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from assay.errors import Location, SpecError, caller_location
from assay.model.component import Persistent
from assay.model.types import TypeSpec, _Map

T = TypeVar("T")

CONSISTENCY = ("linearizable",)


@dataclass(frozen=True, slots=True)
class ExternalStore(Persistent):
    """Marks a field whose contents live in an external store (see `external_store`)."""

    consistency: str = "linearizable"
    location: Location | None = None


def external_store(value: T, *, consistency: str = "linearizable") -> T:
    """Declare a field kept in an external store: `accounts: Map[str, int] =
    external_store(Map({"a": 5}))`.  `value` is its initial contents (a `Map`, the field's
    type a `Map[K, V]`).  Typed as `value`'s type, like `persistent`; what it returns is the
    `ExternalStore` mark that `component_info` reads."""
    where = caller_location(2)
    if consistency not in CONSISTENCY:
        raise SpecError(f"external_store(consistency={consistency!r}): the model has only "
                        "linearizable stores (each step reads and writes the store atomically)",
                        where, ["write consistency=\"linearizable\" (the default): a weaker "
                                "consistency is not modelled, so check could not promise "
                                "anything about it"])
    return ExternalStore(value, consistency, where)       # type: ignore[return-value]


def check_store_field(cls: type, name: str, spec: TypeSpec, mark: ExternalStore,
                      line: Location | None) -> None:
    """An external store's field must be a `Map[K, V]` (a table of keys and values)."""
    if not isinstance(spec, _Map):
        raise SpecError(f"field {name!r} of {cls.__name__} is an external store but its type "
                        f"is {spec.describe()}, not a Map", mark.location or line,
                        [f"declare it '{name}: Map[K, V] = external_store(Map())': a store "
                         "is a table from keys to values"])


def store_fields(info: Any) -> tuple[str, ...]:
    """The fields of a component (its `ComponentInfo`) that are external stores, in order."""
    return tuple(f for f in info.fields
                 if isinstance(getattr(info.cls, f, None), ExternalStore))
