"""assay: write a distributed system once, in Python; check it, verify it, simulate it, run it.

This module re-exports what a spec needs; the engines live in `assay.checker`,
`assay.simulator` and `assay.runtime`, and all of them run the kernel in `assay.kernel`.
`assay.check`, `assay.simulate` and `assay.verify` (`assay.api`) run them from Python.
Every name is imported on first use (`__getattr__`): a spec's `from assay import ...` loads
no engine, and the `assay` command (`assay.entry`) has taken Ctrl-C over before anything
heavy is imported — importing this package itself imports nothing.
"""
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from assay.api import check as check
    from assay.api import simulate as simulate
    from assay.api import verify as verify
    from assay.model import Component as Component
    from assay.model import Interceptor as Interceptor
    from assay.model import Map as Map
    from assay.model import Message as Message
    from assay.model import Peer as Peer
    from assay.model import Port as Port
    from assay.model import Range as Range
    from assay.model import Record as Record
    from assay.model import System as System
    from assay.model import action as action
    from assay.model import ensures as ensures
    from assay.model import external_store as external_store
    from assay.model import initially as initially
    from assay.model import invariant as invariant
    from assay.model import on as on
    from assay.model import on_restart as on_restart
    from assay.model import on_start as on_start
    from assay.model import one_of as one_of
    from assay.model import persistent as persistent
    from assay.model import protocol as protocol
    from assay.model import requires as requires

__all__ = ["Component", "Interceptor", "Map", "Message", "Peer", "Port", "Range", "Record",
           "System", "action", "ensures", "external_store", "initially", "invariant", "on",
           "on_restart", "on_start", "one_of", "persistent", "protocol", "requires"]

# the Python API (`assay.api`): `assay.check(...)`, `from assay import check`; not in
# `__all__`, which is what a spec needs
ENGINES = ("check", "simulate", "verify")


def __getattr__(name: str) -> Any:
    if name in __all__:
        # as `from assay.model import name`, which imports `protocol`, a module, as well
        value = getattr(__import__("assay.model", fromlist=[name]), name)
        globals()[name] = value           # once: the next lookup does not come here
        return value
    if name in ENGINES:
        from assay import api

        return getattr(api, name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *ENGINES})
