"""A simulated card processor: deterministic, no network, documented test tokens.

=========================  ============================================================
token                      answer
=========================  ============================================================
``tok_approve``            approved; the reference is derived from token, payment and amount
``tok_decline``            declined (``outcome = declined``); no money moves
``tok_insufficient_funds`` declined (``outcome = insufficient_funds``); no money moves
``tok_slow``               approved after ``slow_delay`` seconds (default 5); when the caller's
                           ``timeout`` is shorter, waits ``timeout`` then raises ProcessorTimeout
``tok_error``              raises ProcessorError (the processor failed; nothing authorised)
anything else              raises UnknownCardToken (a 422 for the caller)
=========================  ============================================================

The same token, payment id and amount always give the same answer and reference. The delay is
injectable (``sleep``) so tests of the slow path do not wait.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from caravan_commons.money import Money
from svc_c.domain.errors import ProcessorError, ProcessorTimeout, UnknownCardToken


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reference: str

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVED


APPROVE = "tok_approve"
DECLINE = "tok_decline"
INSUFFICIENT_FUNDS = "tok_insufficient_funds"
SLOW = "tok_slow"
ERROR = "tok_error"
TEST_TOKENS = (APPROVE, DECLINE, INSUFFICIENT_FUNDS, SLOW, ERROR)

Sleep = Callable[[float], Awaitable[None]]


class SimulatedProcessor:
    """The card processor port's simulated implementation (see the module docstring)."""

    def __init__(self, *, slow_delay: float = 5.0, sleep: Sleep = asyncio.sleep) -> None:
        if slow_delay < 0:
            raise ValueError("slow_delay must not be negative")
        self.slow_delay = slow_delay
        self._sleep = sleep

    async def authorize(
        self, token: str, amount: Money, *, payment_id: str, timeout: float | None = None
    ) -> Decision:
        reference = (
            "sim_"
            + hashlib.sha256(f"{token}|{payment_id}|{amount.amount}|{amount.currency}".encode()).hexdigest()[
                :20
            ]
        )
        if token == APPROVE:
            return Decision(Outcome.APPROVED, reference)
        if token == DECLINE:
            return Decision(Outcome.DECLINED, reference)
        if token == INSUFFICIENT_FUNDS:
            return Decision(Outcome.INSUFFICIENT_FUNDS, reference)
        if token == SLOW:
            if timeout is not None and timeout < self.slow_delay:
                await self._sleep(max(timeout, 0.0))
                raise ProcessorTimeout(
                    f"the card processor did not answer within {timeout:.3f}s; nothing was authorised"
                )
            await self._sleep(self.slow_delay)
            return Decision(Outcome.APPROVED, reference)
        if token == ERROR:
            raise ProcessorError("the card processor failed (simulated); nothing was authorised, retry later")
        raise UnknownCardToken(f"unknown card token {token!r}; test tokens are {', '.join(TEST_TOKENS)}")
