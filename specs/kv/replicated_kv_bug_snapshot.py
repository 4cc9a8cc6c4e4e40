"""specs/kv/replicated_kv.py with one bug: a restarted backup installs the primary's snapshot
wholesale instead of keeping, key by key, the newer entry.

The snapshot answers the backup's `Sync`; a write the primary takes after answering reaches
the backup first (the network is unordered), is acknowledged to the client, and the late
snapshot then puts the backup back to the older version while marking it synced: an
acknowledged write is gone from a synced backup (`acknowledged_writes_are_durable`).  Without
faults no backup restarts and the spec holds; one crash finds it:

    assay check specs/kv/replicated_kv_bug_snapshot.py
    assay check specs/kv/replicated_kv_bug_snapshot.py --faults crash=1
"""
from typing import Annotated

from messages import (
    KEYS,
    MAX_VERSION,
    Entry,
    Get,
    Got,
    Put,
    PutAck,
    Replicate,
    Replicated,
    Snapshot,
    Sync,
    Version,
    fresh_table,
)

from assay import (
    Component,
    Map,
    Peer,
    Port,
    Range,
    System,
    action,
    initially,
    invariant,
    on,
    on_restart,
    one_of,
    persistent,
    requires,
)

# what a client guarantees of the keys it sends, and the primary assumes
KEY_CONTRACT = {Put: lambda m: m.key in KEYS, Get: lambda m: m.key in KEYS}


def writer(value: int) -> str:
    """The client a value belongs to: c1 writes 10, 11, ...; c2 writes 20, 21, ..."""
    return f"c{value // 10}"


class Client(Component):
    primary = Port(where=KEY_CONTRACT)
    key: int = persistent(one_of(*KEYS))
    value: int = persistent(one_of(10, 20, 30))                # the next value it writes
    initially(lambda self: writer(self.value) == self.name)    # a value names its writer
    invariant(lambda self: self.key in KEYS)                    # verify needs it for the contract
    acked: Version = persistent(0)    # the version of its last acknowledged write
    done: bool = persistent(False)    # refused: the key's versions are used up
    pending: bool = False             # forgotten in a crash: it then puts its value again
    reading: bool = False

    def idle(self) -> bool:           # one request at a time, until refused
        return not self.pending and not self.reading and not self.done

    @action(when=lambda self: self.idle())
    def put(self):
        self.pending = True
        self.primary.send(Put(self.key, self.value))

    @action(when=lambda self: self.idle())
    def read(self):
        self.reading = True
        self.primary.send(Get(self.key, since=self.acked))

    @on(Got)
    @requires(lambda self, m: m.entry.version >= m.since)     # it reads its own writes
    def got(self, m):
        self.reading = False

    @on(PutAck)
    @requires(lambda self, m: m.key == self.key)       # the key it wrote, not another
    def ack(self, m):
        self.pending = False
        if m.ok:
            self.acked = max(self.acked, m.version)
            self.value += 1
        else:
            self.done = True


class Replica(Component):
    """What the primary and a backup share: a table, and how to read and update it."""
    table: Map[int, Entry] = fresh_table()

    def version(self, key: int) -> int:
        return self.table[key].version

    def store(self, key: int, entry: Entry) -> None:
        """Keep `entry` for `key` if it is newer than what this replica holds."""
        if entry.version > self.version(key):
            self.table = self.table.set(key, entry)


class Primary(Replica):
    clients = Port(many=True, where=KEY_CONTRACT)
    backups = Port(many=True)
    table: Map[int, Entry] = persistent(fresh_table())      # on disk, as all its state is
    client: Peer | None = persistent(None)      # whose write is replicating (one at a time)
    stored: Map[Peer, bool] = persistent(Map())     # backup -> whether it stored that write

    @on(Put, when=lambda self, m: self.client is None)      # a later put waits its turn
    def put(self, m):
        old = self.table[m.key]
        if old.version == MAX_VERSION:
            self.clients.send(PutAck(m.key, old.version, ok=False), to=m.sender)
            return
        new = old.replace(value=m.value, version=old.version + 1)
        self.table = self.table.set(m.key, new)
        self.client = m.sender
        self.stored = Map.fromkeys(self.backups.peers, False)
        self.backups.broadcast(Replicate(m.key, new))

    @on(Replicated, fair="weak")
    def replicated(self, m):
        self.stored = self.stored.set(m.sender, True)
        if self.client is not None and all(self.stored.values()):    # on every backup
            self.clients.send(PutAck(m.key, m.version), to=self.client)
            self.client = None

    @on(Get)
    def get(self, m):
        self.clients.send(Got(m.key, self.table[m.key], m.since), to=m.sender)

    @on(Sync, fair="weak")
    def sync(self, m):
        self.backups.send(Snapshot(self.table, m.boot), to=m.sender)


class Backup(Replica):
    primary = Port()
    boots: int = persistent(0)
    synced: bool = True               # every replica starts with the same (empty) table

    @on(Replicate)
    def replicate(self, m):
        self.store(m.key, m.entry)
        self.primary.send(Replicated(m.key, m.entry.version))

    @on_restart
    def resync(self):                 # the table is gone: ask the primary for its own
        self.boots += 1
        self.synced = False
        self.primary.send(Sync(self.boots))

    @on(Snapshot)
    def snapshot(self, m):
        if m.sender != self.primary.peer or m.boot != self.boots:
            return                    # not its primary's answer to its latest request
        self.table = m.table          # BUG: a write that overtook the snapshot is undone
        self.synced = True


def settled(g) -> bool:
    """No write in progress, and every backup holds the primary's table."""
    p = g["primary"]
    return p.client is None and all(b.table == p.table for b in g.instances(Backup))


def system(clients: Annotated[int, Range(1, 3)] = 2, backups: Annotated[int, Range(1, 3)] = 2,
           bound: Annotated[int, Range(0, MAX_VERSION)] = 1) -> System:
    s = System("replicated_kv")
    primary = s.add("primary", Primary)
    for i in range(1, backups + 1):
        s.connect(primary.backups, s.add(f"b{i}", Backup).primary)
    for i in range(1, clients + 1):
        s.connect(s.add(f"c{i}", Client).primary, primary.clients)
    s.fair("weak", Backup)

    @s.always
    def backups_never_ahead(g):       # and hold the primary's entry for a version they share
        p = g["primary"]
        return all(b.table[k].version < p.table[k].version or b.table[k] == p.table[k]
                   for b in g.instances(Backup) for k in KEYS)

    @s.always
    def acknowledged_writes_are_durable(g):
        down = g.crashed()
        holders = [g["primary"]] + [b for b in g.instances(Backup)
                                    if b.synced and b.name not in down]
        return all(r.table[c.key].version >= c.acked
                   for c in g.instances(Client) for r in holders)

    @s.always_eventually
    def settles(g):                   # unless an instance is down (it may stay down)
        return bool(g.crashed()) or settled(g)

    @s.constraint
    def versions_bounded(g):          # cut beyond `bound`, where the store has settled
        top = max(e.version for e in g["primary"].table.values())
        return top <= bound or not settled(g)

    @s.terminal
    def all_refused(g):
        return all(c.done for c in g.instances(Client)) and settled(g)

    return s

# `pytest --assay specs/` (docs/API.md): one crash loses an acknowledged write
ASSAY_CHECK = {"faults": "crash=1"}
ASSAY_EXPECT = {"verdict": "violation", "property": "acknowledged_writes_are_durable"}
