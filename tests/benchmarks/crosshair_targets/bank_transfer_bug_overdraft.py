"""specs/bank_transfer_bug_overdraft.py's `Account` handlers as plain Python with PEP 316
contracts, for CrossHair (`crosshair check --analysis_kind=PEP316`).

The twin of bank_transfer.py in this folder; only the transfer's precondition (the action's
guard) differs: the balance is positive, not at least the amount.

The component's invariant `balance >= 0` becomes a class invariant (`inv:`), which CrossHair
assumes on entry to each method and checks on exit; the action's guard and the handler's
`@requires` become `pre:`, its `@ensures` a `post:` over `__old__`.  The action's domain
`over=[1, 2, 3]` is a precondition.  The sent `Transfer(amount)` is the return value.  The free
functions are the same steps on plain ints.
"""


class Account:
    """
    inv: self.balance >= 0
    """

    def __init__(self, balance: int):
        """
        pre: balance >= 0
        """
        self.balance = balance

    def transfer(self, amount: int) -> int:
        """
        pre: amount in (1, 2, 3)
        pre: self.balance > 0            # BUG: not >= amount
        post: self.balance == __old__.self.balance - amount
        post: __return__ == amount
        """
        self.balance -= amount
        return amount                  # the Transfer(amount) sent on `out`

    def deposit(self, amount: int) -> None:
        """
        pre: amount > 0
        post: self.balance == __old__.self.balance + amount
        """
        self.balance += amount


def transfer(balance: int, amount: int) -> int:
    """The new balance after a transfer.

    pre: balance >= 0
    pre: amount in (1, 2, 3)
    pre: balance > 0                 # BUG: not >= amount
    post: __return__ >= 0
    post: __return__ == balance - amount
    """
    return balance - amount


def deposit(balance: int, amount: int) -> int:
    """The new balance after a deposit.

    pre: balance >= 0
    pre: amount > 0
    post: __return__ >= 0
    post: __return__ == balance + amount
    """
    return balance + amount
