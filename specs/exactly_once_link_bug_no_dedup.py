"""Exactly-once delivery over a lossy, duplicating link, with a Dedup that does not dedup: a
bug.

The twin of specs/exactly_once_link.py; only Dedup.incoming differs: it passes on every copy
it gets.  A resend whose original was not lost (or a duplicate the network made) reaches the
consumer twice.

    assay check specs/exactly_once_link_bug_no_dedup.py
"""
from assay import Component, Interceptor, Message, Port, System, action, on, protocol


class Item(Message):
    n: int


class Ack(Message):               # between the interceptors only
    seq: int


class Resend(Message):            # Retry's timer
    pass


RESEND = 10                       # time units between resends (assay run: 0.1 s)


ITEMS = protocol.send(Item).many()         # the producer's side: items, one after another


class Producer(Component):
    out = Port(protocol=ITEMS)
    count: int = 2
    sent: int = 0

    @action(when=lambda self: self.sent < self.count)
    def produce(self):
        self.sent += 1
        self.out.send(Item(self.sent))


class Consumer(Component):
    inp = Port(protocol=ITEMS.dual())
    got: tuple[int, ...] = ()

    @on(Item)
    def item(self, m):
        self.got = (*self.got, m.n)


class Retry(Interceptor):
    """At the producer's side: number, keep, resend until acknowledged."""

    next_seq: int = 0
    unacked: tuple[tuple[int, Item], ...] = ()

    @on(Item, port="left")
    def outgoing(self, m):
        self.unacked = (*self.unacked, (self.next_seq, m))
        self.forward(m, meta={"seq": self.next_seq})
        self.next_seq += 1
        self.cancel(Resend)
        self.after(RESEND, Resend())

    @on(Resend)
    def resend(self, m):          # the timer: the link may have lost it
        if self.unacked:
            seq, item = self.unacked[0]
            self.forward(item, meta={"seq": seq}, to="right")
            self.after(RESEND, Resend())

    @on(Ack, port="right")
    def acked(self, m):
        self.unacked = tuple(x for x in self.unacked if x[0] != m.seq)


class Dedup(Interceptor):
    """At the consumer's side: acknowledge every copy, pass on the first of each."""

    seen: frozenset[int] = frozenset()

    @on(Item, port="left")
    def incoming(self, m):
        seq = self.meta(m)["seq"]
        self.seen = self.seen | {seq}
        self.forward(m, meta={})          # BUG: also a copy of what it passed on before
        self.forward(Ack(seq), to="left")


def system(count: int = 2):
    s = System("exactly_once_link_bug_no_dedup", network="unordered", fairness="strong")
    p = s.add("producer", Producer, count=count)
    c = s.add("consumer", Consumer)
    s.connect(p.out, c.inp, via=[s.add("retry", Retry), s.add("dedup", Dedup)],
              lossy=True, capacity=1, full="drop")

    @s.always
    def exactly_once(g):
        got = g["consumer"].got
        return len(set(got)) == len(got) and all(1 <= n <= g["producer"].sent for n in got)

    @s.terminal
    def all_delivered(g):
        return sorted(g["consumer"].got) == list(range(1, g["producer"].count + 1))

    s.eventually(all_delivered)

    return s


# `pytest --assay specs/`: the bug this twin shows
ASSAY_EXPECT = {"verdict": "violation", "property": "exactly_once"}
