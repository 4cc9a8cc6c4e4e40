"""A register server that keeps its value in memory only: a bug.

The twin of specs/register.py; only `Server.value` differs (not `persistent`).  Correct
without faults; after one crash and restart of the server, an acknowledged write is lost:

    assay check specs/register_bug_volatile.py                # holds
    assay check specs/register_bug_volatile.py --faults crash=1
"""
from assay import Component, Message, Port, System, action, on, persistent


class Write(Message):
    value: int


class WriteAck(Message):
    value: int


class Server(Component):
    clients = Port(many=True)
    value: int = 0                         # BUG: lost on a crash (not persistent)

    @on(Write)
    def write(self, m):
        self.value = max(self.value, m.value)   # a late, re-sent old write changes nothing
        self.clients.send(WriteAck(m.value), to=m.sender)


class Client(Component):
    server = Port()
    writes: int = 2
    acked: int = persistent(0)             # the last value the server acknowledged
    pending: bool = False

    @action(when=lambda self: not self.pending and self.acked < self.writes)
    def write(self):
        self.pending = True
        self.server.send(Write(self.acked + 1))

    @on(WriteAck)
    def ack(self, m):
        self.pending = False
        self.acked = max(self.acked, m.value)


def system(writes: int = 2) -> System:
    s = System("register_bug_volatile", network="unordered")
    server = s.add("server", Server)
    s.connect(s.add("client", Client, writes=writes).server, server.clients)

    @s.always
    def acknowledged_writes_survive(g):    # the server holds at least what it acknowledged
        return "server" in g.crashed() or g["server"].value >= g["client"].acked

    @s.terminal
    def done(g):
        return g["client"].acked == writes

    return s

# `pytest --assay specs/` (docs/API.md): one crash loses an acknowledged write
ASSAY_CHECK = {"faults": "crash=1"}
ASSAY_EXPECT = {"verdict": "violation", "property": "acknowledged_writes_survive"}
