"""Bank transfers with an overdraft bug: a transfer only checks that the balance is positive.

The twin of specs/bank_transfer.py; only the guard of Account.transfer differs.  `assay verify`
refutes the invariant `balance >= 0` for `transfer` with concrete values (balance 1, amount 2)
and suggests the missing precondition; `assay check` finds an overdraft:

    assay verify specs/bank_transfer_bug_overdraft.py
    assay check specs/bank_transfer_bug_overdraft.py
"""
from assay import Component, Message, Port, System, action, ensures, invariant, on, requires


class Transfer(Message):
    amount: int


class Account(Component):
    out = Port()                          # to the next account
    inp = Port(many=True)                 # from the previous one
    balance: int = 4

    invariant(lambda self: self.balance >= 0)

    @action(over=[1, 2, 3], when=lambda self, amount: self.balance > 0)   # BUG: not >= amount
    @ensures(lambda old, self, amount: self.balance == old.balance - amount)
    def transfer(self, amount):
        self.balance -= amount
        self.out.send(Transfer(amount))

    @on(Transfer)
    @requires(lambda self, m: m.amount > 0)
    @ensures(lambda old, self, m: self.balance == old.balance + m.amount)
    def deposit(self, m):
        self.balance += m.amount


def system(accounts: int = 2, balance: int = 4) -> System:
    s = System("bank_transfer_bug_overdraft", network="unordered")
    names = [f"acct{i}" for i in range(accounts)]
    refs = [s.add(n, Account, balance=balance) for n in names]
    for i, a in enumerate(refs):
        s.connect(a.out, refs[(i + 1) % accounts].inp)

    @s.always
    def money_is_conserved(g):
        held = sum(a.balance for a in g.instances(Account))
        moving = sum(e.message.amount for e in g.in_flight(Transfer))
        return held + moving == accounts * balance

    @s.always
    def no_overdraft(g):
        return all(a.balance >= 0 for a in g.instances(Account))

    s.terminal(lambda g: True)            # an idle bank is fine
    return s

# `pytest --assay specs/` (docs/API.md): the bug it shows
ASSAY_EXPECT = {"verdict": "violation", "kind": "invariant"}
