"""Retry before compensating: how the saga repeats a call whose outcome is transient or unknown.

A definite refusal (out of stock, declined, a reservation lost) is never retried. Everything else
that went wrong — a refused connection, a 5xx, no ready instance, an open circuit, a 409 "still
in flight" or "changed concurrently", a timeout (the commons ``UpstreamUnavailableError`` and
``DeadlineExceededError``) — says nothing about the outcome: the saga repeats the **same call
with the same Idempotency-Key** after a full-jitter exponential backoff (commons'
:func:`~caravan_commons.resilience.backoff_delay`), waiting at least what the upstream asked for
(``retry_after``: a ``Retry-After``, an open circuit's cooldown), until the order's deadline —
``deadline`` after it was placed. Only then does it compensate (reserve, authorise) or leave the
order to the sweeper (commit, capture: their calls are idempotent and the order is paid for).
Compensation calls are retried the same way, and at least ``undo_window`` even past the deadline,
before the order is left cancelling for recovery.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta

from caravan_commons.errors import ApplicationError
from caravan_commons.resilience import backoff_delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: how long after it was placed an order's calls are retried before it is compensated
    deadline: timedelta = timedelta(seconds=30)
    #: compensation calls are retried at least this long, even past the order's deadline (an
    #: upstream's circuit opened by the forward calls gets its cooldown before the order is left
    #: cancelling for recovery); None: a fifth of ``deadline`` (6 s of the default 30 s)
    undo_for: timedelta | None = None
    #: the first retry waits up to ``base`` seconds, each further one up to twice as long ...
    base: float = 0.1
    #: ... but never more than ``cap`` seconds
    cap: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def undo_window(self) -> timedelta:
        return self.deadline / 5 if self.undo_for is None else self.undo_for

    def delay(self, retry: int, error: BaseException) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) after ``error``."""
        jittered = backoff_delay(retry, base=self.base, cap=self.cap, rng=self.rng)
        return max(jittered, retry_after(error))


def retry_after(error: BaseException) -> float:
    """What the upstream asked us to wait (seconds; 0 when it did not say): ``retry_after`` of a
    429, or the ``retry_after`` member of a problem (an open circuit's remaining cooldown)."""
    value = getattr(error, "retry_after", None)
    if value is None and isinstance(error, ApplicationError):
        value = error.extensions.get("retry_after")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(0.0, float(value))
