"""The alternating-bit protocol WITHOUT its sequence bit: a bug.

The twin of specs/alternating_bit.py; only Receiver.data differs: it delivers every copy it
gets.  A duplicated (or retransmitted) value is delivered twice:

    assay check specs/alternating_bit_bug_no_seq.py --faults dup=1
    assay simulate specs/alternating_bit_bug_no_seq.py --faults dup=0.1
"""
from assay import Component, Message, Port, System, action, on


class Data(Message):
    bit: bool
    value: int


class Ack(Message):
    bit: bool


class Timeout(Message): ...


class Sender(Component):
    out = Port()
    count: int = 2                # how many values to send: 0, 1, ...
    retries: int = 2              # retransmissions allowed per value
    next: int = 0                 # the value being sent
    bit: bool = False
    sending: bool = False
    left: int = 0                 # retransmissions left for the current value

    @action(when=lambda self: not self.sending and self.next < self.count)
    def send_next(self):
        self.sending = True
        self.left = self.retries
        self.out.send(Data(self.bit, self.next))
        self.after(5, Timeout())

    @on(Timeout)
    def timeout(self, m):
        if self.sending and self.left > 0:
            self.left -= 1
            self.out.send(Data(self.bit, self.next))
            self.after(5, Timeout())

    @on(Ack)
    def ack(self, m):
        if self.sending and m.bit == self.bit:
            self.sending = False
            self.bit = not self.bit
            self.next += 1
            self.cancel(Timeout)


class Receiver(Component):
    inp = Port()
    expected: bool = False
    delivered: tuple[int, ...] = ()

    @on(Data)
    def data(self, m):
        self.delivered = self.delivered + (m.value,)      # BUG: no check of the bit
        self.expected = not self.expected
        self.inp.send(Ack(m.bit))


def system(count: int = 2, retries: int = 2) -> System:
    s = System("alternating_bit_bug_no_seq", network="fifo")
    sender = s.add("sender", Sender, count=count, retries=retries)
    s.connect(sender.out, s.add("receiver", Receiver).inp)

    @s.always
    def in_order_once(g):                 # what was delivered is a prefix of 0, 1, 2, ...
        d = g["receiver"].delivered
        return d == tuple(range(len(d)))

    @s.terminal
    def stopped(g):              # all sent, or the sender gave up after its last retry
        sender = g["sender"]
        return sender.next == count or (sender.sending and sender.left == 0)

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "in_order_once"}
