"""Soak: kill -9 the nodes of a deployment on a seeded schedule, then check what survived.

What it does
    Deploys tests/fixtures/runtime/bank_persistent.py (three accounts passing money around a
    ring, balances persistent) on loopback `assay node` processes with --state-dir and
    --trace-out, kills a node chosen by the seed every 0.1-0.6 s (`--kills` times) and starts
    it again on its state, then stops every node and checks, per run:

    * conformance: the nodes' step logs, merged by Lamport clock, replay through the checker's
      kernel (`assay replay`: every step one the model allows, `money_is_conserved` after
      each);
    * nothing lost or made twice: the balances plus the money in outbox rows that their
      receivers have not handled add up to the initial total (the model alone cannot show a
      lost message: it reads as one still in flight).

    It prints one line per seed and exits 1 if any seed fails.  Not a timed test; it is how
    the message-loss bug of co-located instances was found (RESULTS.md, runtime).

    python tests/benchmarks/soak_runtime.py                        # seeds 1-5, 3 nodes
    python tests/benchmarks/soak_runtime.py --seeds 1-20 --colocate --durability process
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SPEC = ROOT / "tests" / "fixtures" / "runtime" / "bank_persistent.py"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_runtime import free_port  # noqa: E402


def soak(seed: int, kills: int, colocate: bool, durability: str) -> tuple[bool, str]:
    from assay.kernel import Kernel
    from assay.kernel.trace import Trace, initial_json
    from assay.model.load import build
    from assay.runtime.steplog import merge_logs
    from assay.runtime.store import Store
    from assay.runtime.tcp import control

    rng = random.Random(seed)
    placement = ({"n0": ["acct0", "acct1"], "n1": ["acct2"]} if colocate else
                 {"n0": ["acct0"], "n1": ["acct1"], "n2": ["acct2"]})
    with tempfile.TemporaryDirectory(prefix="soak_") as t:
        tmp = Path(t)
        ports = {n: free_port() for n in placement}
        secret = secrets.token_hex(16)
        dep = tmp / "deploy.toml"
        dep.write_text(f'spec = "{SPEC}"\nsecret = "{secret}"\n[params]\naccounts = 3\n' + "".join(
            f'[nodes.{n}]\nhost = "127.0.0.1"\nport = {ports[n]}\ninstances = {json.dumps(i)}\n'
            for n, i in placement.items()))

        def start(n: str) -> subprocess.Popen:
            with open(tmp / f"{n}.log", "a") as log:
                return subprocess.Popen(
                    [sys.executable, "-m", "assay.cli", "node", str(dep), "--name", n,
                     "--state-dir", str(tmp / "state"), "--durability", durability,
                     "--trace-out", str(tmp / f"{n}.jsonl")],
                    cwd=ROOT, stdout=log, stderr=log, start_new_session=True)

        async def ask(port: int, frame: dict) -> dict | None:
            return await control("127.0.0.1", port, secret.encode(), frame)

        procs = {n: start(n) for n in placement}
        try:
            time.sleep(1.5)
            for _ in range(kills):
                time.sleep(rng.uniform(0.1, 0.6))
                n = rng.choice(list(placement))
                os.killpg(procs[n].pid, signal.SIGKILL)
                procs[n].wait()
                procs[n] = start(n)
            time.sleep(2.0)
            for p in ports.values():
                with contextlib.suppress(OSError, TimeoutError):
                    asyncio.run(ask(p, {"t": "stop"}))
            for proc in procs.values():
                proc.wait(20)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        system, name, typed = build(str(SPEC), None, {"accounts": "3"})
        k = Kernel(system)
        events = merge_logs([str(tmp / f"{n}.jsonl") for n in placement])
        Trace(str(SPEC), name, typed, events, engine="run",
              initial=initial_json(k, k.initial_states()[0][0])).write(tmp / "run.json")
        r = subprocess.run([sys.executable, "-m", "assay.cli", "replay", str(tmp / "run.json"),
                            "--json"], capture_output=True, text=True, cwd=ROOT)
        stores = {n: Store(tmp / "state" / f"{n}.sqlite") for n in placement}
        try:
            balances = sum(stores[n].load(a)["balance"] for n in placement for a in placement[n])
            flight = 0
            for n in placement:
                for link, epoch, seq, frame in stores[n].outbox():
                    got = None if link == n else stores[link].handled().get((n, epoch))
                    if got is None or seq not in got:
                        flight += frame["message"]["fields"]["amount"]
        finally:
            for s in stores.values():
                s.close()
        crashes = sum(e["kind"] == "crash" for e in events)
        ok = r.returncode == 0 and balances + flight == 12
        verdict = "replays" if r.returncode == 0 else f"replay exit {r.returncode}"
        return ok, (f"seed {seed}: {len(events):,} steps, {crashes} crashes, {verdict}, "
                    f"money {balances} + {flight} in flight = {balances + flight} (of 12)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1-5", help="a range A-B or one seed")
    ap.add_argument("--kills", type=int, default=8, help="kills per run")
    ap.add_argument("--colocate", action="store_true", help="two accounts on one node")
    ap.add_argument("--durability", choices=["machine", "process"], default="machine")
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    failed = 0
    for seed in range(int(lo), int(hi or lo) + 1):
        ok, line = soak(seed, a.kills, a.colocate, a.durability)
        failed += not ok
        print(("ok   " if ok else "FAIL ") + line, flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
