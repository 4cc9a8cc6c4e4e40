"""How often a kill -9 leaves the store database one step ahead of the state directory, and
whether the next start brings it back (`assay run --state-dir --store-db`).

    PYTHONPATH=$PWD python tests/benchmarks/bench_extstore_kills.py [KILLS]

Runs tests/fixtures/extstore/ledger.py without end, kills it -9 after 2-3 s (seeded), KILLS
times, each life on the same directory and database; after each kill compares the ledger's
saved totals (the state directory) with the database's table.  A start that refuses the
database is printed (there should be none); the last line counts the kills that left the
database ahead and the refusals."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(kills: int = 12) -> None:
    work = Path(tempfile.mkdtemp(prefix="extstore-kills-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "assay.cli", "run",
            str(ROOT / "tests" / "fixtures" / "extstore" / "ledger.py"), "-p", "limit=100000",
            "--state-dir", str(work / "sd"), "--store-db", str(work / "db.sqlite"),
            "--for", "60"]
    rng = random.Random(1)
    ahead = refused = 0
    for i in range(kills):
        with open(work / "err.txt", "w") as err:
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                 start_new_session=True)
        time.sleep(2.0 + rng.random())
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        text = (work / "err.txt").read_text()
        if "error" in text:
            refused += 1
            print(text[:300])
        sd = work / "sd" / "local.sqlite"          # (read-only: never made here, empty)
        row = None
        if sd.exists():
            conn = sqlite3.connect(f"file:{sd}?mode=ro", uri=True)
            row = conn.execute("SELECT data FROM fields WHERE instance = 'ledger'").fetchone()
            conn.close()
        saved = dict(json.loads(row[0])["totals"]) if row else {}
        conn = sqlite3.connect(work / "db.sqlite")
        db = {json.loads(k): json.loads(v)
              for k, v in conn.execute("SELECT k, v FROM store_ledger_totals")}
        conn.close()
        ahead += db != saved
        print(f"kill {i}: saved total {sum(saved.values())}, database {sum(db.values())}")
    print(f"{kills} kills: the database one step ahead after {ahead}, refused starts {refused}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
