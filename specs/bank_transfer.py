"""Bank transfers around a ring of accounts.

Each account may send part of its balance to the next account; the money travels as a
Transfer message and is deposited on arrival.  Every account's balance stays >= 0 (an
invariant, proved per handler by `assay verify`), and no money is created or lost: the
balances plus the money in flight always add up to the initial total (a system property,
model checked by `assay check`).

    assay verify specs/bank_transfer.py
    assay check specs/bank_transfer.py --param accounts=3
"""
from assay import Component, Message, Port, System, action, ensures, invariant, on, requires


class Transfer(Message):
    amount: int


class Account(Component):
    out = Port()                          # to the next account
    inp = Port(many=True)                 # from the previous one
    balance: int = 4

    invariant(lambda self: self.balance >= 0)

    @action(over=[1, 2, 3], when=lambda self, amount: self.balance >= amount)
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
    s = System("bank_transfer", network="unordered")
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
