"""The alternating-bit protocol over lossy FIFO channels, with a sender that takes ANY
acknowledgement for its current value: a bug.

The twin of specs/abp_lossy.py; only Sender.ack differs: it does not compare the
acknowledgement's bit with its own.  A resent value's second acknowledgement, still in flight
when the sender has moved on, then acknowledges the next value, which the receiver never got:
the sender runs ahead of the receiver.

    assay check specs/abp_lossy_bug_any_ack.py
"""
from assay import Component, Message, Port, System, action, on


class Data(Message):
    bit: bool
    value: int


class Ack(Message):
    bit: bool


class Sender(Component):
    out = Port()
    count: int = 2                # how many values to send: 0, 1, ...
    next: int = 0                 # the value being sent
    bit: bool = False

    @action(when=lambda self: self.next < self.count)
    def transmit(self):           # send, or send again: the channel may have lost it
        self.out.send(Data(self.bit, self.next))

    @on(Ack)
    def ack(self, m):
        if self.next < self.count:                  # BUG: m.bit is not compared
            self.bit = not self.bit
            self.next += 1


class Receiver(Component):
    inp = Port()
    expected: bool = False
    delivered: tuple[int, ...] = ()

    @on(Data)
    def data(self, m):
        if m.bit == self.expected:
            self.delivered = self.delivered + (m.value,)
            self.expected = not self.expected
        self.inp.send(Ack(m.bit))


def system(count: int = 2, capacity: int = 1, full: str = "block") -> System:
    s = System("abp_lossy_bug_any_ack", network="fifo", fairness="strong")
    sender = s.add("sender", Sender, count=count)
    s.connect(sender.out, s.add("receiver", Receiver).inp, capacity=capacity, full=full,
              lossy=True)

    @s.always
    def in_order_once(g):         # what was delivered is a prefix of 0, 1, 2, ...
        d = g["receiver"].delivered
        return d == tuple(range(len(d)))

    @s.always
    def sender_behind_receiver(g):    # the sender moves on only past delivered values
        n, d = g["sender"].next, len(g["receiver"].delivered)
        return n <= d <= n + 1

    @s.terminal
    def done(g):
        return g["sender"].next == count

    @s.eventually
    def all_delivered(g):
        return len(g["receiver"].delivered) == count

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "sender_behind_receiver"}
