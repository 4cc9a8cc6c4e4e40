"""assay: write a distributed system once, in Python; check it, verify it, simulate it, run it.

This module re-exports what a spec needs; the engines live in `assay.checker`,
`assay.simulator` and `assay.runtime`, and all of them run the kernel in `assay.kernel`.
`assay.check`, `assay.simulate` and `assay.verify` (`assay.api`) run them from Python; they
are imported on first use, so that a spec's `from assay import ...` loads no engine.
"""
from typing import TYPE_CHECKING, Any

from assay.model import (
    Component,
    Interceptor,
    Map,
    Message,
    Peer,
    Port,
    Range,
    Record,
    System,
    action,
    ensures,
    external_store,
    initially,
    invariant,
    on,
    on_restart,
    on_start,
    one_of,
    persistent,
    protocol,
    requires,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from assay.api import check as check
    from assay.api import simulate as simulate
    from assay.api import verify as verify

__all__ = ["Component", "Interceptor", "Map", "Message", "Peer", "Port", "Range", "Record",
           "System", "action", "ensures", "external_store", "initially", "invariant", "on",
           "on_restart", "on_start", "one_of", "persistent", "protocol", "requires"]

# the Python API (`assay.api`): `assay.check(...)`, `from assay import check`; not in
# `__all__`, which is what a spec needs
ENGINES = ("check", "simulate", "verify")


def __getattr__(name: str) -> Any:
    if name in ENGINES:
        from assay import api

        return getattr(api, name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
