"""Recovery after a crash: every unfinished order is resumed or compensated.

Run it at start-up and periodically (the API stage schedules it). Orders placed less than
``min_age`` ago are left alone (a live request may still be running them; the version check
would stop a second worker anyway). In-flight orders older than ``resume_within`` that have not
been paid for are abandoned and compensated; every other unfinished order is resumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from caravan_commons.errors import ConflictError
from svc_b.domain.model import OrderStatus
from svc_b.service_layer.saga import Saga


@dataclass(slots=True)
class RecoveryReport:
    finished: dict[str, str] = field(default_factory=dict)  # order id → final or current status
    busy: list[str] = field(default_factory=list)  # another worker changed it meanwhile
    failed: dict[str, str] = field(default_factory=dict)  # order id → the unexpected error (retried next run)


async def recover(
    saga: Saga,
    *,
    now: datetime,
    min_age: timedelta = timedelta(seconds=30),
    resume_within: timedelta = timedelta(minutes=15),
    limit: int = 100,
) -> RecoveryReport:
    report = RecoveryReport()
    async with saga.uow() as uow:
        unfinished = await uow.orders.unfinished(limit)
    for order, created_at in unfinished:
        age = now - created_at
        if age < min_age:
            continue
        try:
            if age > resume_within and order.status in (OrderStatus.PENDING, OrderStatus.STOCK_RESERVED):
                result = await saga.abandon(order.id)
            else:
                result = await saga.advance(order.id)
        except ConflictError:
            report.busy.append(order.id)
            continue
        except Exception as exc:  # one broken order must not stop the others; the next run retries it
            report.failed[order.id] = f"{type(exc).__name__}: {exc}"
            continue
        report.finished[order.id] = result.status.value
    return report
