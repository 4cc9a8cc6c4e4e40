"""A bank whose accounts live in an external store (a real database in `assay run`).

The `accounts` field of the Bank is an external store: in `check`, `simulate` and `verify` it
is a `Map` from account to balance in the Bank's state, and it survives a crash of the Bank;
in `assay run --store-db FILE` its contents are a table in SQLite, written in one transaction
per step.  Tellers ask the Bank for transfers; the Bank refuses one that would overdraw.  The
total is conserved and no balance goes negative (the Bank's invariants, checked on every
state by `check` and on every step by `run`).

    assay check specs/bank_store.py
    assay run specs/bank_store.py --store-db bank.sqlite --trace-out run.json
    assay replay run.json --against-store bank.sqlite
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
        if m.amount <= 0 or self.accounts.get(m.src, 0) < m.amount:
            return                                    # refused: empty, or it would overdraw
        self.accounts = self.accounts.set(m.src, self.accounts.get(m.src, 0) - m.amount)
        self.accounts = self.accounts.set(m.dst, self.accounts.get(m.dst, 0) + m.amount)


class Teller(Component):
    out = Port()
    left: int = 2                                     # transfers it may still ask for

    @action(over=TRANSFERS, when=lambda self, t: self.left > 0)
    def ask(self, t):
        self.left -= 1
        self.out.send(Transfer(*t))


def system(tellers: int = 2) -> System:
    s = System("bank_store", network="unordered")
    bank = s.add("bank", Bank)
    for i in range(tellers):
        s.connect(s.add(f"teller{i}", Teller).out, bank.inp)
    s.terminal(lambda g: True)                        # an idle bank is fine
    return s
