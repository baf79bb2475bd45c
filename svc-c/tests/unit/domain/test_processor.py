"""The simulated card processor: every test token's documented answer, deterministic, fast."""

from __future__ import annotations

import pytest

from caravan_commons.money import Money
from svc_c.domain import processor as proc
from svc_c.domain.errors import ProcessorError, ProcessorTimeout, UnknownCardToken
from svc_c.domain.processor import Outcome, SimulatedProcessor

AMOUNT = Money(1234, "EUR")


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        (proc.APPROVE, Outcome.APPROVED),
        (proc.DECLINE, Outcome.DECLINED),
        (proc.INSUFFICIENT_FUNDS, Outcome.INSUFFICIENT_FUNDS),
    ],
)
async def test_outcome_tokens(token: str, outcome: Outcome) -> None:
    decision = await SimulatedProcessor().authorize(token, AMOUNT, payment_id="p1")
    assert decision.outcome is outcome
    assert decision.approved is (outcome is Outcome.APPROVED)


async def test_answers_are_deterministic() -> None:
    a = await SimulatedProcessor().authorize(proc.APPROVE, AMOUNT, payment_id="p1")
    b = await SimulatedProcessor().authorize(proc.APPROVE, AMOUNT, payment_id="p1")
    c = await SimulatedProcessor().authorize(proc.APPROVE, AMOUNT, payment_id="p2")
    assert a == b
    assert a.reference != c.reference


async def test_the_slow_token_answers_after_the_injected_delay() -> None:
    sleep = RecordingSleep()
    decision = await SimulatedProcessor(slow_delay=7.5, sleep=sleep).authorize(
        proc.SLOW, AMOUNT, payment_id="p"
    )
    assert decision.approved
    assert sleep.calls == [7.5]


async def test_the_slow_token_times_out_at_the_callers_deadline() -> None:
    sleep = RecordingSleep()
    with pytest.raises(ProcessorTimeout, match=r"0\.250s"):
        await SimulatedProcessor(slow_delay=7.5, sleep=sleep).authorize(
            proc.SLOW, AMOUNT, payment_id="p", timeout=0.25
        )
    assert sleep.calls == [0.25]
    assert ProcessorTimeout.status == 504


async def test_the_slow_token_really_waits_with_the_default_sleep() -> None:
    decision = await SimulatedProcessor(slow_delay=0.01).authorize(
        proc.SLOW, AMOUNT, payment_id="p", timeout=5
    )
    assert decision.approved


async def test_the_error_token_is_a_processor_error() -> None:
    with pytest.raises(ProcessorError):
        await SimulatedProcessor().authorize(proc.ERROR, AMOUNT, payment_id="p")
    assert ProcessorError.status == 502


async def test_an_unknown_token_names_the_test_tokens() -> None:
    with pytest.raises(UnknownCardToken, match="tok_approve"):
        await SimulatedProcessor().authorize("4111111111111111", AMOUNT, payment_id="p")
