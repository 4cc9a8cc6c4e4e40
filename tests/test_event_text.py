"""Event and step text for people goes through `show()`: peers bare (`r1`, as the state view
prints them, never `Peer('r1')` or `'r1'`), in messages, action arguments, choices and fields;
trace files (JSON) are unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assay.kernel.events import Deliver, Envelope, Fire, TimerFire
from assay.model.message import Message
from assay.model.types import Peer

REPO = Path(__file__).resolve().parents[1]
RAFT_BUG = "specs/raft_election_bug_double_vote.py"
PRIMARY_BACKUP_BUG = "specs/primary_backup_bug_early_reply.py"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_raft_twin_counterexample_shows_peers_bare(tmp_path: Path) -> None:
    trace = tmp_path / "raft.json"
    r = cli("check", RAFT_BUG, "-q", "--trace-out", str(trace))
    assert r.returncode == 1, (r.stdout, r.stderr)
    # before: `s0.voted_for: 's0' -> 's2'` (the field holds `self.name`, a plain str)
    assert "s0.voted_for: s0 -> s2" in r.stdout, r.stdout
    assert "voted_for: None -> s0" in r.stdout
    assert "Peer(" not in r.stdout and "'s" not in r.stdout, r.stdout
    # the trace file is JSON as before: peers are plain strings there
    doc = json.loads(trace.read_text())
    changes = [e["changes"] for e in doc["events"]]
    assert {"s0": {"voted_for": "s2"}} in changes, changes
    assert "Peer(" not in trace.read_text()
    # replaying it prints the same step text
    r = cli("replay", str(trace))
    assert r.returncode == 1 and "s0.voted_for: s0 -> s2" in r.stdout, r.stdout
    assert "Peer(" not in r.stdout and "'s" not in r.stdout, r.stdout


@pytest.mark.e2e
def test_peers_inside_messages_print_bare(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    r = cli("check", PRIMARY_BACKUP_BUG, "-q", "--html", str(page))
    assert r.returncode == 1, (r.stdout, r.stderr)
    text = " ".join(r.stdout.split())
    # before: NewView(view=1, primary=Peer('r1'), backups=frozenset({Peer('r2')}))
    assert "NewView(view=1, primary=r1, backups={r2})" in text, text
    assert "Peer(" not in text and "frozenset(" not in text, text
    html = page.read_text()
    assert "Peer(" not in html and "Peer(&#x27;" not in html


@pytest.mark.e2e
def test_simulate_failure_replays_with_peers_bare(tmp_path: Path) -> None:
    r = cli("simulate", PRIMARY_BACKUP_BUG, "-q", "--runs", "100", "--steps", "30", "--jobs", "1",
            "--out", str(tmp_path), "--no-shrink")
    assert r.returncode == 1, (r.stdout, r.stderr)
    traces = sorted(tmp_path.glob("*.json"))
    assert traces
    r = cli("replay", str(traces[0]), "--mermaid", str(tmp_path / "run.md"))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Peer(" not in r.stdout and "Peer(" not in (tmp_path / "run.md").read_text()


class Vote(Message):
    leader: Peer
    voters: frozenset[Peer]


def test_event_text_uses_show() -> None:
    m = Vote(leader=Peer("r1"), voters=frozenset({Peer("r2"), Peer("r0")}))
    env = Envelope("r1", "peers", "r2", "peers", m, meta=(("via", Peer("r3")),))
    assert str(env) == "r1.peers -> r2.peers: Vote(leader=r1, voters={r0, r2}) [via=r3]"
    assert str(Deliver(env, choices=(Peer("r0"),))) == \
        "r2 receives Vote(leader=r1, voters={r0, r2}) from r1 (on peers), choosing r0"
    assert str(Fire("c", "ask", Peer("r2"), True)) == "c fires ask(r2)"
    assert str(TimerFire("c", m, 3)) == \
        "c timer fires: Vote(leader=r1, voters={r0, r2}) (set with delay 3)"


def test_state_text_uses_show() -> None:
    """The state a spec error quotes ("in state: ..."): fields as `show` prints them."""
    from assay import Component, System, action
    from assay.kernel import Kernel

    class Node(Component):
        leader: Peer | None = None
        peers: frozenset[Peer] = frozenset()

        @action(when=lambda self: self.leader is None)
        def elect(self):
            self.leader = Peer("n1")
            self.peers = frozenset({Peer("n2"), Peer("n1")})

    s = System("state_text")
    s.add("n0", Node)
    k = Kernel(s)
    start = k.initial_states()[0][0]
    after = k.successors(start)[0][0][1]
    # before: n0(leader=Peer('n1'), peers=frozenset({Peer('n1'), Peer('n2')}))
    assert k.render_state(after) == "n0(leader=n1, peers={n1, n2})"
