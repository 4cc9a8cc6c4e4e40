"""Fault budgets: how many faults of each kind an exploration may inject.

The budget left is part of the global state, so `check --faults crash=1,drop=2` explores every
placement of at most that many faults.  A count of -1 means unlimited (the simulator, which
draws faults by rates instead).
"""
from __future__ import annotations

from dataclasses import dataclass

from assay.errors import UsageError

KINDS = ("drop", "dup", "crash", "partition")


@dataclass(frozen=True, slots=True)
class Faults:
    drop: int = 0
    dup: int = 0
    crash: int = 0
    partition: int = 0

    def budget(self) -> tuple[int, int, int, int]:
        return (self.drop, self.dup, self.crash, self.partition)

    @classmethod
    def unlimited(cls) -> Faults:
        return cls(-1, -1, -1, -1)

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`crash=1,drop=2,dup=1,partition=1` (any subset, any order)."""
        counts: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            k, sep, v = part.partition("=")
            k = k.strip()
            k = "dup" if k == "duplicate" else k
            if not sep or k not in KINDS:
                raise UsageError(f"--faults: {part!r} is not KIND=N",
                                 notes=[f"kinds: {', '.join(KINDS)}; e.g. crash=1,drop=2"])
            try:
                n = int(v)
            except ValueError:
                rate = _is_rate(v)
                raise UsageError(
                    f"--faults: {part!r}: {v.strip()!r} is not a whole number of faults"
                    + (" (a rate is for `simulate`)" if rate else ""),
                    notes=["`check --faults` takes a budget: how many faults of each kind, "
                           "e.g. crash=1,drop=2; `simulate --faults` takes per-step "
                           "probabilities, e.g. crash=0.01"]) from None
            if n < 0:
                raise UsageError(f"--faults: {part!r}: the count must be >= 0")
            counts[k] = n
        return cls(**counts)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in zip(KINDS, self.budget()) if v) or "none"

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in zip(KINDS, self.budget()) if v}


def _is_rate(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
