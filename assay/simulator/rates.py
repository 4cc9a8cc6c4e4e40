"""Fault rates for simulation: the probability, per step, of injecting a fault of each kind.

`delay` is the rate at which time jumps to the next timer (messages slower than timeouts).
`lose` is the rate of the losses a lossy link (`System(lossy=True)`, `connect(lossy=True)`)
may suffer: they are the network's, not a fault budget, so a run loses messages on lossy
links at `LOSE` per step unless `--faults lose=R` says otherwise (0: never), and a system
without lossy links never does.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from assay.errors import UsageError

LOSE = 0.05      # the default rate of losses on lossy links


@dataclass(frozen=True, slots=True)
class FaultRates:
    drop: float = 0.0
    dup: float = 0.0
    crash: float = 0.0
    restart: float = 0.5          # per step, while an instance is down
    partition: float = 0.0
    heal: float = 0.2             # per step, while a partition holds
    lose: float = LOSE            # per step, while a lossy link has a message in flight
    # per step, while a timer is pending: the network is slow — time passes to the next
    # timer's due time before anything else happens (a timeout that fires while the messages
    # it waits for are still in flight: a false suspicion).  Not a fault of the budget: the
    # checker lets a timer fire at any time anyway.
    delay: float = 0.0

    @property
    def any(self) -> bool:
        """Whether a fault that needs the kernel's fault budget may be injected (a lossy
        link's losses need none)."""
        return bool(self.drop or self.dup or self.crash or self.partition)

    @classmethod
    def parse(cls, text: str) -> FaultRates:
        """`drop=0.05,dup=0.01,crash=0.002,restart=0.5,partition=0.001,lose=0.1,delay=0.05`."""
        names = {f.name for f in fields(cls)}
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            k, sep, v = part.partition("=")
            k = "dup" if k.strip() == "duplicate" else k.strip()
            if not sep or k not in names:
                raise UsageError(f"--faults: {part!r} is not KIND=RATE",
                                 notes=[f"kinds: {', '.join(sorted(names))}; "
                                        "e.g. drop=0.05,crash=0.002"])
            try:
                r = float(v)
            except ValueError:
                raise UsageError(f"--faults: {part!r}: {v.strip()!r} is not a number",
                                 notes=["`simulate --faults` takes per-step probabilities in "
                                        "[0, 1], e.g. crash=0.01,drop=0.05"]) from None
            if not 0.0 <= r <= 1.0:
                raise UsageError(f"--faults: {part!r}: a rate is a probability in [0, 1]")
            rates[k] = r
        # a step injects at most one fault, drawn by these rates in turn (`run.run_once`):
        # past a sum of 1 a later kind gets less than its rate, or nothing (crash=1,drop=1
        # never dropped while something could crash), silently
        drawn = {k: r for k, r in rates.items() if k != "delay" and r}
        total = sum(drawn.values())
        if total > 1.0 + 1e-9:
            shown = ", ".join(f"{k}={r:g}" for k, r in drawn.items())
            raise UsageError(f"--faults: the rates add up to {total:g} ({shown}): a step "
                             "injects at most one fault, so they cannot all be had",
                             notes=["give rates whose sum is at most 1 (delay, a draw of its "
                                    "own, apart)"])
        return cls(**rates)

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
