"""BUG: a lock server that grants the lock to the smallest name waiting — a client can starve.

The twin of specs/lock_server.py.  Mutual exclusion still holds, but when c0 asks again
before the server hears c0's release, c0 and c1 both wait and c0 wins again: c1 can wait
forever, even under weak fairness.  `check` prints the lasso: a prefix, then a cycle in which
every message is delivered and every client moves, and c1 never enters.

    assay check specs/lock_server.py
    assay check specs/lock_server_bug_priority.py
"""
from enum import Enum

from assay import Component, Message, Peer, Port, System, action, on


class Phase(Enum):
    IDLE = "idle"; WAITING = "waiting"; CRITICAL = "critical"


class Request(Message): ...
class Grant(Message): ...
class Release(Message): ...


class LockServer(Component):
    clients = Port(many=True)
    holder: Peer | None = None
    waiting: tuple[Peer, ...] = ()

    @on(Request)
    def request(self, m):
        if self.holder is None:
            self.holder = m.sender
            self.clients.send(Grant(), to=m.sender)
        else:
            self.waiting = self.waiting + (m.sender,)

    @on(Release)
    def release(self, m):
        if self.waiting:
            self.holder = min(self.waiting)            # BUG: priority, not arrival order
            self.waiting = tuple(w for w in self.waiting if w != self.holder)
            self.clients.send(Grant(), to=self.holder)
        else:
            self.holder = None


class Client(Component):
    server = Port()
    phase: Phase = Phase.IDLE

    @action(when=lambda self: self.phase == Phase.IDLE)
    def ask(self):
        self.phase = Phase.WAITING
        self.server.send(Request())

    @on(Grant)
    def granted(self, m):
        self.phase = Phase.CRITICAL

    @action(when=lambda self: self.phase == Phase.CRITICAL)
    def leave(self):
        self.phase = Phase.IDLE
        self.server.send(Release())


def system(clients: int = 2) -> System:
    s = System("lock_server_bug_priority", network="unordered", fairness="weak")
    server = s.add("server", LockServer)
    for i in range(clients):
        s.connect(s.add(f"c{i}", Client).server, server.clients)

    @s.always
    def mutual_exclusion(g):
        return sum(c.phase == Phase.CRITICAL for c in g.instances(Client)) <= 1

    for i in range(clients):
        s.leads_to(lambda g, i=i: g[f"c{i}"].phase == Phase.WAITING,
                   lambda g, i=i: g[f"c{i}"].phase == Phase.CRITICAL,
                   name=f"c{i} waits ~> c{i} enters")
    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "c1 waits ~> c1 enters"}
