"""Benchmark: one `campaign()` of TwoPhase (specs/tla_twophase.py, 7 RMs) in one process.

Prints the campaign's wall time in seconds (kernel build, runs and shrinking included) and
its events.  For comparing two trees run interleaved on a shared machine, e.g.:

    cd tests/benchmarks
    PYTHONPATH=TREE python bench_campaign_twophase.py ../../specs/tla_twophase.py "" 4000
    PYTHONPATH=TREE python bench_campaign_twophase.py ../../specs/tla_twophase.py crash=0.01 4000

(arguments: the spec, the `--faults` rates or "", the runs).  No faults takes the packed
plain runs (`packed.walks`); `crash=0.01` the general loop (`run.run_once`) and shrinking.
"""
import sys
import time

from assay.simulator import FaultRates, Options, campaign

spec = sys.argv[1]
faults = sys.argv[2]
runs = int(sys.argv[3])
opts = Options(rates=FaultRates.parse(faults) if faults else FaultRates())
t = time.perf_counter()
c = campaign(spec, None, {"rm_count": "7"}, seed=0, runs=runs, opts=opts, jobs=1)
print(f"{time.perf_counter() - t:.3f} {c.events}")
