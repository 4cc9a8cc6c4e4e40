"""The alternating-bit protocol over lossy FIFO channels of capacity 1 — the classic Promela
model (Holzmann, *The SPIN Model Checker*, ch. 14), with the channels' loss and capacity as
properties of the network rather than as processes or fault budgets.

The sender retransmits its current value whenever it likes (an action, not a timer: SPIN's
`timeout` or a nondeterministic resend), and moves on only when an acknowledgement with the
current bit comes back.  Each direction holds at most one message: a resend to a full channel
waits (`full="block"`), and the network may lose any message at any time (`lossy=True`).  The
capacity is what makes the state space finite — unbounded retransmissions over unbounded
channels would not be.

    assay check specs/abp_lossy.py
    assay check specs/abp_lossy.py --param full=drop
    assay simulate specs/abp_lossy.py --faults lose=0.3

Safety: the receiver delivers exactly the values sent, in order, each once, and the sender
never moves past a value the receiver has not delivered.  Liveness: under strong fairness
(a message the channel offers again and again is delivered at last — the usual assumption
for a lossy channel) every value is delivered.
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
        if m.bit == self.bit and self.next < self.count:
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
    s = System("abp_lossy", network="fifo", fairness="strong")
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
