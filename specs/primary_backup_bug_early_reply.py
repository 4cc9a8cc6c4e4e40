"""A primary-backup replicated log whose primary replies too early: a bug.

The twin of specs/primary_backup.py; only `Replica.reply_if_replicated` differs: the primary
acknowledges a write once *one* backup holds it, not all of them.  A view change (a false
suspicion is enough: no crash is needed) makes the other backup primary, and an acknowledged
write is lost:

    assay check specs/primary_backup_bug_early_reply.py
    assay check specs/primary_backup_bug_early_reply.py --faults crash=1
    assay simulate specs/primary_backup_bug_early_reply.py --scheduler coverage
    assay simulate specs/primary_backup_bug_early_reply.py --faults crash=0.02,restart=0.3

`simulate` finds it by coverage, or with crashes (a crashed primary answers no ping); its
uniform scheduler rarely does: a step is one tick of virtual time and the master's timer ten,
and a `Pong` seldom waits ten steps, so the master's suspicion is seldom false.
"""
from assay import (
    Component,
    Message,
    Peer,
    Port,
    System,
    action,
    ensures,
    invariant,
    on,
    on_restart,
    on_start,
    persistent,
    requires,
)
from assay import protocol as p


class Write(Message):            # client -> the primary it knows
    value: int


class WriteAck(Message):         # primary -> client: the value is on every replica of the view
    value: int


class Replicate(Message):        # primary -> backup: the primary's whole log, in its view
    view: int
    log: tuple[int, ...]


class Replicated(Message):       # backup -> primary: it holds that log
    view: int
    length: int


class Ping(Message):             # master -> primary
    view: int


class Pong(Message):             # primary -> master
    view: int


class Tick(Message):             # the master's failure-detector timer
    pass


class NewView(Message):          # master -> replicas and clients
    view: int
    primary: Peer
    backups: frozenset[Peer]


# one write at a time; a write may be acknowledged more than once (the client resends a write
# the primary already has after a crash, or to a new primary), never before it is sent
WRITER = p.loop(lambda again: p.send(Write) >> p.recv(WriteAck).many() >> again | p.end)


class Replica(Component):
    clients = Port(WRITER.dual(), many=True, persistent=True)   # resumes its write after a crash
    peers = Port(many=True)                          # the other replicas
    master = Port()
    view: int = persistent(0)
    primary: Peer = persistent(Peer("r0"))            # the primary of `view`, as it knows
    backups: frozenset[Peer] = persistent(frozenset())   # as the primary: its backups
    log: tuple[int, ...] = persistent(())
    log_view: int = persistent(0)                    # the view whose primary shipped `log`
    waiting: Peer | None = persistent(None)          # as primary: whose write is replicating
    value: int = persistent(0)                       # ... and which value
    acks: frozenset[Peer] = frozenset()              # backups holding the log (lost in a crash)

    invariant(lambda self: self.log_view <= self.view)
    invariant(lambda self: self.view >= 0)

    def is_primary(self) -> bool:
        return bool(self.primary == self.name)

    def replicate(self) -> None:
        """Ship the log to every backup of the view."""
        self.acks = frozenset()
        for b in sorted(self.backups):
            self.peers.send(Replicate(self.view, self.log), to=b)

    def reply_if_replicated(self) -> None:
        if self.waiting is not None and (self.acks or not self.backups):   # BUG: one ack
            self.clients.send(WriteAck(self.value), to=self.waiting)
            self.waiting = None

    @on(Write, port="clients",
        when=lambda self, m: self.waiting is None and self.primary == self.name)
    @requires(lambda self, m: m.value > 0)
    def write(self, m):
        if m.value not in self.log:                  # a resent write is appended once
            self.log = self.log + (m.value,)
        self.waiting = m.sender
        self.value = m.value
        self.replicate()
        self.reply_if_replicated()                   # a primary without backups: at once

    @on(Replicate, port="peers")
    @requires(lambda self, m: m.view >= 0)
    @ensures(lambda old, self, m: self.view >= old.view)
    def on_replicate(self, m):
        if m.view < self.view:
            return                                   # a deposed primary: refused
        if m.view > self.log_view or len(m.log) >= len(self.log):   # never an older log
            self.view = m.view
            self.log_view = m.view
            self.primary = m.sender
            self.log = m.log
            self.peers.send(Replicated(m.view, len(m.log)), to=m.sender)

    @on(Replicated, port="peers")
    def on_replicated(self, m):
        if m.view == self.view and self.is_primary() and m.length == len(self.log):
            self.acks = self.acks | {m.sender}
            self.reply_if_replicated()

    @on(Ping, port="master")
    def ping(self, m):
        self.master.send(Pong(m.view))

    @on(NewView, port="master")
    @ensures(lambda old, self, m: self.view >= old.view)
    def new_view(self, m):
        if m.view <= self.view:
            return
        self.view = m.view
        self.primary = m.primary
        self.backups = m.backups
        self.waiting = None                          # a deposed primary gives up its write
        if self.is_primary():
            self.log_view = m.view
            self.replicate()                         # bring the backups to its log

    @on_restart
    def resume(self):                                # the acks were lost: ask again
        if self.waiting is not None:
            self.replicate()


class Master(Component):
    replicas = Port(many=True)
    clients = Port(many=True)
    max_view: int = persistent(1)                    # configuration: kept on disk too
    view: int = persistent(0)
    primary: Peer = persistent(Peer("r0"))
    backups: frozenset[Peer] = persistent(frozenset())
    heard: bool = False                              # a Pong from the primary since the last Tick

    invariant(lambda self: 0 <= self.view <= self.max_view)
    invariant(lambda self: self.primary in self.replicas.peers)
    invariant(lambda self: self.backups <= self.replicas.peers)

    def watch(self) -> None:
        self.heard = False
        self.replicas.send(Ping(self.view), to=self.primary)
        self.after(10, Tick())

    @on_start
    def start(self):
        self.watch()

    @on_restart
    def restart(self):                               # its timer was lost in the crash
        if self.view < self.max_view:
            self.watch()

    @on(Pong, port="replicas")
    def pong(self, m):
        if m.view == self.view and m.sender == self.primary:
            self.heard = True

    @on(Tick)
    @ensures(lambda old, self, m: self.view == old.view or self.view == old.view + 1)
    def tick(self, m):
        if self.heard:
            self.watch()
        elif self.view < self.max_view and self.backups:
            self.view += 1                           # suspect the primary: the next view
            self.primary = min(self.backups)
            self.backups = self.backups - {self.primary}
            announce = NewView(self.view, self.primary, self.backups)
            self.replicas.broadcast(announce)
            self.clients.broadcast(announce)
            if self.view < self.max_view:
                self.watch()


class Client(Component):
    replicas = Port(WRITER, many=True, persistent=True)   # an answer may come after a crash
    master = Port()
    writes: int = persistent(2)                      # configuration: kept on disk too
    first: int = persistent(1)                       # the values it writes: first, first + 1, ...
    view: int = persistent(0)                        # the view it last heard of
    primary: Peer = persistent(Peer("r0"))
    acked: int = persistent(0)                       # how many writes were acknowledged
    pending: bool = False

    invariant(lambda self: 0 <= self.acked <= self.writes)
    invariant(lambda self: self.first >= 1)
    invariant(lambda self: self.primary in self.replicas.peers)

    def next(self) -> int:
        return self.first + self.acked

    @action(when=lambda self: not self.pending and self.acked < self.writes)
    def write(self):
        self.pending = True
        self.replicas.send(Write(self.next()), to=self.primary)

    @on(WriteAck, port="replicas")
    @requires(lambda self, m: m.value < self.first + self.writes)
    def ack(self, m):
        if self.pending and m.value == self.next():
            self.pending = False
            self.acked += 1

    @on(NewView, port="master")
    @requires(lambda self, m: m.primary in self.replicas.peers)
    def new_view(self, m):
        if m.view > self.view:
            self.view = m.view
            self.primary = m.primary
            if self.pending:                         # its write may be lost with the old primary
                self.replicas.send(Write(self.next()), to=self.primary)


def system(replicas: int = 3, clients: int = 1, writes: int = 2, max_view: int = 1) -> System:
    s = System("primary_backup_bug_early_reply", network="unordered", fairness="weak")
    names = [Peer(f"r{i}") for i in range(replicas)]
    backups = frozenset(names[1:])
    reps = [s.add(n, Replica, backups=backups) for n in names]
    master = s.add("master", Master, max_view=max_view, backups=backups)
    cls = [s.add(f"c{i}", Client, writes=writes, first=1 + 10 * i) for i in range(clients)]
    for i, a in enumerate(reps):
        s.connect(master.replicas, a.master)
        for b in reps[i + 1:]:
            s.connect(a.peers, b.peers)
    for c in cls:
        s.connect(master.clients, c.master)
        for r in reps:
            s.connect(c.replicas, r.clients)

    def acknowledged(c) -> range:
        return range(c.first, c.first + c.acked)

    @s.always
    def acknowledged_writes_survive(g):      # on the master's current primary, whatever views
        # changed since it was acknowledged
        log = g[g["master"].primary].log
        return all(v in log for c in g.instances(Client) for v in acknowledged(c))

    @s.always
    def logs_of_a_view_agree(g):             # logs shipped in one view: one a prefix of the other
        rs = list(g.instances(Replica))
        return all(a.log[:len(b.log)] == b.log or b.log[:len(a.log)] == a.log
                   for a in rs for b in rs if a.log_view == b.log_view)

    @s.eventually
    def every_write_acknowledged(g):         # unless an instance is down (it may stay down)
        return bool(g.crashed()) or all(c.acked == c.writes for c in g.instances(Client))

    @s.terminal
    def done(g):                             # every write acknowledged (a crash may stop that)
        return bool(g.crashed()) or all(c.acked == c.writes for c in g.instances(Client))

    return s

ASSAY_EXPECT = {"verdict": "violation", "property": "acknowledged_writes_survive"}
