"""A ping-pong used only by tests/benchmarks/bench_runtime.py: the pinger sends Ping(n), waits
for Pong(n), then sends Ping(n+1), up to `limit` round trips.  The `requires` on the Pong
handler gives the monitor a contract to check on every delivery."""
from assay import Component, Message, Port, System, action, on, requires


class Ping(Message):
    n: int


class Pong(Message):
    n: int


class Pinger(Component):
    peer = Port()
    sent: int = 0
    got: int = 0
    limit: int = 2000

    @action(when=lambda self: self.sent == self.got and self.sent < self.limit)
    def ping(self):
        self.sent += 1
        self.peer.send(Ping(self.sent))

    @on(Pong)
    @requires(lambda self, m: m.n == self.sent)
    def pong(self, m):
        self.got = m.n


class Ponger(Component):
    peer = Port(many=True)

    @on(Ping)
    def ping(self, m):
        self.peer.send(Pong(m.n), to=m.sender)


def system(limit: int = 2000) -> System:
    s = System("ping_pong")
    pinger = s.add("pinger", Pinger, limit=limit)
    ponger = s.add("ponger", Ponger)
    s.connect(pinger.peer, ponger.peer)

    @s.terminal
    def done(g):
        return g["pinger"].got == limit

    return s
