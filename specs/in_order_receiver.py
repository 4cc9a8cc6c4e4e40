"""A receiver that takes numbered messages in order from an unordered network, deferring the
early ones with a receive guard.

The sender puts all its values in flight at once; the network may deliver them in any order.
The receiver's handler is guarded — `@on(Data, when=lambda self, m: m.seq == self.next)` — so
a message that arrives early stays in the network (deferred, as P's `defer`) until its turn.
Safety: the receiver's log is 0, 1, 2, ... in order.  Liveness: eventually every value is
received.  Its twin, specs/in_order_receiver_bug_no_guard.py, takes whatever arrives.

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

    @on(Data, when=lambda self, m: m.seq == self.next)
    def take(self, m):
        self.log = self.log + (m.seq,)
        self.next += 1


def system(count: int = 3) -> System:
    s = System("in_order_receiver", network="unordered", fairness="weak")
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
