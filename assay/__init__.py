"""assay: write a distributed system once, in Python; check it, verify it, simulate it, run it.

This module re-exports what a spec needs; the engines live in `assay.checker`,
`assay.simulator` and `assay.runtime`, and all of them run the kernel in `assay.kernel`.
"""
from assay.model import (
    Component,
    Map,
    Message,
    Peer,
    Port,
    Range,
    Record,
    System,
    action,
    ensures,
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

__all__ = ["Component", "Map", "Message", "Peer", "Port", "Range", "Record", "System", "action",
           "ensures", "initially", "invariant", "on", "on_restart", "on_start", "one_of",
           "persistent", "protocol", "requires"]
