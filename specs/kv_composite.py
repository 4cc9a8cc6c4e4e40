"""Composites: a replicated key-value shard, built once and used twice.

`kv_shard` builds a system of its own: a primary and a backup, with synchronous replication
(the primary acknowledges a write once the backup has stored it).  It exports the primary's
client port as its own (`s.export("client", primary.clients)`): from outside, a shard is a
component with one port, `client`; its primary and backup are unreachable except through it.
Its property (`in_sync`: between writes, the backup holds what the primary holds) is the
shard's own, and reads the shard's world: `g["primary"]` is its own primary.

`system` uses two shards: `s.add("shard0", kv_shard)` flattens one into the outer system,
whose instances are then `shard0.primary`, `shard0.backup`, `shard1.primary`, ...  A router
sends each key to its shard; a client writes each key (`writes` values in all), one write at
a time.  The outer property: an acknowledged write is on its shard's backup.  Every engine
sees the flat system, so `check`, `simulate`, `replay` and `run` work as for any other spec;
`verify` shows the connections inside each shard and the ones at its boundary (the router's
port against the shard's exported port) apart.

Its twin, specs/kv_composite_bug_early_ack.py, has a primary that acknowledges a write before
the backup has stored it: `check` finds the acknowledged write that is on no backup.

    assay check specs/kv_composite.py
    assay simulate specs/kv_composite.py --runs 100
    assay verify specs/kv_composite.py
    assay run specs/kv_composite.py
    assay check specs/kv_composite_bug_early_ack.py
"""
from typing import Annotated

from assay import Component, Message, Port, Range, System, action, on
from assay import protocol as p


class Put(Message):
    key: int
    value: int


class PutAck(Message):
    key: int
    value: int


class Replicate(Message):
    value: int


class Replicated(Message):
    value: int


# the client's side of a shard's (and the router's) port: one write at a time, acknowledged
WRITER = p.loop(lambda again: p.send(Put) >> p.recv(PutAck) >> again)
# the primary's side of its link to the backup: each value replicated, then confirmed
REPLICATION = p.loop(lambda again: p.send(Replicate) >> p.recv(Replicated) >> again)
KEYS = (0, 1)


class Primary(Component):
    client = Port(WRITER.dual())
    backup = Port(REPLICATION)
    value: int = 0
    busy: bool = False                # a write is replicating (one at a time)

    @on(Put, port="client", when=lambda self, m: not self.busy)     # one write at a time
    def put(self, m):
        self.value = m.value
        self.busy = True
        self.backup.send(Replicate(m.value))

    @on(Replicated, port="backup")
    def replicated(self, m):
        if self.busy:
            self.client.send(PutAck(0, m.value))
            self.busy = False


class Backup(Component):
    primary = Port(REPLICATION.dual())
    value: int = 0

    @on(Replicate)
    def replicate(self, m):
        self.value = m.value
        self.primary.send(Replicated(m.value))


def kv_shard():                    # not `-> System`: not a system to check on its own
    """One shard: a primary, its backup; the primary's client port is the shard's.  (Alone,
    nothing is connected to that port, so it is no system of this spec: without a `-> System`
    annotation, `assay check` and `pytest --assay` do not take it for one.)"""
    s = System("kv_shard", network="fifo")
    primary = s.add("primary", Primary)
    s.connect(primary.backup, s.add("backup", Backup).primary)
    s.export("client", primary.client)

    @s.always
    def in_sync(g):                   # between writes, the backup holds the primary's value
        return g["primary"].busy or g["backup"].value == g["primary"].value

    return s


class Router(Component):
    """Sends each key's writes to its shard, and the acknowledgements back."""
    client = Port(WRITER.dual())
    shard0 = Port(WRITER)
    shard1 = Port(WRITER)
    key: int = 0                      # the key of the write in progress (one at a time)

    @on(Put)
    def put(self, m):
        self.key = m.key
        if m.key == 0:
            self.shard0.send(Put(m.key, m.value))
        else:
            self.shard1.send(Put(m.key, m.value))

    @on(PutAck)
    def ack(self, m):
        self.client.send(PutAck(self.key, m.value))


class Client(Component):
    kv = Port(WRITER)
    written: int = 0                  # values are 1, 2, ...: each write a new one
    writes: int = 2
    waiting: bool = False
    acked0: int = 0                   # the last acknowledged value of each key
    acked1: int = 0

    @action(over=KEYS, when=lambda self, key: not self.waiting and self.written < self.writes)
    def put(self, key):
        self.waiting = True
        self.written += 1
        self.kv.send(Put(key, self.written))

    @on(PutAck)
    def ack(self, m):
        self.waiting = False
        if m.key == 0:
            self.acked0 = m.value
        else:
            self.acked1 = m.value


def system(writes: Annotated[int, Range(1, 4)] = 2) -> System:
    s = System("kv_composite", network="fifo")
    client = s.add("client", Client, writes=writes)
    router = s.add("router", Router)
    s.connect(client.kv, router.client)
    shards = [s.add(f"shard{k}", kv_shard) for k in KEYS]
    for k, shard in zip(KEYS, shards):
        s.connect(getattr(router, f"shard{k}"), shard.client)

    @s.always
    def acknowledged_writes_are_on_a_backup(g):
        c = g["client"]
        return g["shard0.backup"].value >= c.acked0 and g["shard1.backup"].value >= c.acked1

    @s.terminal
    def all_written(g):
        return g["client"].written == writes and not g["client"].waiting

    return s
