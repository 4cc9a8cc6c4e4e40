"""Bank in an external store with a bug: a transfer reads both balances before it writes.

The twin of specs/bank_store.py; only Bank.transfer differs.  A transfer from an account to
itself then writes the credit over the debit and creates money: `assay check` finds it in two
steps (the invariant that the total is conserved), and `assay run` stops the step that would
commit it to the database (the monitor enforces the invariant):

    assay check specs/bank_store_bug_self_transfer.py
"""
from assay import Component, Map, Message, Port, System, action, external_store, invariant, on

TOTAL = 6
TRANSFERS = (("alice", "bob", 2), ("bob", "alice", 3), ("alice", "alice", 1))


class Transfer(Message):
    src: str
    dst: str
    amount: int


class Bank(Component):
    inp = Port(many=True)
    accounts: Map[str, int] = external_store(Map({"alice": 3, "bob": 3}))

    invariant(lambda self: sum(self.accounts.values()) == TOTAL)
    invariant(lambda self: all(v >= 0 for v in self.accounts.values()))

    @on(Transfer)
    def transfer(self, m):
        src, dst = self.accounts.get(m.src, 0), self.accounts.get(m.dst, 0)
        if m.amount <= 0 or src < m.amount:
            return                                    # refused: empty, or it would overdraw
        # BUG: both balances read before either write; with src == dst the credit overwrites
        # the debit
        self.accounts = self.accounts.set(m.src, src - m.amount).set(m.dst, dst + m.amount)


class Teller(Component):
    out = Port()
    left: int = 2                                     # transfers it may still ask for

    @action(over=TRANSFERS, when=lambda self, t: self.left > 0)
    def ask(self, t):
        self.left -= 1
        self.out.send(Transfer(*t))


def system(tellers: int = 2) -> System:
    s = System("bank_store_bug_self_transfer", network="unordered")
    bank = s.add("bank", Bank)
    for i in range(tellers):
        s.connect(s.add(f"teller{i}", Teller).out, bank.inp)
    s.terminal(lambda g: True)                        # an idle bank is fine
    return s


ASSAY_EXPECT = {"verdict": "violation", "kind": "invariant"}
