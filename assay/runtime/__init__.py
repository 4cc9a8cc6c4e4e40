"""The runtime: the verified system on asyncio, in one process or over TCP between nodes.

`connect` is the client API (see `assay.runtime.client`)."""
from assay.runtime.client import (
    Client,
    ClientError,
    NoReply,
    NotAccepted,
    NotAllowed,
    NotConnected,
    Rejected,
    UnknownInstance,
    Unreachable,
    connect,
)

__all__ = ["Client", "ClientError", "NoReply", "NotAccepted", "NotAllowed", "NotConnected",
           "Rejected", "Unreachable", "UnknownInstance", "connect"]
