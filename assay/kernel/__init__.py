"""The one step semantics: global state, events, `step`, networks and traces."""
from assay.kernel.events import (
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Envelope,
    Event,
    Fire,
    Heal,
    Lose,
    Partition,
    Restart,
    TimerFire,
)
from assay.kernel.faults import Faults
from assay.kernel.kernel import Kernel, State, StepResult, World
from assay.kernel.trace import Trace, replay
from assay.kernel.violation import Violation

__all__ = ["Crash", "Deliver", "Drop", "Duplicate", "Envelope", "Event", "Faults", "Fire",
           "Heal", "Kernel", "Lose", "Partition", "Restart", "State", "StepResult", "TimerFire",
           "Trace", "Violation", "World", "replay"]
