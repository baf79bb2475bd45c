"""Errors of the Payments domain, on the commons hierarchy so one problem+json mapping serves them."""

from __future__ import annotations

from caravan_commons.errors import (
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    ServerError,
    UnprocessableError,
    ValidationError,
)


class InvalidAmount(ValidationError):
    """Zero or negative amounts."""

    slug = "invalid-amount"
    title = "Invalid amount"


class CurrencyMismatch(UnprocessableError):
    """An amount in another currency than the payment's (well-formed, but not for this payment)."""

    slug = "payment-currency-mismatch"
    title = "Amount in another currency than the payment"


class InvalidTransition(ConflictError):
    """The payment's status does not allow the operation (e.g. capturing a voided payment)."""

    slug = "invalid-payment-transition"
    title = "Operation not allowed in the payment's status"


class CaptureExceedsAuthorized(ConflictError):
    slug = "capture-exceeds-authorized"
    title = "Capture above the authorised amount"


class RefundExceedsCaptured(ConflictError):
    slug = "refund-exceeds-captured"
    title = "Refund above the captured amount"


class KeyReused(UnprocessableError):
    """An idempotency key already used for a different operation or amount."""

    slug = "idempotency-key-reused"
    title = "Idempotency key reused for a different operation"


class UnbalancedMovement(ValidationError):
    """A set of ledger entries that does not sum to zero per currency (a programming error)."""

    slug = "unbalanced-movement"
    title = "Unbalanced ledger movement"


class PaymentNotFound(NotFoundError):
    slug = "payment-not-found"
    title = "Payment not found"


class UnknownCardToken(UnprocessableError):
    """A well-formed card token the processor does not know (422: the request cannot be processed)."""

    slug = "unknown-card-token"
    title = "Unknown card token"


class ProcessorError(ServerError):
    """The (simulated) card processor failed to answer; nothing was authorised (502 Bad Gateway:
    the upstream processor gave no usable answer). Retrying with the same key is safe."""

    status = 502
    slug = "processor-error"
    title = "Card processor error"


class ProcessorTimeout(DeadlineExceededError):
    """The card processor did not answer within the caller's deadline; nothing was authorised."""

    slug = "processor-timeout"
    title = "Card processor timed out"
