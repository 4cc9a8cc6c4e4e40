"""BUG: Lamport's mutual exclusion where a process ignores the tie-break between equal clocks.

The twin of specs/tla_lamport_mutex.py; only `LamportMutex.beats` differs: a request beats
another of the same clock whatever the process ids (`<=` instead of `<`, and no `p < q`).
Two processes that request with the same clock, and each hear of the other's request, both
enter their critical sections.  `assay check` finds the shortest counterexample:

    assay check specs/tla_lamport_mutex_bug_ties.py
"""
from assay import Component, Message, System, action


class Req(Message):        # [type |-> "req", clock |-> c]
    clock: int


class Ack(Message): ...    # [type |-> "ack", clock |-> 0]
class Rel(Message): ...    # [type |-> "rel", clock |-> 0]


def processes(s):
    return range(len(s.clock))


def pairs(s):
    """(p, q) for every two distinct processes: p receives from q."""
    n = len(s.clock)
    return [(p, q) for p in range(n) for q in range(n) if p != q]


def put(t, i, v):
    """The tuple `t` with item i replaced by v (TLA+'s [t EXCEPT ![i] = v])."""
    return t[:i] + (v,) + t[i + 1:]


def head_is(s, pq, kind):
    """Whether the channel from q to p holds a message, the oldest of type `kind`."""
    p, q = pq
    channel = s.network[q][p]
    return bool(channel) and type(channel[0]) is kind


class LamportMutex(Component):
    clock: tuple[int, ...] = ()
    req: tuple[tuple[int, ...], ...] = ()
    ack: tuple[frozenset[int], ...] = ()
    network: tuple[tuple[tuple[Message, ...], ...], ...] = ()
    crit: frozenset[int] = frozenset()
    max_clock: int = 0                      # the model's bound on every clock (a constant)

    def beats(self, p, q):
        """p's request has priority over q's, as far as p knows (ties: the smaller id)."""
        mine, theirs = self.req[p][p], self.req[p][q]
        return theirs == 0 or mine <= theirs          # BUG: a tie is no tie-break

    def send(self, p, q, m):
        self.network = put(self.network, p, put(self.network[p], q, self.network[p][q] + (m,)))

    def pop(self, p, q):
        """Remove the oldest message of the channel from q to p."""
        self.network = put(self.network, q, put(self.network[q], p, self.network[q][p][1:]))

    def broadcast(self, p, m):
        for q in processes(self):
            if q != p:
                self.send(p, q, m)

    @action(over=processes, when=lambda self, p: self.req[p][p] == 0)
    def request(self, p):
        self.req = put(self.req, p, put(self.req[p], p, self.clock[p]))
        self.broadcast(p, Req(self.clock[p]))
        self.ack = put(self.ack, p, frozenset({p}))

    @action(over=pairs, when=lambda self, pq: head_is(self, pq, Req)
            and max(self.network[pq[1]][pq[0]][0].clock, self.clock[pq[0]]) < self.max_clock)
    def receive_request(self, pq):
        p, q = pq
        c = self.network[q][p][0].clock
        self.req = put(self.req, p, put(self.req[p], q, c))
        self.clock = put(self.clock, p, max(c, self.clock[p]) + 1)
        self.pop(p, q)
        self.send(p, q, Ack())

    @action(over=pairs, when=lambda self, pq: head_is(self, pq, Ack))
    def receive_ack(self, pq):
        p, q = pq
        self.ack = put(self.ack, p, self.ack[p] | {q})
        self.pop(p, q)

    @action(over=processes, when=lambda self, p: len(self.ack[p]) == len(self.clock)
            and all(self.beats(p, q) for q in processes(self) if q != p))
    def enter(self, p):
        self.crit = self.crit | {p}

    @action(over=processes, when=lambda self, p: p in self.crit)
    def exit(self, p):
        self.crit = self.crit - {p}
        self.broadcast(p, Rel())
        self.req = put(self.req, p, put(self.req[p], p, 0))
        self.ack = put(self.ack, p, frozenset())

    @action(over=pairs, when=lambda self, pq: head_is(self, pq, Rel))
    def receive_release(self, pq):
        p, q = pq
        self.req = put(self.req, p, put(self.req[p], q, 0))
        self.pop(p, q)


def system(n: int = 2, max_clock: int = 3) -> System:
    s = System("tla_lamport_mutex_bug_ties")
    s.add("mutex", LamportMutex, clock=(1,) * n, req=((0,) * n,) * n,
          ack=(frozenset(),) * n, network=(((),) * n,) * n, crit=frozenset(),
          max_clock=max_clock)

    @s.always
    def mutex(g):                    # Mutex: \A p, q \in crit : p = q
        return len(g["mutex"].crit) <= 1

    @s.always
    def bounded_network(g):          # BoundedNetwork: every channel holds at most 3 messages
        return all(len(c) <= 3 for row in g["mutex"].network for c in row)

    @s.terminal
    def at_the_clock_bound(g):       # (asked only where nothing is enabled) a request waits
        m = g["mutex"]               # only because receiving it would pass max_clock
        return any(head_is(m, pq, Req) for pq in pairs(m))

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "mutex"}
