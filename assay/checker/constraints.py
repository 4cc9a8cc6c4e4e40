"""Whether the state constraints (`@s.constraint`) cut the search: a check whose every
state met was within them explored the whole system; one that met a state beyond them
explored the system *within* them only, and its report must say so (`CheckResult.constraints`).

The search engines call `Kernel.within`, which evaluates the system's constraint functions;
`Pruning` wraps those functions for the duration of one check and notes a state on which one
is not true.  Engines in this process (and forked workers' parents) see the note; workers in
other processes do not report it, nor does the search a resumed one took up from its
checkpoint, and then whether the search was cut is unknown."""
from __future__ import annotations

import functools
from typing import Any

from assay.model.system import System


class Pruning:
    """The constraints of `system`, wrapped to note a state where one is not true (`hit`);
    `restore` puts the system's own functions back."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.saved = system.constraints
        self.hit = False
        system.constraints = [(self._noting(fn), loc) for fn, loc in self.saved]

    def _noting(self, fn: Any) -> Any:
        @functools.wraps(fn)
        def noted(g: Any) -> Any:
            ok = fn(g)
            if ok is not True:          # (false, or a value `Kernel.evaluate` judges)
                self.hit = True
            return ok
        return noted

    def restore(self) -> None:
        self.system.constraints = self.saved

    def report(self, known: bool) -> dict[str, Any]:
        """What `CheckResult.constraints` says: the constraints' names and locations, and
        `pruned`: True (a state beyond one was met: checked, not expanded), False (none
        was), None (not `known`: workers in other processes searched, and do not say, or
        the search was resumed from a checkpoint, past states it did not meet again)."""
        return {"names": _names(self.saved),
                "pruned": True if self.hit else (False if known else None)}

    @staticmethod
    def unknown(system: System) -> dict[str, Any]:
        """What `CheckResult.constraints` says when the search ran where nothing noted it."""
        return {"names": _names(system.constraints), "pruned": None}


def _names(constraints: list[tuple[Any, Any]]) -> list[str]:
    return [getattr(fn, "__name__", "constraint") + (f" ({loc})" if loc is not None else "")
            for fn, loc in constraints]


def summary_note(info: dict[str, Any]) -> str:
    """The line a report prints of the constraints."""
    names = ", ".join(info["names"])
    if info["pruned"] is None:
        return (f"{names}: may have cut the search (worker processes, or the search before "
                "its checkpoint, do not say): 'exhaustive' means every state within them")
    if info["pruned"]:
        return (f"{names}: cut the search: states beyond them were checked but not "
                "expanded; 'exhaustive' means every state within them")
    return f"{names}: true on every state met: nothing was cut"


def headline(info: dict[str, Any] | None) -> str:
    """How the report qualifies 'exhaustive' (empty when no constraint cut the search)."""
    return "" if info is None or info["pruned"] is False else " within the state constraints"


__all__ = ["Pruning", "headline", "summary_note"]
