"""Running the real code on one concrete local step: the scenarios that `verify` confirms its
refutations on and that `suggest` evaluates candidate conditions on, both through the kernel's
`Runner` (so a witness is what the kernel would do, not what the translation believes)."""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, replace
from typing import Any

from assay.errors import SpecError, exit_error, not_exceptions, object_location, verdict
from assay.kernel.exec import Context, Runner, Wiring
from assay.model.component import ComponentInfo
from assay.model.message import Message
from assay.model.system import System
from assay.model.types import Peer


@dataclass(frozen=True)
class Scenario:
    """A concrete local step: an instance's state, its ports' peers, and the event."""

    instance: str
    values: tuple[Any, ...]
    ports: dict[str, tuple[str, ...]]
    message: Message | None = None          # with its sender (None: a timer)
    arg: Any = None
    has_arg: bool = False
    restart: tuple[Any, ...] | None = None  # the values a restart gives (restart obligations)


def wirings(info: ComponentInfo, sc: Scenario) -> dict[str, Wiring]:
    return {p: Wiring(p, info.ports[p].many, tuple(sorted((x, "?") for x in sc.ports.get(p, ()))),
                      frozenset(Peer(x) for x in sc.ports.get(p, ())))
            for p in info.ports}


def runner_for(info: ComponentInfo, sc: Scenario) -> Runner:
    """The kernel's runner for one instance with the scenario's peers.  Protocols are left
    out: obligations are about a component's fields, not its sessions' positions (connected
    protocols are checked by `assay.verifier.compat`), so the local state is the fields."""
    if getattr(info, "automata", None):
        info = replace(info, automata={})
    return Runner(sc.instance, info, wirings(info, sc))


def holds(info: ComponentInfo, sc: Scenario, pred: Any, args: list[Any],
           old: tuple | None = None) -> tuple[bool, str]:
    """Whether a contract holds on a scenario's state, evaluated as the kernel does."""
    runner = runner_for(info, sc)
    obj = runner.live(sc.values, Context(sc.instance, runner.wirings))
    try:
        call = [runner.view(old), obj, *args] if old is not None else [obj, *args]
        ok = pred(*call)
        if ok is not True and ok is not False:      # None, a generator: a spec error, as
            ok = verdict(ok, f"a contract of instance {sc.instance!r}",   # in every engine
                         object_location(pred))
        return bool(ok), ""
    except SpecError:
        raise
    except not_exceptions() as e:
        raise exit_error(e, f"a contract of instance {sc.instance!r}") from None
    except Exception as e:
        return False, f"the contract raised {type(e).__name__}: {e}"


def real_wiring(system: System, name: str, info: ComponentInfo) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {p: [] for p in info.ports}
    chained = {n for c in system.connections for n in c.via}
    # an interceptor's sides reach its hops (`connect(..., via=)`); endpoints each other
    for c in (*system.connections, *(system.hops if name in chained else ())):
        if c.a.instance == name:
            out[c.a.port].append(c.b.instance)
        if c.b.instance == name:
            out[c.b.port].append(c.a.instance)
    return {p: tuple(sorted(v)) for p, v in out.items()}


def initial_choices(system: System, name: str, info: ComponentInfo) -> list[tuple[Any, ...]]:
    """Per field, the values it has in some initial state of instance `name`; every
    combination of them is an initial state unless `correlated`."""
    return info.field_choices(system.overrides.get(name))


def correlated(system: System, name: str, info: ComponentInfo) -> bool:
    """Whether the instance's initial states are listed or filtered (`initially`), not the
    product of `initial_choices`."""
    return info.correlated(system.overrides.get(name))


def spawned_with_values(system: System, names: list[str]) -> str | None:
    """Why some of the instances `names` may start from a state that is not one of their
    initial states: a slot of an elastic pool starts, each time it is spawned, from its
    class's initial state *with the values the spawn gives* (`self.spawn("w", busy=True)`),
    which the translation does not follow (`spawn` is not translated).  None when no slot is
    among them, or when no module of the system's classes spawns with values (every
    `.spawn(...)` call gives the pool's name only) or names `Spawn` (a spawn message built by
    hand)."""
    pools = [p for p in getattr(system, "pools", ()) if set(p.slots) & set(names)]
    if not pools:
        return None
    modules = {inspect.getmodule(k) for c in system.instances.values() for k in c.__mro__
               if not k.__module__.startswith("assay.") and k is not object}
    for mod in sorted(filter(None, modules), key=lambda m: m.__name__):
        why = _spawns_with_values(mod)
        if why:
            return (f"a slot of pool {pools[0].name!r} may start from the values {why} gives, "
                    f"not only from {pools[0].cls.__name__}'s initial state")
    return None


def _spawns_with_values(mod: Any) -> str | None:
    try:
        tree = ast.parse(inspect.getsource(mod))
    except (OSError, TypeError, SyntaxError):
        return f"module {mod.__name__} (whose source is not available)"
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    where = f"of {getattr(mod, '__file__', None) or mod.__name__}"
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr == "spawn" and id(n) not in called:
            return f"the spawn named (not called) at line {n.lineno} {where}"
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr == "spawn" and (n.keywords or len(n.args) != 1
                                                or isinstance(n.args[0], ast.Starred)):
            return f"the spawn at line {n.lineno} {where}"
        if isinstance(n, ast.Name) and n.id == "Spawn" \
                or isinstance(n, ast.Attribute) and n.attr == "Spawn" \
                or isinstance(n, ast.alias) and n.name.rsplit(".", 1)[-1] == "Spawn":
            return f"a Spawn built by hand (line {getattr(n, 'lineno', '?')} {where})"
    return None


def initial_rows(system: System, name: str, info: ComponentInfo) -> list[tuple[Any, ...]]:
    """The initial states of instance `name` (field values), as every engine has them."""
    return info.initial_values(system.overrides.get(name))
