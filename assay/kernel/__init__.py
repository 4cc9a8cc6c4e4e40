"""The one step semantics: global state, events, `step`, networks and traces."""
from assay.kernel.events import Deliver, Envelope, Event, Fire
from assay.kernel.kernel import Kernel, State, StepResult, World
from assay.kernel.trace import Trace, replay
from assay.kernel.violation import Violation

__all__ = ["Deliver", "Envelope", "Event", "Fire", "Kernel", "State", "StepResult", "Trace",
           "Violation", "World", "replay"]
