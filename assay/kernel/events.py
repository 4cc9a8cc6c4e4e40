"""Events: the inputs of a step, named by the spec's names (never by memory addresses)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.model.frozen import fast_init
from assay.model.message import Message
from assay.model.show import show
from assay.model.types import to_json


@fast_init
@dataclass(frozen=True, slots=True)
class Envelope:
    """A message in flight from one instance's port to another's."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    message: Message
    # what interceptors piggy-back on the message (`assay.model.interceptor`): sorted
    # (key, value) pairs, part of the envelope's identity; () for every other message
    meta: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        meta = f" [{_meta_text(self.meta)}]" if self.meta else ""
        return (f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}: "
                f"{show(self.message)}{meta}")


@dataclass(frozen=True, slots=True)
class Deliver:
    """Deliver one in-flight message to its destination's handler."""

    envelope: Envelope
    choices: tuple[Any, ...] = ()    # what the handler's `choose` calls took, in order

    def to_json(self) -> dict[str, Any]:
        return _with_choices(deliver_json(self.envelope), self.choices)

    def __str__(self) -> str:
        e = self.envelope
        return (f"{e.dst} receives {show(e.message)} from {e.src} (on {e.dst_port})"
                + _chose(self.choices))


@dataclass(frozen=True, slots=True)
class Fire:
    """Fire an enabled internal action of an instance (with its parameter, if any)."""

    instance: str
    action: str
    arg: Any = None
    has_arg: bool = False
    choices: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _with_choices({"kind": "action", "instance": self.instance,
                              "action": self.action,
                              "arg": to_json(self.arg) if self.has_arg else None}, self.choices)

    def __str__(self) -> str:
        arg = f"({show(self.arg)})" if self.has_arg else ""
        return f"{self.instance} fires {self.action}{arg}" + _chose(self.choices)


def envelope_json(e: Envelope) -> dict[str, Any]:
    """An envelope by name, as events and traces show it."""
    return _env_json(e)


def _env_json(e: Envelope) -> dict[str, Any]:
    j = {"to": e.dst, "port": e.dst_port, "from": e.src, "from_port": e.src_port,
         "message": e.message.to_json()}
    if e.meta:                        # only interceptors' messages carry it: traces of other
        j["meta"] = {k: to_json(v) for k, v in e.meta}      # specs read as before
    return j


def deliver_json(e: Envelope) -> dict[str, Any]:
    """`Deliver(e).to_json()` (no choices), built as one dict (the runtime's every delivery)."""
    j = {"kind": "deliver", "to": e.dst, "port": e.dst_port, "from": e.src,
         "from_port": e.src_port, "message": e.message.to_json()}
    if e.meta:
        j["meta"] = {k: to_json(v) for k, v in e.meta}
    return j


def _meta_text(meta: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{k}={show(v)}" for k, v in meta)


def _with_choices(j: dict[str, Any], choices: tuple[Any, ...]) -> dict[str, Any]:
    """An event's JSON with the values its step's `choose` calls took (none: no key, so
    traces of specs without `choose` read as before)."""
    if choices:
        j["choices"] = [to_json(c) for c in choices]
    return j


def _chose(choices: tuple[Any, ...]) -> str:
    return f", choosing {', '.join(show(c) for c in choices)}" if choices else ""


@dataclass(frozen=True, slots=True)
class TimerFire:
    """A timer an instance set for itself fires: its message is handled."""

    instance: str
    message: Message
    delay: int
    choices: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _with_choices({"kind": "timer", "instance": self.instance,
                              "message": self.message.to_json(), "delay": self.delay},
                             self.choices)

    def __str__(self) -> str:
        return (f"{self.instance} timer fires: {show(self.message)} (set with delay {self.delay})"
                + _chose(self.choices))


@dataclass(frozen=True, slots=True)
class Crash:
    instance: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "crash", "instance": self.instance}

    def __str__(self) -> str:
        return f"{self.instance} crashes"


@dataclass(frozen=True, slots=True)
class Restart:
    instance: str
    choice: int = 0          # which initial values the non-persistent fields take
    choices: tuple[Any, ...] = ()    # what the restart hook's `choose` calls took

    def to_json(self) -> dict[str, Any]:
        return _with_choices({"kind": "restart", "instance": self.instance,
                              "choice": self.choice}, self.choices)

    def __str__(self) -> str:
        return f"{self.instance} restarts" + (f" (initial choice {self.choice})"
                                              if self.choice else "") + _chose(self.choices)


@dataclass(frozen=True, slots=True)
class Drop:
    envelope: Envelope

    def to_json(self) -> dict[str, Any]:
        return {"kind": "drop", **_env_json(self.envelope)}

    def __str__(self) -> str:
        e = self.envelope
        return f"the network drops {show(e.message)} from {e.src} to {e.dst}"


@dataclass(frozen=True, slots=True)
class Lose:
    """A lossy link loses a message in flight on it: any one, at any time (no budget).  On a
    fifo link `position` says which (0: the head); on an unordered one it is None."""

    envelope: Envelope
    position: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"kind": "lose", **_env_json(self.envelope)}
        if self.position is not None:
            out["position"] = self.position
        return out

    def __str__(self) -> str:
        e = self.envelope
        where = "" if self.position is None else (
            " (the head of its link)" if self.position == 0
            else f" ({_ordinal(self.position + 1)} in its link)")
        return f"the network loses {show(e.message)} from {e.src} to {e.dst}{where}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    envelope: Envelope

    def to_json(self) -> dict[str, Any]:
        return {"kind": "duplicate", **_env_json(self.envelope)}

    def __str__(self) -> str:
        e = self.envelope
        return f"the network duplicates {show(e.message)} from {e.src} to {e.dst}"


@dataclass(frozen=True, slots=True)
class Partition:
    group: tuple[str, ...]           # cut off from every other instance

    def to_json(self) -> dict[str, Any]:
        return {"kind": "partition", "group": list(self.group)}

    def __str__(self) -> str:
        return f"partition: {{{', '.join(self.group)}}} is cut off from the rest"


@dataclass(frozen=True, slots=True)
class Heal:
    def to_json(self) -> dict[str, Any]:
        return {"kind": "heal"}

    def __str__(self) -> str:
        return "the partition heals"


Event = (Deliver | Fire | TimerFire | Crash | Restart | Drop | Lose | Duplicate | Partition
         | Heal)
FAULT_KINDS = ("crash", "restart", "drop", "lose", "duplicate", "partition", "heal")
