"""What a step can report: a violation, with blame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from assay.errors import Location

Kind = Literal["requires", "ensures", "invariant", "exception", "type", "unhandled", "port",
               "protocol", "contract", "property", "deadlock", "liveness", "pool"]


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken contract, property or rule.

    `blame` names who is held responsible: the sender for a failed `requires` or an unhandled
    message, `instance.handler` for a failed `ensures`, invariant or an exception, the property
    for a property, the system for a deadlock.
    """

    kind: Kind
    blame: str
    message: str
    name: str | None = None          # the property or contract's name, when it has one
    location: Location | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "blame": self.blame,
                "message": self.message,
                "location": str(self.location) if self.location else None}
