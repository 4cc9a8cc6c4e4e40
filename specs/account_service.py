"""An account service and its client: deposits and withdrawals, each answered.

The client is the outside world.  `s.external(client)` says so: in the model it is an ordinary
component whose actions are what a user may do (deposit or withdraw 1..5, one request at a
time, `limit` requests in all), so `check` and `verify` cover every such user.  At run time
nothing fires those actions on its own; a program drives the client through
`assay.runtime.connect`, and a request the model's client could not make is refused there —
what was checked is what the deployment can see.

    assay check specs/account_service.py
    assay check specs/account_service.py --faults crash=2     # either side may crash
    assay verify specs/account_service.py

and from Python (see the README's "Client API"):

    async with assay.runtime.connect("specs/account_service.py") as c:
        reply = await c.request("bank", Deposit(5))       # Done(balance=5)
"""
from assay import (
    Component,
    Message,
    Port,
    System,
    action,
    ensures,
    invariant,
    on,
    persistent,
    requires,
)
from assay import protocol as p


class Deposit(Message):
    amount: int


class Withdraw(Message):
    amount: int


class Done(Message):
    balance: int


class Refused(Message):
    balance: int


# one request at a time, each answered; a withdrawal may be refused
CLIENT_SIDE = p.loop(lambda again: (p.send(Deposit) >> p.recv(Done)
                                    | p.send(Withdraw) >> (p.recv(Done) | p.recv(Refused)))
                     >> again)

AMOUNTS = [1, 2, 3, 4, 5]


class Client(Component):
    # persistent, like its fields: a client program that stops and connects again (a
    # restart of this instance) goes on where it was — still waiting for an answer, if it was
    bank = Port(CLIENT_SIDE, persistent=True)
    waiting: bool = persistent(False)
    requests: int = persistent(0)
    limit: int = 3
    balance: int = persistent(0)          # the balance the bank last reported

    @action(over=AMOUNTS, when=lambda self, amount: not self.waiting
            and self.requests < self.limit)
    def deposit(self, amount):
        self.waiting = True
        self.requests += 1
        self.bank.send(Deposit(amount))

    @action(over=AMOUNTS, when=lambda self, amount: not self.waiting
            and self.requests < self.limit)
    def withdraw(self, amount):
        self.waiting = True
        self.requests += 1
        self.bank.send(Withdraw(amount))

    @on(Done)
    @requires(lambda self, m: m.balance >= 0)
    def done(self, m):
        self.waiting = False
        self.balance = m.balance

    @on(Refused)
    def refused(self, m):
        self.waiting = False
        self.balance = m.balance


class Bank(Component):
    clients = Port(CLIENT_SIDE.dual(), many=True)
    balance: int = persistent(0)          # survives a crash: saved before the reply leaves

    invariant(lambda self: self.balance >= 0)

    @on(Deposit)
    @requires(lambda self, m: m.amount > 0)
    @ensures(lambda old, self, m: self.balance == old.balance + m.amount)
    def deposit(self, m):
        self.balance += m.amount
        self.clients.send(Done(self.balance), to=m.sender)

    @on(Withdraw)
    @requires(lambda self, m: m.amount > 0)
    @ensures(lambda old, self, m: self.balance <= old.balance)
    def withdraw(self, m):
        if m.amount <= self.balance:
            self.balance -= m.amount
            self.clients.send(Done(self.balance), to=m.sender)
        else:
            self.clients.send(Refused(self.balance), to=m.sender)


def system(limit: int = 3) -> System:
    s = System("account_service")
    bank = s.add("bank", Bank)
    client = s.add("client", Client, limit=limit)
    s.connect(client.bank, bank.clients)
    s.external(client)

    @s.always
    def client_sees_the_balance(g):
        # between requests, the client's last answer is the bank's balance
        return g["client"].waiting or g["client"].balance == g["bank"].balance

    @s.terminal
    def idle(g):
        return not g["client"].waiting

    return s
