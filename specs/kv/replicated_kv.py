"""A replicated key-value store: a primary and its backups, with synchronous replication.

A client puts a value to a key; the primary stores it as the key's next version, copies it to
every backup (`Replicate`) and acknowledges the client once every backup has stored it
(`Replicated` from each).  The primary takes one write at a time, as a primary with one
replication log does (a later put waits in the network until it is free), and refuses a put
once the key's versions are used up (`PutAck(..., ok=False)`: a version is `Range`-typed, see
messages.py, the sibling module that the spec and its twin import).  Between writes a client
may read its key from the primary, asking for at least the version it last had acknowledged
(read-your-writes, a `@requires` on the reply).  Each client writes its key again and again,
a new value each time, until the primary refuses.

The primary keeps its state on disk (`persistent`).  A backup keeps its table in memory: a
crash loses it, and on restart (`@on_restart`) the backup asks the primary for a snapshot,
counting its boots (a `persistent` field) so that it takes only the answer to its latest
request; until the snapshot arrives it is not `synced`.  A client remembers its key, its next
value and what was acknowledged, but forgets a request in flight: after a restart it may put
the same value again (at-least-once writes).

Safety (`@s.always`): a backup is never ahead of the primary, and holds the primary's entry
for a version they share; an acknowledged write is on the primary and on every synced backup.
Liveness (`@s.always_eventually`): again and again the store settles — no write in progress,
every backup holding the primary's table — unless an instance is down (a crashed instance may
stay down).  Without fairness it fails (a client reading forever while a `Replicate` waits);
it holds under the fairness declared: deliveries to backups (`s.fair("weak", Backup)`) and the
primary's handling of acknowledgements and sync requests (`@on(..., fair="weak")`).  Clients
and their requests are not fair: a client may stop, a put may wait forever.

Bounding the search (`@s.constraint`, TLC's CONSTRAINT): a key has MAX_VERSION versions, and
every interleaving of clients writing them all, with reads between, is far more states than
the protocol's races need (a write overtaking a snapshot needs one write after a restart).
So `check` explores up to version `bound` (1 by default), then until the store next settles:
a behaviour is cut there, never in the middle of a write, so `settles` is still decided truly
on what is explored.  `simulate` and `run` ignore the constraint and go on until the primary
refuses; `-p bound=4` has `check` explore everything.

Its twin, specs/kv/replicated_kv_bug_snapshot.py, has a backup that installs a snapshot
wholesale: a snapshot taken before a write, delivered after it, loses an acknowledged write.

    assay check specs/kv/replicated_kv.py
    assay check specs/kv/replicated_kv.py --faults crash=1
    assay check specs/kv/replicated_kv_bug_snapshot.py --faults crash=1
    assay simulate specs/kv/replicated_kv.py --runs 200
    assay simulate specs/kv/replicated_kv.py --runs 200 --faults crash=0.01,restart=0.3
    assay run specs/kv/replicated_kv.py
    assay verify specs/kv/replicated_kv.py
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
        for key, entry in m.table.items():
            self.store(key, entry)    # a write may have overtaken the snapshot: keep it
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
