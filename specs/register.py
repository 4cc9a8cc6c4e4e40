"""A register server that acknowledges a write only once the value is stored durably.

A client writes values 1, 2, ... to a server, one at a time, and records each acknowledgement
(persistently, as a user would remember it).
The server's `value` is declared `persistent`, so a crash and restart keeps it: an
acknowledged write is never lost.  Its twin, specs/register_bug_volatile.py, keeps the value
in memory only and loses an acknowledged write after one crash:

    assay check specs/register.py --faults crash=1
    assay check specs/register_bug_volatile.py --faults crash=1

It is also the shipped spec written with type annotations: `mypy --strict specs/register.py`
passes (tests/test_typing.py), and a misspelled field or message is a type error.
"""
from assay import Component, Message, Port, System, action, on, persistent
from assay.kernel import World


class Write(Message):
    value: int


class WriteAck(Message):
    value: int


class Server(Component):
    clients = Port(many=True)
    value: int = persistent(0)             # survives a crash: written before the ack leaves

    @on(Write)
    def write(self, m: Write) -> None:
        self.value = max(self.value, m.value)   # a late, re-sent old write changes nothing
        self.clients.send(WriteAck(m.value), to=m.sender)


class Client(Component):
    server = Port()
    writes: int = 2
    acked: int = persistent(0)             # the last value the server acknowledged
    pending: bool = False

    @action(when=lambda self: not self.pending and self.acked < self.writes)
    def write(self) -> None:
        self.pending = True
        self.server.send(Write(self.acked + 1))

    @on(WriteAck)
    def ack(self, m: WriteAck) -> None:
        self.pending = False
        self.acked = max(self.acked, m.value)


def system(writes: int = 2) -> System:
    s = System("register", network="unordered")
    server = s.add("server", Server)
    s.connect(s.add("client", Client, writes=writes).server, server.clients)

    @s.always
    def acknowledged_writes_survive(g: World) -> bool:  # the server holds what it acked
        return bool("server" in g.crashed() or g["server"].value >= g["client"].acked)

    @s.terminal
    def done(g: World) -> bool:
        return bool(g["client"].acked == writes)

    return s

# `pytest --assay specs/` (docs/API.md): an acknowledged write survives a crash
ASSAY_CHECK = {"faults": "crash=1"}
