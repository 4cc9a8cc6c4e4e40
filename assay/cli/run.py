"""`assay run` and `assay node`: the runtime, in one process or over TCP."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from assay.cli.common import (
    EXIT_INTERRUPTED,
    Seconds,
    _check_writable,
    _fail,
    _params,
    print_warnings,
)
from assay.errors import AssayError, LoadInterrupted, UsageError


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option("--system", "system_name", metavar="NAME", help="Which system function to build.")
@click.option("--param", "-p", "params", multiple=True, metavar="K=V",
              help="A parameter of the system function (repeatable).")
@click.option("--deploy", "deploy_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Run the nodes of this deployment as local processes over TCP, and "
                   "supervise them (instead of one process).")
@click.option("--state-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep persistent fields in SQLite there (one file per node) and resume "
                   "from them when started again.")
@click.option("--fresh", is_flag=True,
              help="Start over in --state-dir: move the earlier state there aside (to "
                   "<file>.old-<time>) instead of resuming it.  Needed where the earlier "
                   "state is damaged or gone; a new or empty directory starts fresh anyway.")
@click.option("--durability", type=click.Choice(["machine", "process"]), default="machine",
              show_default=True, help="What a committed step survives, with --state-dir: a "
                                      "crash of the machine (fsync every commit), or of the "
                                      "process only (faster).")
@click.option("--for", "duration", type=Seconds(min=0), default=None,
              metavar="SECONDS", help="Stop after this long (default: when nothing is left "
                                      "to do); with --deploy, counted from when every node "
                                      "answers.")
@click.option("--monitor", type=click.Choice(["enforce", "log", "off"]), default="enforce",
              show_default=True, help="What a violation does to its step: rejected, "
                                      "reported, or ignored.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the scheduler that picks the next ready instance.")
@click.option("--time-unit", type=Seconds(min=0), default=0.01, show_default=True,
              metavar="SECONDS", help="Real time of one unit of timer delay.")
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Record the run as a trace (assay replay checks it against the model).")
@click.option("--store-db", type=click.Path(), metavar="FILE|DIR",
              help="Keep the external stores (external_store fields) in this SQLite file, a "
                   "table per store, written in one transaction per step (--durability "
                   "applies).  With --deploy, a directory: each node keeps the stores of "
                   "its instances in DIR/<node>.db.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def run(spec: str | None, system_name: str | None, params: tuple[str, ...],
        deploy_file: str | None, state_dir: str | None, fresh: bool, durability: str,
        duration: float | None, monitor: str, seed: int, time_unit: float,
        trace_out: str | None, store_db: str | None, as_json: bool) -> None:
    """Run the system on asyncio — in this process over in-process links, or (--deploy) as
    one process per node over authenticated TCP — with its contracts and protocols monitored
    on every step: the same handlers as check, verify and simulate.

    Ctrl-C (or SIGTERM) stops the run after the current step, with its report (exit 0 or
    1); if the step has not returned 3 s after Ctrl-C (a handler that loops), or at a second
    Ctrl-C, the run ends at once, exit 130.

    \b
    Exit codes: 0 no violation, 1 violations were reported, 2 spec or usage error (a state
    directory that is damaged, or not this system's, included), 70 internal error,
    130 interrupted without a report.
    """
    from assay.kernel import Kernel
    from assay.model.load import build
    from assay.runtime.local import run_local

    if deploy_file:
        # the deployment file names the spec, system and parameters: one given here as well
        # was ignored, and the run was not the one asked for
        seeded = click.get_current_context().get_parameter_source("seed") \
            not in (click.core.ParameterSource.DEFAULT, None)
        given = [w for w, on in ((f"SPEC ({spec})", spec is not None),
                                 (f"--system {system_name}", system_name is not None),
                                 *((f"-p {v}", True) for v in params),
                                 (f"--seed {seed}", seeded)) if on]
        if given:
            _fail(UsageError(f"--deploy {deploy_file} takes the spec, system and parameters "
                             f"from the deployment file, not from the command line: "
                             f"{', '.join(given)}",
                             notes=["drop them, or set them in the deployment file (spec = "
                                    "..., system = ..., [params]); each node's scheduler is "
                                    "its own, so --seed does not apply"]))
        _run_deployment(deploy_file, duration, state_dir, monitor, time_unit, trace_out,
                        as_json, durability, fresh, store_db)
        return
    try:
        if spec is None:
            raise UsageError("give a SPEC to run in this process, or --deploy FILE")
        if trace_out:
            _check_writable(trace_out, [("the spec", spec)])
        system, name, typed = build(spec, system_name, _params(params))
        from assay.api import spec_warnings

        warnings = spec_warnings(system, "run")
        print_warnings(warnings)
        if monitor == "off":              # (for the JSON document, where no ✓ is printed)
            warnings = (*warnings, "--monitor off: no contract or protocol was checked; "
                        "'violation_count' 0 says nothing of them")
        kernel = Kernel(system)
        _check_fresh(fresh, state_dir)
        from assay.runtime.extstore import open_store_db

        stores = None if store_db is None else open_store_db(kernel, store_db, durability)
        from assay.runtime.tcp import freeze_startup

        freeze_startup()                  # (the spec and kernel: out of later collections)
        try:
            report, rt = run_local(kernel, duration, monitor, seed, time_unit,
                                   record=bool(trace_out), state_dir=state_dir,
                                   durability=durability, fresh=fresh, stores=stores)
        finally:
            if stores is not None:
                stores.close()
        if trace_out:
            try:
                rt.trace(report, spec, name, typed).write(trace_out)
            except OSError as e:
                raise UsageError(f"cannot write the trace to {trace_out}: {e.strerror}") \
                    from None
    except AssayError as e:
        _fail(e)
        return
    except LoadInterrupted as e:          # while the spec was imported
        click.echo(str(e), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:             # before the run was under way, or a step stuck
        click.echo("interrupted (Ctrl-C) before the run could stop cleanly (a handler that "
                   "does not return?): no report", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps({"command": "run", "spec": spec, "system": name, "params": typed,
                               "monitor": monitor, "seed": seed, **report.to_json(),
                               "warnings": list(warnings)},
                              indent=2, default=str))
    else:
        from assay.report import render_run

        render_run(Console(highlight=False), report, spec, name, typed, monitor, trace_out,
                   warnings)
    sys.exit(report.exit_code)


def _run_deployment(deploy_file: str, duration: float | None, state_dir: str | None,
                    monitor: str, time_unit: float, trace_out: str | None,
                    as_json: bool, durability: str = "machine", fresh: bool = False,
                    store_db: str | None = None) -> None:
    import asyncio

    from assay.model.load import build
    from assay.runtime.deploy import load_deployment, placed
    from assay.runtime.supervise import supervise

    try:
        if trace_out:
            _check_writable(trace_out, [("the deployment file", deploy_file)])
        dep = load_deployment(deploy_file)
        if trace_out:
            _check_writable(trace_out, [("the spec", dep.spec)])
        system, name, typed = build(dep.spec, dep.system, dep.params)
        from assay.api import spec_warnings

        warnings = spec_warnings(system, "run")
        print_warnings(warnings)
        dep = placed(dep, system)          # a composite placed whole: its instances
        if store_db is not None:
            _store_dir(store_db, system)
        clients = frozenset(n for n, s in dep.nodes.items()
                            if s.instances and all(i in system.externals for i in s.instances))
        if clients and not as_json:
            click.echo(f"client node(s) {', '.join(sorted(clients))} host only external "
                       "instances: not started; waiting for a program to attach to each "
                       "(assay.runtime.connect) and leave again before the run ends when "
                       "nothing is left to do (or --for, Ctrl-C)", err=True)
        _check_fresh(fresh, state_dir)
        if fresh:
            click.echo(f"--fresh: each node moves its earlier state in {state_dir} aside (to "
                       "<file>.old-<time>; its log says which)", err=True)
        report = asyncio.run(supervise(deploy_file, dep, duration, state_dir, monitor,
                                       time_unit, skip=clients, durability=durability,
                                       fresh=fresh, store_db=store_db))
        if trace_out:
            _write_run_trace(dep, system, name, typed, report.events, trace_out)
    except AssayError as e:
        _fail(e)
        return
    doc = {"command": "run", "deploy": deploy_file, "ended": report.ended, "logs": report.logs,
           "seconds": round(report.seconds, 3), "restarts": report.restarts,
           "steps": len(report.events), "violation_count": report.violation_count,
           "failed": None if report.failed is None else {
               "node": report.failed[0], "exit": report.failed[1], "log": report.failed[2]},
           "violations": report.violations,
           "final": report.final, "warnings": list(warnings)}
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        click.echo(f"assay run --deploy {deploy_file}: {len(dep.nodes)} nodes, ended: "
                   f"{report.ended} after {report.seconds:.2f} s, {len(report.events)} steps")
        from assay.model.show import printable

        # what the nodes said (states, violations, log lines) is printed escaped
        # (`printable`): a str of a state holds what a peer sent, terminal escapes included
        if report.failed is not None:
            node, code, words = report.failed
            click.echo(f"  node {node} could not be (re)started (exit {code}):", err=True)
            for line in words.splitlines():
                click.echo(f"    {printable(line)}", err=True)
        for inst, fields in report.final.items():
            if dep.placement[inst] in clients:
                continue
            inner = ("(no answer: its node did not report the instance's state)"
                     if fields is None else ", ".join(f"{k}={v}" for k, v in fields.items()))
            click.echo(f"  {inst} (on {dep.placement[inst]}): {printable(inner)}")
        for v in report.violations[:10]:
            click.echo(printable(f"  ✗ {v.get('kind')}: {v.get('message')} "
                                 f"(blame {v.get('blame')})"))
        if report.violation_count > 10:
            click.echo(f"  ... and {report.violation_count - 10:,} more violation(s)")
        click.echo(f"  node logs: {report.logs}")
        if any(report.restarts.values()):
            click.echo("  restarts: " + ", ".join(f"{n}={c}" for n, c in
                                                  report.restarts.items() if c))
    sys.exit(report.exit_code)


def _store_dir(store_db: str, system: Any) -> None:
    """`run --deploy --store-db DIR`: a directory (made if missing) for a system with
    external stores; each node keeps its instances' stores in DIR/<node>.db."""
    import os

    from assay.kernel import Kernel
    from assay.runtime.extstore import store_tables

    if not store_tables(Kernel(system)):
        raise UsageError(f"--store-db {store_db}: the system has no external store",
                         notes=["declare a field with external_store(...) to keep it in a "
                                "database, or leave --store-db out"])
    if os.path.exists(store_db) and not os.path.isdir(store_db):
        raise UsageError(f"--store-db {store_db}: with --deploy this is a directory (each "
                         "node keeps its stores in DIR/<node>.db), and it is a file",
                         notes=["give a directory (created if missing)"])
    try:
        os.makedirs(store_db, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--store-db {store_db}: cannot make the directory: {e.strerror}") \
            from None


@click.command()
@click.argument("deploy_file", metavar="DEPLOYFILE", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Which node of the deployment this is.")
@click.option("--monitor", type=click.Choice(["enforce", "log", "off"]), default="enforce",
              show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep persistent fields in DIR/<node>.sqlite.")
@click.option("--fresh", is_flag=True,
              help="Start over in --state-dir: move this node's earlier state aside (to "
                   "<file>.old-<time>) instead of resuming it.")
@click.option("--durability", type=click.Choice(["machine", "process"]), default="machine",
              show_default=True, help="What a committed step survives, with --state-dir: a "
                                      "crash of the machine (fsync every commit), or of the "
                                      "process only (faster).")
@click.option("--time-unit", type=Seconds(min=0), default=0.01, show_default=True,
              metavar="SECONDS")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--trace-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append this node's steps to FILE as they happen (JSON lines, with "
                   "Lamport clocks); `assay run --deploy` merges them into one trace, and so "
                   "does `assay merge`.")
@click.option("--store-db", type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep the external stores of this node's instances in this SQLite file "
                   "(what `assay run --deploy --store-db DIR` gives each node: "
                   "DIR/<node>.db).")
@click.option("--supervised", is_flag=True, hidden=True,
              help="Ignore Ctrl-C: the supervisor stops the node (after reading its state).")
def node(deploy_file: str, name: str, monitor: str, state_dir: str | None, fresh: bool,
         durability: str, time_unit: float, seed: int, trace_out: str | None,
         store_db: str | None, supervised: bool) -> None:
    """Start one node of a deployment: its instances, its TCP server and links to its peers.
    Runs until stopped (SIGTERM, Ctrl-C, or a stop request)."""
    import asyncio
    import logging
    import signal

    from assay.runtime.deploy import load_deployment
    from assay.runtime.tcp import TcpNode, freeze_startup

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main_() -> None:
        _check_fresh(fresh, state_dir)
        dep = load_deployment(deploy_file)
        n = TcpNode(dep, name, monitor, state_dir, time_unit, seed, trace_out,
                    durability=durability, fresh=fresh, store_db=store_db)
        freeze_startup()                  # (the spec and kernel: out of later collections)
        if supervised:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        await n.serve(signals=(signal.SIGTERM,) if supervised else
                      (signal.SIGTERM, signal.SIGINT))
        if n.failed is not None:
            raise n.failed                # a bug in assay: shown with its traceback

    try:
        asyncio.run(main_())
    except AssayError as e:
        _fail(e)


def _write_run_trace(dep: Any, system: Any, name: str, typed: dict[str, Any],
                     events: list[dict[str, Any]], trace_out: str) -> None:
    """The merged steps of a deployment's nodes as one run trace (what `assay replay` reads)."""
    from assay.kernel import Kernel
    from assay.kernel.trace import Trace, run_events

    initial, events = run_events(Kernel(system), events)
    Trace(dep.spec, name, typed, events, engine="run", initial=initial).write(trace_out)


@click.command()
@click.argument("deploy_file", metavar="DEPLOYFILE", type=click.Path(dir_okay=False))
@click.argument("logs", metavar="LOG...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--trace-out", "-o", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Where to write the merged trace.")
def merge(deploy_file: str, logs: tuple[str, ...], trace_out: str) -> None:
    """Merge the step logs of one run of a deployment — one JSON-lines file per node, written
    by `assay node --trace-out`, kept by `assay run --deploy` (its `node logs:` folder) and by
    a client's `connect(..., trace_out=...)` — into one trace that `assay replay` checks."""
    from assay.model.load import build
    from assay.runtime.deploy import load_deployment
    from assay.runtime.steplog import read_step_log

    try:
        _check_writable(trace_out, [("the deployment file", deploy_file),
                                    *(("a step log", log) for log in logs)])
        dep = load_deployment(deploy_file)
        _check_writable(trace_out, [("the spec", dep.spec)])
        system, name, typed = build(dep.spec, dep.system, dep.params)
        entries: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        for path in logs:
            for entry in read_step_log(path):
                node = entry["node"]
                if node not in dep.nodes:
                    raise UsageError(f"{path}: a step of node {node!r}, which {deploy_file} "
                                     f"does not have (nodes: {', '.join(sorted(dep.nodes))})",
                                     notes=["merge the logs of a run of this deployment"])
                if owner.setdefault(node, path) != path:
                    raise UsageError(f"{path} and {owner[node]} both hold steps of node "
                                     f"{node!r}", notes=["give each node's log once"])
                entries.append(entry)
        entries.sort(key=lambda e: (e["clock"], e["node"]))
        _write_run_trace(dep, system, name, typed, [e["event"] for e in entries], trace_out)
    except AssayError as e:
        _fail(e)
        return
    missing = sorted(n for n in dep.nodes if n not in owner)
    click.echo(f"{len(entries)} steps of node(s) {', '.join(sorted(owner))} merged into "
               f"{trace_out} (assay replay {trace_out} checks it against the model)")
    if missing:
        click.echo(f"  no log of node(s) {', '.join(missing)}: a step of theirs the run took is "
                   "missing, and replay stops where it was needed", err=True)


def _check_fresh(fresh: bool, state_dir: str | None) -> None:
    if fresh and state_dir is None:
        raise UsageError("--fresh starts over in a state directory: give --state-dir DIR too")
