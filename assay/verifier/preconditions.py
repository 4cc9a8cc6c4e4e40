"""A handler's `@requires`, discharged at its senders: the other half of assume-guarantee.

`verify` assumes a handler's requires when it proves the handler, so the requires must be
proved wherever a message can come from: at every send site (and timer) that can reach the
handler, as an obligation of the *sending* component (kind `requires-at-sender`).  This
module says which handlers a send site reaches in the system (`receivers`) and which part of
a requires a sender can prove (`split`); `verify.py` makes and discharges the obligations.

Decisions:

* What a sender can prove is what reads only the message — its fields, and its sender, which
  is the sending instance itself.  A requires is split at its top-level `and`s: the conjuncts
  that do not mention the receiver (the lambda's first parameter) form the message part; the
  others read the receiver's state, which the sender cannot know: they are reported as
  *unknown* ("depends on the receiver's state: not proved compositionally"), never proved
  (`assay check` covers them).  A requires that is one expression mixing both is unknown as
  a whole.  The message part is a real lambda, compiled from the conjuncts' own text in the
  requires' globals and closure, so a refutation is confirmed by running it (the requires
  itself, when nothing was split off) on the message the sender's real code sent.
* Receivers are those of this system: for a send on port p of a component class, every port
  connected to p at any instance of the class, and the handler the kernel picks there for
  the message type (`handler_for`); a timer (`self.after`) reaches the component's own
  handler for its type (`timer_handler`), with no sender.  A send to one peer (`to=`) is
  proved for every connected receiver, since any peer may be the one.
* The receiving port's contract for the message type (`Port(where=...)`) is checked by the
  kernel before the requires (a message that breaks it is refused as a contract violation,
  which the connection's contract obligation covers), so it is assumed here.  A timer meets
  no port: none is assumed.
"""
from __future__ import annotations

import ast
import itertools
import linecache
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.model.component import ComponentInfo, HandlerInfo, component_info
from assay.model.system import System
from assay.verifier import source
from assay.verifier.types import Unsupported

RECEIVER_STATE = "depends on the receiver's state: not proved compositionally"


@dataclass(frozen=True)
class Receiver:
    """A handler a send site reaches: its class, the receiving port (None: a timer), and the
    port's contract for the message type (what the kernel checks before the requires)."""

    cls: type
    port: str | None
    handler: HandlerInfo
    contract: Callable[..., Any] | None


def receivers(system: System, names: list[str], info: ComponentInfo, kind: str,
              port: str | None, mtype: type | None) -> list[Receiver]:
    """The handlers with a requires that a send site of the class reaches in `system`: a
    send (or broadcast) on `port`, or a timer (`kind == "timer"`), of a `mtype` (None: any
    message type, for a body that is not translated)."""
    out: list[Receiver] = []
    seen: set[tuple[type, str, Any]] = set()

    def add(cls: type, p: str | None, h: HandlerInfo | None, contract: Any) -> None:
        if h is None or not h.requires:
            return
        key = (cls, h.name, id(contract))
        if key not in seen:
            seen.add(key)
            out.append(Receiver(cls, p, h, contract))

    if kind == "timer":
        types = [mtype] if mtype is not None else sorted(
            {t for (_, t) in info.handlers}, key=lambda t: t.__name__)
        for t in types:
            add(info.cls, None, info.timer_handler(t), None)
        return out
    # where a message goes: with interceptors on a connection, to the next on its way (what
    # reaches the far endpoint is what the last interceptor forwards)
    for c in (*(c for c in system.connections if not c.via), *system.hops):
        for src, dst in ((c.a, c.b), (c.b, c.a)):
            if src.instance not in names or src.port != port:
                continue
            d_cls = system.instances[dst.instance]
            d_info = component_info(d_cls)
            types = [mtype] if mtype is not None else sorted(
                {t for (_, t) in d_info.handlers}, key=lambda t: t.__name__)
            for t in types:
                add(d_cls, dst.port, d_info.handler_for(dst.port, t),
                    d_info.ports[dst.port].where.get(t))
    return out


@dataclass(frozen=True)
class Split:
    """A requires, split into what reads only the message and what reads the receiver."""

    message: Callable[..., Any] | None   # a lambda (self, m) of the message part; None: none
    message_text: str                    # its source, for titles
    receiver_text: str | None            # the part that reads the receiver; None: none
    whole: bool                          # the message part is the requires itself


_SPLITS: dict[Any, Split] = {}
_COUNTER = itertools.count()


def clear_caches() -> None:
    _SPLITS.clear()


def split(pred: Callable[..., Any]) -> Split:
    """Split a handler's requires at its top-level `and`s; Unsupported when its source
    cannot be found."""
    got = _SPLITS.get(pred)
    if got is None:
        got = _SPLITS[pred] = _split(pred)
    return got


def _split(pred: Callable[..., Any]) -> Split:
    node = source.function_node(pred)
    params = [a.arg for a in node.args.args]
    if not params:
        raise Unsupported("a requires without parameters")
    me = params[0]
    conjuncts: list[ast.AST] = list(_conjuncts(node.body)) if isinstance(node, ast.Lambda) \
        else [node]                          # a def: split nothing
    reads = [_mentions(c, me) for c in conjuncts]
    mine = [c for c, r in zip(conjuncts, reads) if not r]
    theirs = [c for c, r in zip(conjuncts, reads) if r]
    text = _text(node.body) if isinstance(node, ast.Lambda) else node.name
    if not theirs:
        return Split(pred, text, None, True)
    their_text = " and ".join(_text(c) for c in theirs)
    if not mine:
        return Split(None, "", their_text, False)
    assert isinstance(node, ast.Lambda)
    mine_text = " and ".join(_text(c) for c in mine)
    return Split(_lambda(pred, ast.unparse(node.args), mine_text), mine_text, their_text, False)


def _conjuncts(e: ast.expr) -> list[ast.expr]:
    if isinstance(e, ast.BoolOp) and isinstance(e.op, ast.And):
        return [c for v in e.values for c in _conjuncts(v)]
    return [e]


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _text(e: ast.AST) -> str:
    text = ast.unparse(e)
    if isinstance(e, ast.BoolOp | ast.IfExp | ast.Lambda | ast.NamedExpr):
        return f"({text})"
    return text


def _lambda(pred: Callable[..., Any], params: str, body: str) -> Callable[..., Any]:
    """A real lambda of the conjuncts' text, resolving names as the requires does (its
    globals, with its closure's cells as constants: the translation reads them so too)."""
    closure, glob = source.fn_names(pred)
    names = {**glob, **closure}
    src = f"lambda {params}: {body}\n"
    name = f"<assay-requires-part-{next(_COUNTER)}>"
    # kept (not a file: never invalidated), so the translation finds the lambda's source
    linecache.cache[name] = (len(src), None, [src], name)
    return eval(compile(src, name, "eval"), names)  # type: ignore[no-any-return]  # noqa: S307


class NoReceiver:
    """What the message part of a requires gets for the receiver: it never reads it (by
    construction), and if it did, the evaluation would not count."""

    def __getattr__(self, attr: str) -> Any:
        raise ReadsReceiver(attr)


class ReadsReceiver(Exception):
    pass
