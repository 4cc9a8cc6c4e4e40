"""Events: the inputs of a step, named by the spec's names (never by memory addresses)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.model.message import Message
from assay.model.types import to_json


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message in flight from one instance's port to another's."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    message: Message

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}: {self.message!r}"


@dataclass(frozen=True, slots=True)
class Deliver:
    """Deliver one in-flight message to its destination's handler."""

    envelope: Envelope

    def to_json(self) -> dict[str, Any]:
        e = self.envelope
        return {"kind": "deliver", "to": e.dst, "port": e.dst_port, "from": e.src,
                "from_port": e.src_port, "message": e.message.to_json()}

    def __str__(self) -> str:
        e = self.envelope
        return f"{e.dst} receives {e.message!r} from {e.src} (on {e.dst_port})"


@dataclass(frozen=True, slots=True)
class Fire:
    """Fire an enabled internal action of an instance (with its parameter, if any)."""

    instance: str
    action: str
    arg: Any = None
    has_arg: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": "action", "instance": self.instance, "action": self.action,
                "arg": to_json(self.arg) if self.has_arg else None}

    def __str__(self) -> str:
        arg = f"({self.arg!r})" if self.has_arg else ""
        return f"{self.instance} fires {self.action}{arg}"


Event = Deliver | Fire
