"""A double-entry ledger: every money movement is a balanced set of entries; balances derive from them.

Sign convention: a positive entry debits an account, a negative one credits it. The entries of one
movement sum to zero in every currency, so the whole ledger does too. The accounts a payment uses:

- ``card_holds`` / ``authorizations``: an authorisation places a hold (debit holds, credit
  authorisations); capture or void releases the whole hold (the reverse pair);
- ``processor_receivable`` / ``merchant_revenue``: a capture books revenue (debit receivable,
  credit revenue); a refund reverses part of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from caravan_commons.money import Money
from svc_c.domain.errors import KeyReused, UnbalancedMovement


class Account(StrEnum):
    CARD_HOLDS = "card_holds"
    AUTHORIZATIONS = "authorizations"
    PROCESSOR_RECEIVABLE = "processor_receivable"
    MERCHANT_REVENUE = "merchant_revenue"


class MovementKind(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class Entry:
    account: Account
    amount: Money  # positive = debit, negative = credit


@dataclass(frozen=True, slots=True)
class Movement:
    """One money movement of one payment: its kind, the amount asked for and balanced entries.

    ``key`` is the idempotency key of the operation: one key moves money at most once.
    """

    id: str
    payment_id: str
    kind: MovementKind
    amount: Money
    key: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if not self.entries:
            raise UnbalancedMovement(f"movement {self.id} has no entries")
        for currency, total in sums_by_currency(self.entries).items():
            if total:
                raise UnbalancedMovement(f"movement {self.id} is off by {total} minor units of {currency}")

    def same_request(self, kind: MovementKind, amount: Money) -> bool:
        return self.kind == kind and self.amount == amount


def sums_by_currency(entries: Iterable[Entry]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for entry in entries:
        sums[entry.amount.currency] += entry.amount.amount
    return dict(sums)


def transfer(debit: Account, credit: Account, amount: Money) -> tuple[Entry, Entry]:
    """The two entries moving ``amount`` from ``credit`` to ``debit``."""
    return Entry(debit, amount), Entry(credit, -amount)


class Ledger:
    """Posted movements in order; balances are computed from their entries, never stored."""

    def __init__(self, movements: Iterable[Movement] = ()) -> None:
        self._movements: list[Movement] = []
        self._by_key: dict[tuple[str, str], Movement] = {}
        for movement in movements:
            self.post(movement)

    @property
    def movements(self) -> tuple[Movement, ...]:
        return tuple(self._movements)

    def post(self, movement: Movement) -> bool:
        """Record ``movement``; False (nothing recorded) when the same key already moved this money."""
        seen = self._by_key.get((movement.payment_id, movement.key))
        if seen is not None:
            if seen.id == movement.id or seen.same_request(movement.kind, movement.amount):
                return False
            raise KeyReused(f"key {movement.key!r} already moved money for another operation")
        self._by_key[(movement.payment_id, movement.key)] = movement
        self._movements.append(movement)
        return True

    def entries(self) -> list[Entry]:
        return [entry for movement in self._movements for entry in movement.entries]

    def balances(self) -> dict[tuple[Account, str], Money]:
        """The balance of every (account, currency) that has entries."""
        return balances(self.entries())

    def balance(self, account: Account, currency: str) -> Money:
        return self.balances().get((account, currency), Money.zero(currency))

    def is_balanced(self) -> bool:
        return all(total == 0 for total in sums_by_currency(self.entries()).values())


def balances(entries: Iterable[Entry]) -> dict[tuple[Account, str], Money]:
    sums: dict[tuple[Account, str], int] = defaultdict(int)
    for entry in entries:
        sums[(entry.account, entry.amount.currency)] += entry.amount.amount
    return {key: Money(amount, key[1]) for key, amount in sorted(sums.items())}
