"""Deterministic simulation: seeded runs with fault injection, shrinking and replay."""
from assay.simulator.campaign import Campaign, Options, RunReport, campaign, derive, trace_of
from assay.simulator.rates import FaultRates
from assay.simulator.run import RunResult, run_once
from assay.simulator.shrink import ddmin, shrink

__all__ = ["Campaign", "FaultRates", "Options", "RunReport", "RunResult", "campaign", "ddmin",
           "derive", "run_once", "shrink", "trace_of"]
