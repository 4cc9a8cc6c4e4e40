"""A lock server that keeps its lock in memory only (for bench_shrink.py): after a crash
and restart it grants the lock again while a client still holds it.  Found under crash and
restart faults; random runs crash and restart, and go round request/release loops.

    assay check tests/benchmarks/shrink_specs/mutex_bug_crash.py --faults crash=1
"""
from enum import Enum

from assay import Component, Message, Port, System, action, on


class Phase(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    CRITICAL = "critical"


class Request(Message): ...
class Grant(Message): ...
class Release(Message): ...


class LockServer(Component):
    clients = Port(many=True)
    free: bool = True                        # BUG: lost on a crash (not persistent)

    @on(Request)
    def request(self, m):
        if self.free:
            self.free = False
            self.clients.send(Grant(), to=m.sender)
        else:
            self.clients.send(Busy(), to=m.sender)

    @on(Release)
    def release(self, m):
        self.free = True


class Busy(Message): ...


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

    @on(Busy)
    def busy(self, m):
        self.phase = Phase.IDLE

    @action(when=lambda self: self.phase == Phase.CRITICAL)
    def leave(self):
        self.phase = Phase.IDLE
        self.server.send(Release())


def system(clients: int = 2) -> System:
    s = System("mutex_bug_crash", network="unordered")
    server = s.add("server", LockServer)
    for i in range(clients):
        s.connect(s.add(f"c{i}", Client).server, server.clients)

    @s.always
    def mutual_exclusion(g):
        return sum(c.phase == Phase.CRITICAL for c in g.instances(Client)) <= 1

    return s
