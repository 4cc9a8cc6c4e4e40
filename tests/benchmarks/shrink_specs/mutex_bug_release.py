"""A broken lock server (for bench_shrink.py): on a release it hands the lock to the next
waiter but also marks itself free, so a later request is granted too: two clients in their
critical sections.  No faults needed; random runs go round request/release loops first.

    assay check tests/benchmarks/shrink_specs/mutex_bug_release.py
"""
from enum import Enum

from assay import Component, Message, Peer, Port, System, action, on


class Phase(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    CRITICAL = "critical"


class Request(Message): ...
class Grant(Message): ...
class Release(Message): ...


class LockServer(Component):
    clients = Port(many=True)
    free: bool = True
    waiting: tuple[Peer, ...] = ()

    @on(Request)
    def request(self, m):
        if self.free:
            self.free = False
            self.clients.send(Grant(), to=m.sender)
        else:
            self.waiting = self.waiting + (m.sender,)

    @on(Release)
    def release(self, m):
        if self.waiting:
            self.clients.send(Grant(), to=self.waiting[0])
            self.waiting = self.waiting[1:]
        self.free = True                     # BUG: only when nobody was waiting


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


def system(clients: int = 3) -> System:
    s = System("mutex_bug_release", network="fifo")
    server = s.add("server", LockServer)
    for i in range(clients):
        s.connect(s.add(f"c{i}", Client).server, server.clients)

    @s.always
    def mutual_exclusion(g):
        return sum(c.phase == Phase.CRITICAL for c in g.instances(Client)) <= 1

    return s
