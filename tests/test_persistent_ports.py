"""Ports whose sessions survive a restart: `Port(protocol, persistent=True)`.

A restarted instance starts the sessions of ordinary ports afresh; on a persistent port it
picks the conversation up where it was.  The kernel's restart event and the runtime's restore
from SQLite must agree — checked here on the account service, whose client remembers that it
is waiting for an answer.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from assay.kernel import Kernel
from assay.kernel.events import Envelope
from assay.kernel.kernel import SESSIONS
from assay.model.load import build

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "account_service.py"


def check(spec: Path, *args: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "assay.cli", "check", str(spec), "--json", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    return json.loads(run.stdout)


def test_with_a_persistent_port_a_restarted_client_still_expects_its_answer():
    doc = check(SPEC, "--faults", "crash=2")
    assert doc["verdict"] == "ok", doc


def test_without_it_the_restarted_client_refuses_the_answer_it_was_waiting_for(tmp_path):
    plain = tmp_path / "account_service_plain_port.py"
    text = SPEC.read_text()
    assert "Port(CLIENT_SIDE, persistent=True)" in text
    plain.write_text(text.replace("Port(CLIENT_SIDE, persistent=True)", "Port(CLIENT_SIDE)"))
    doc = check(plain, "--faults", "crash=1")
    assert doc["verdict"] == "violation"
    v = doc["violation"]
    assert v["kind"] == "protocol" and "does not expect" in v["message"]
    kinds = [e["kind"] for e in doc["trace"]["events"]]
    assert kinds[-3:] == ["crash", "restart", "deliver"]
    # and without faults both are fine
    assert check(plain)["verdict"] == "ok"


def test_persisted_fields_carry_the_session_and_restore_resumes_it():
    system, _, _ = build(SPEC, None, {})
    k = Kernel(system)
    lid = k.local_initial("client")
    fired = {str(ev): step for ev, step in k.local_actions("client", lid)}
    step = fired["client fires deposit(2)"]
    saved = k.persisted("client", step.local)
    assert saved is not None and saved["waiting"] is True and saved["requests"] == 1
    assert set(saved[SESSIONS]) == {"bank/bank"} and saved[SESSIONS]["bank/bank"] != 0
    saved = json.loads(json.dumps(saved))            # as the store keeps it
    restored = k.local_restore("client", saved)
    assert not restored.violations
    assert k.local_view("client", restored.local) == k.local_view("client", step.local)
    # the answer is accepted after the restore, as the kernel's restart event allows
    answer = Envelope("bank", "clients", "client", "bank", k_message(k, "Done", balance=2))
    after = k.local_deliver(restored.local, answer)
    assert not after.violations
    assert k.local_view("client", after.local)["balance"] == 2
    # a restore without the session (an older store) starts it afresh: the answer is refused
    fresh = k.local_restore("client", {f: v for f, v in saved.items() if f != SESSIONS})
    refused = k.local_deliver(fresh.local, answer)
    assert [v.kind for v in refused.violations] == ["protocol"]


def test_a_component_without_persistent_ports_persists_no_sessions():
    system, _, _ = build(SPEC, None, {})
    k = Kernel(system)
    saved = k.persisted("bank", k.local_initial("bank"))
    assert saved == {"balance": 0}


def k_message(k: Kernel, name: str, **fields):
    from assay.kernel.kernel import _known_messages

    return _known_messages(k.system)[name](**fields)
