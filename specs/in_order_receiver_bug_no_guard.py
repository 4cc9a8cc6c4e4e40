"""BUG: the in-order receiver without its receive guard takes whatever arrives first.

The twin of specs/in_order_receiver.py: the network reorders the values and the receiver
logs them as they come, so `in_order` fails.

    assay check specs/in_order_receiver.py -p count=4
    assay check specs/in_order_receiver_bug_no_guard.py
    assay run specs/in_order_receiver.py
"""
from assay import Component, Message, Port, System, action, on


class Data(Message):
    seq: int


class Sender(Component):
    out = Port()
    count: int = 3
    sent: bool = False

    @action(when=lambda self: not self.sent)
    def send_all(self):
        self.sent = True
        for i in range(self.count):
            self.out.send(Data(i))


class Receiver(Component):
    inp = Port()
    next: int = 0
    log: tuple[int, ...] = ()

    @on(Data)                      # BUG: no receive guard
    def take(self, m):
        self.log = self.log + (m.seq,)
        self.next += 1


def system(count: int = 3) -> System:
    s = System("in_order_receiver_bug_no_guard", network="unordered", fairness="weak")
    s.connect(s.add("sender", Sender, count=count).out, s.add("receiver", Receiver).inp)

    @s.always
    def in_order(g):
        log = g["receiver"].log
        return log == tuple(range(len(log)))

    @s.eventually
    def all_received(g):
        return len(g["receiver"].log) == count

    @s.terminal
    def done(g):
        return len(g["receiver"].log) == count

    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "property": "in_order"}
