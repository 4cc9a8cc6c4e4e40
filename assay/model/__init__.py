"""The spec language: messages, components, ports, contracts and systems."""
from assay.model.component import (
    Component,
    Port,
    action,
    ensures,
    initially,
    invariant,
    on,
    on_restart,
    on_start,
    persistent,
    requires,
)
from assay.model.extstore import external_store
from assay.model.interceptor import Interceptor
from assay.model.mapping import Map
from assay.model.message import Message
from assay.model.record import Record
from assay.model.system import System
from assay.model.types import OneOf, Peer, Range, one_of

__all__ = ["Component", "Interceptor", "Map", "Message", "OneOf", "Peer", "Port", "Range",
           "Record", "System", "action", "ensures", "external_store", "initially", "invariant",
           "on", "on_restart",
           "on_start", "one_of", "persistent", "requires"]
