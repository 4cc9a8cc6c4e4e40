"""The Python API: `assay.check`, `assay.simulate` and `assay.verify`, for notebooks, scripts
and tests (the pytest plugin uses them).

Each takes what its command takes — a spec file, or else a spec module, a system function or
a `System` built already — loads and builds it as the command does (`assay.model.load`),
runs the engine and returns its result object: `CheckResult`, `Campaign`, `VerifyReport`.
A result has `.ok`, `.text()` (the report the command prints), `.warnings` (what to look
at even when all holds, e.g. a property that reads nothing: `spec_warnings`), a one-line
`repr` and a `_repr_html_` for notebooks.  Bad input raises an `AssayError` (`SpecError`,
`UsageError`) whose message names the fix; `str(e)` or `e.render()` prints it as the
command would.
"""
from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from assay.errors import UsageError
from assay.model.system import System

if TYPE_CHECKING:
    from assay.checker import CheckResult
    from assay.kernel.faults import Faults
    from assay.simulator.campaign import Campaign
    from assay.simulator.rates import FaultRates
    from assay.verifier.verify import VerifyReport

__all__ = ["check", "simulate", "verify"]

# a spec: a file (a path), a module (imported or `assay.model.load.load_module`), a system
# function (`def system(n: int = 3) -> System`) or a System built already
Spec = str | os.PathLike[str] | types.ModuleType | Callable[..., System] | System


def build_target(spec: Spec, system: str | None = None,
                 params: Mapping[str, Any] | None = None,
                 kwparams: Mapping[str, Any] | None = None
                 ) -> tuple[System, str, dict[str, Any], str]:
    """The `System` to run, the name of its system function, its parameters (typed, with the
    defaults) and the spec file that names it in traces ("" when there is none).

    Parameters come as `params={...}` or as keyword arguments, never both for one name; a
    value is of the parameter's type (`n=3`) or text as `--param` takes it (`n="3"`)."""
    from assay.model.load import build, build_function, build_module

    both = sorted(set(params or {}) & set(kwparams or {}))
    if both:
        raise UsageError(f"parameter {both[0]!r} is given twice: as a keyword argument and in "
                         "params=", notes=["give it once"])
    given = {**(params or {}), **(kwparams or {})}
    if isinstance(spec, System):
        if given:
            raise UsageError(f"parameters {', '.join(sorted(given))} given for a System that "
                             "is built already",
                             notes=["pass the system function (or the spec file or module) "
                                    "to build it with parameters"])
        if system is not None and system != spec.name:
            raise UsageError(f"system={system!r} given with a built System "
                             f"({spec.name!r})", notes=["leave system= out"])
        return spec, spec.name, {}, ""
    if isinstance(spec, types.ModuleType):
        path = getattr(spec, "__file__", None) or spec.__name__
        built, name, typed = build_module(spec, path, system, given)
        return built, name, typed, path if os.path.isfile(path) else ""
    if isinstance(spec, str | os.PathLike):
        path = os.fspath(spec)
        if os.path.isdir(path):
            raise UsageError(f"{path} is a folder, not a spec file",
                             notes=["name one spec file (.py); `pytest --assay FOLDER` checks "
                                    "every spec in a folder"])
        built, name, typed = build(path, system, given)
        return built, name, typed, path
    if inspect.isfunction(spec):
        if system is not None and system != spec.__name__:
            raise UsageError(f"system={system!r} given with the system function "
                             f"{spec.__name__}()", notes=["leave system= out"])
        file = inspect.getsourcefile(spec) or ""
        built, name, typed = build_function(spec, file or spec.__name__, given, system)
        return built, name, typed, file if spec.__name__ == name and _named(file, spec) else ""
    raise UsageError(f"cannot check a {type(spec).__name__}",
                     notes=["pass a spec file's path, a spec module, a system function or a "
                            "System"])


def spec_warnings(system: System, command: str) -> tuple[str, ...]:
    """The warnings about the spec itself that `command`'s result carries (its summary, its
    JSON `warnings`), known before the engine runs; the one list of them.  For every
    command, what loading noticed (`System.load_warnings`: a function shaped like a property
    that the system function never registered); for `simulate` and `run`, each property
    that reads nothing of the state (`Kernel.vacuous_notes`; `check` says that from every
    state it explored, `CheckResult.warnings`).  Whether a state constraint cut `check`'s
    search is the result's own `CheckResult.constraints` (assay.checker.constraints)."""
    notes = list(system.load_warnings)
    if command in ("simulate", "run"):
        from assay.kernel import Kernel

        notes += Kernel(system).vacuous_notes()
    return tuple(notes)


class _Warned(Protocol):
    @property
    def warnings(self) -> tuple[str, ...]: ...


R = TypeVar("R", bound=_Warned)


def with_warnings(result: R, warnings: Iterable[str]) -> R:
    """`result` (a `CheckResult`, `Campaign` or `VerifyReport`) with `warnings` before its
    own, as its summary and its JSON show them."""
    from dataclasses import replace

    extra = tuple(warnings)
    if not extra:
        return result
    return replace(result, warnings=(*extra, *result.warnings))  # type: ignore[type-var]


def _named(file: str, fn: Callable[..., Any]) -> bool:
    """Whether a trace can name `fn` by its file and name: `assay replay` loads that file and
    finds a system function of that name in it."""
    return bool(file) and os.path.isfile(file) and fn.__qualname__ == fn.__name__


def parse_faults(faults: str | Mapping[str, int] | Faults | None) -> Faults | None:
    """A fault budget for `check`: `"crash=1,drop=2"` as `--faults` takes it, a dict
    `{"crash": 1, "drop": 2}`, or a `Faults`."""
    from assay.kernel.faults import Faults

    if faults is None or isinstance(faults, Faults):
        return faults
    if isinstance(faults, Mapping):
        faults = ",".join(f"{k}={v}" for k, v in faults.items())
    if not isinstance(faults, str):
        raise UsageError(f"faults={faults!r}: expected text like 'crash=1,drop=2' or a dict "
                         "like {'crash': 1}")
    return Faults.parse(faults)


def parse_rates(faults: str | Mapping[str, float] | FaultRates | None) -> FaultRates:
    """Fault rates for `simulate`: `"drop=0.05,crash=0.01"`, a dict, or `FaultRates`."""
    from assay.simulator.rates import FaultRates

    if faults is None:
        return FaultRates()
    if isinstance(faults, FaultRates):
        return faults
    if isinstance(faults, Mapping):
        faults = ",".join(f"{k}={v}" for k, v in faults.items())
    if not isinstance(faults, str):
        raise UsageError(f"faults={faults!r}: expected text like 'drop=0.05,crash=0.01' or a "
                         "dict like {'drop': 0.05}")
    return FaultRates.parse(faults)


def check(spec: Spec, system: str | None = None, *,
          params: Mapping[str, Any] | None = None,
          faults: str | Mapping[str, int] | Faults | None = None,
          strategy: str = "bfs", max_states: int | None = None, max_depth: int | None = None,
          max_time: float | None = None, max_memory: int | None = None,
          fairness: str | None = None, deadlock: bool = True, keep_going: bool = False,
          symmetry: bool = True, por: bool = False, **kwparams: Any) -> CheckResult:
    """Model check a system, as `assay check` does: every reachable state, every placement
    of at most `faults` faults, every property and contract.

    `assay.check("specs/two_phase_commit.py", rm_count=2, faults="crash=1")` returns a
    `CheckResult`: `.verdict` (ok, violation, incomplete), `.violation`, `.steps` (the
    shortest counterexample), `.trace` (`.trace.write(path)` for `assay replay`), the counts,
    `.text()` (the report `assay check` prints).  The options are those of the command
    (`max_states`, `max_time`, `keep_going`, `deadlock=False` for `--no-deadlock`, `por`
    for `--por`, ...);
    other keyword arguments are the system's parameters (or give them as `params={...}`).
    """
    from assay.checker import check as run_check
    from assay.kernel import Kernel

    if fairness not in (None, "none", "weak", "strong"):
        raise UsageError(f"fairness={fairness!r}: choose 'none', 'weak' or 'strong'")
    built, name, typed, path = build_target(spec, system, params, kwparams)
    kernel = Kernel(built, parse_faults(faults), fairness, deadlock=deadlock)
    result = run_check(kernel, strategy=strategy, max_states=max_states, max_depth=max_depth,
                       max_time=max_time, max_memory=max_memory, spec=path, system_name=name,
                       params=typed, keep_going=keep_going, symmetry=symmetry, por=por)
    return with_warnings(result, spec_warnings(built, "check"))


def simulate(spec: Spec, system: str | None = None, *,
             params: Mapping[str, Any] | None = None,
             faults: str | Mapping[str, float] | FaultRates | None = None,
             seed: int = 0, runs: int = 100, steps: int = 1000, scheduler: str = "random",
             pct_depth: int = 3, shrink: bool = True, jobs: int = 1,
             max_time: float | None = None, **kwparams: Any) -> Campaign:
    """Simulate a system, as `assay simulate` does: `runs` seeded runs of at most `steps`
    events, with faults injected at the given per-step rates (`"drop=0.05,crash=0.01"`).

    Returns a `Campaign`: `.failures` (the runs that found a violation, shrunk), `.traces()`
    (their trace files' contents), `.ok` — no violation in these runs, a sample and not a
    proof — and `.text()`.  The runs are the same for a seed whatever `jobs`; `jobs` > 1
    uses worker processes, and only for a spec file (workers load it).  `max_time` (seconds)
    stops it with the runs done by then (`.timed_out`).  (`assay simulate` also replays its
    first failing run in processes with other str hashes and warns when it does not fail
    there: `assay.cli.replay.hash_seed_note`; this function writes no trace file and does
    not.)
    """
    from assay.simulator.campaign import Options, campaign

    if scheduler not in ("random", "pct", "coverage", "swarm"):
        raise UsageError(f"scheduler={scheduler!r}: choose 'random', 'pct', 'coverage' or "
                         "'swarm'")
    for label, value in (("runs", runs), ("steps", steps), ("pct_depth", pct_depth),
                         ("jobs", jobs)):
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{label}={value!r}: must be a positive int")
    if max_time is not None and (isinstance(max_time, bool) or
                                 not isinstance(max_time, (int, float)) or max_time <= 0):
        raise UsageError(f"max_time={max_time!r}: must be a positive number of seconds")
    rates = parse_rates(faults)
    built, name, typed, path = build_target(spec, system, params, kwparams)
    warnings = spec_warnings(built, "simulate")
    opts = Options(steps=steps, rates=rates, scheduler=scheduler, pct_depth=pct_depth,
                   shrink=shrink)
    workers = jobs > 1 and bool(path) and not isinstance(spec, System)
    result = campaign(path, name, {k: str(v) for k, v in typed.items()}, seed=seed, runs=runs,
                      opts=opts, jobs=jobs, system=None if workers else built,
                      max_time=max_time)
    result.spec, result.system_name, result.params, result.options = path, name, typed, opts
    result.liveness_properties = tuple(p.name for p in built.liveness)
    return with_warnings(result, warnings)


def verify(spec: Spec, system: str | None = None, *,
           params: Mapping[str, Any] | None = None, component: str | None = None,
           timeout: float = 5.0, crashes: bool = False, **kwparams: Any) -> VerifyReport:
    """Prove each component's contracts with Z3, as `assay verify` does (one component with
    `component=`); `timeout` is per obligation, in seconds; `crashes=True` (`--crashes`):
    the connections' protocols must fit also across crashes and restarts.

    Returns a `VerifyReport`: `.verdict` (proved, refuted, unknown), `.obligations` (each
    proved, refuted with concrete values, vacuous or unknown with the reason), `.find(...)`,
    `.text()`.  A construct the verifier cannot translate is unknown, never proved.
    """
    from dataclasses import replace

    from assay.verifier.verify import verify as run_verify

    built, name, typed, path = build_target(spec, system, params, kwparams)
    report = run_verify(built, component=component, timeout=timeout, crashes=crashes)
    return with_warnings(replace(report, spec=path, params=typed),
                         [*spec_warnings(built, "verify"),
                          *only_component(built, report, component)])


def only_component(system: System, report: VerifyReport, component: str | None) -> list[str]:
    """With `component` (`--component`): a warning that the other components' obligations,
    and the connections', were not checked (the summary's "every obligation proved" is of
    that one)."""
    if component is None:
        return []
    others = sorted({cls.__name__ for cls in system.instances.values()}
                    - set(report.components))
    return [f"only component {', '.join(report.components)} was verified (--component "
            f"{component}): the obligations of "
            + (f"{', '.join(others)} and of " if others else "")
            + "the connections were not checked"]
