"""HTTP clients of the catalog (svc-a) and payments (svc-c): the saga's ports over the commons
:class:`~caravan_commons.client.ServiceClient` (discovery, deadlines, retries of idempotent calls
and calls carrying an Idempotency-Key, circuit breaking, trace propagation, signed identity).

Every answer is mapped to what the saga understands:

- a definite refusal → :class:`OutOfStock`, :class:`PaymentDeclined`, :class:`UnknownProduct`,
  :class:`ReservationLost` (the order is cancelled and compensated);
- payments' own "processor failed, nothing authorised" answers (problem types
  ``processor-error`` / ``processor-timeout``) → :class:`NothingAuthorized`;
- a 409 that is not about the order but about timing — the same Idempotency-Key still in flight,
  a row changed concurrently (problem types ``conflict``, ``concurrent-update``) — →
  :class:`UpstreamUnavailableError` (transient: the saga retries the call);
- everything else that went wrong — unreachable, timed out, 5xx, and 4xx answers the contract
  does not foresee (a contract mismatch, a security group refusing us) — →
  :class:`UpstreamUnavailableError` or :class:`DeadlineExceededError` (outcome unknown: the saga
  compensates or leaves the order to recovery, which repeats the idempotent call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar
from urllib.parse import quote, urlencode

import msgspec

from caravan_commons.client import ClientConfig, Response, ServiceClient
from caravan_commons.errors import (
    ApplicationError,
    ClientError,
    DeadlineExceededError,
    ServerError,
    UpstreamUnavailableError,
    ValidationError,
)
from caravan_commons.money import Money
from svc_b.service_layer.ports import (
    CatalogPort,
    NothingAuthorized,
    OutOfStock,
    PaymentDeclined,
    PaymentsPort,
    ReservationLost,
    StockRequest,
    UnknownProduct,
    step_key,
)
from svc_b.service_layer.retrying import retry_after

CATALOG = "svc-a"
PAYMENTS = "svc-c"
#: At most this many SKUs per ``GET /products?sku=...`` (svc-a's bound).
PRICE_BATCH = 100
#: Problem types with which payments says its processor failed and nothing was authorised.
NOTHING_AUTHORIZED_TYPES = ("processor-error", "processor-timeout")
#: 409 problem types that say "not now" rather than "no": commons' generic conflict (a request
#: with the same Idempotency-Key still in flight, a row changed concurrently) and svc-a's
#: ``concurrent-update``. Transient: the saga retries the call with the same key.
TRANSIENT_CONFLICT_TYPES = frozenset({"conflict", "concurrent-update"})

T = TypeVar("T")


def payments_client_config(config: ClientConfig) -> ClientConfig:
    """The client configuration for svc-c: its 502 ``processor-error`` says the card processor
    failed and nothing was authorised — a definite answer of a healthy service, so it is neither
    retried nor counted against svc-c's circuit (which would cancel every other order a while)."""
    return msgspec.structs.replace(config, retry_statuses=config.retry_statuses - {502})


# Tolerant readers of the upstreams' answers: only the fields svc-b uses, unknown ones ignored
# (the upstream may add fields without breaking us). The contract tests check them, and the bodies
# below, against the providers' published OpenAPI documents.
class AmountAnswer(msgspec.Struct):
    amount: int
    currency: str


class ProductAnswer(msgspec.Struct):
    sku: str
    price: AmountAnswer
    active: bool = True


class ProductPage(msgspec.Struct):
    items: list[ProductAnswer]
    next_cursor: str | None = None


class PaymentAnswer(msgspec.Struct):
    id: str
    status: str
    decline_reason: str | None = None


def problem_type(error: ApplicationError) -> str:
    """The last path segment of an upstream problem's ``type`` ('' when it had none)."""
    kind: str = getattr(error, "problem_type", None) or error.type
    return kind.rstrip("/").rsplit("/", 1)[-1]


def unavailable(service: str, what: str, error: ApplicationError) -> UpstreamUnavailableError:
    """An answer the contract does not foresee: treat it as the upstream being unusable."""
    status = getattr(error, "upstream_status", error.status)
    wait = retry_after(error)
    return UpstreamUnavailableError(
        f"{service} {what}: unexpected {status} answer: {error.detail}",
        upstream=service,
        **({"retry_after": wait} if wait else {}),
    )


def transient_conflict(error: ClientError) -> bool:
    """A 409 that means "try again later" (in flight, changed concurrently), not a refusal."""
    return error.status == 409 and problem_type(error) in TRANSIENT_CONFLICT_TYPES


async def _call(service: str, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call``; server-side errors become ``UpstreamUnavailableError`` (a 500 after the
    client's retries is as unusable as a refused connection), deadlines stay what they are."""
    try:
        return await call()
    except (UpstreamUnavailableError, DeadlineExceededError):
        raise
    except ServerError as exc:
        raise unavailable(service, what, exc) from exc


def _decode(response: Response, type_: type[T], service: str) -> T:
    try:
        return msgspec.json.decode(response.body, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamUnavailableError(
            f"{service} answered a body svc-b cannot read: {exc}", upstream=service
        ) from exc


def amount_body(money: Money) -> dict[str, object]:
    return {"amount": money.amount, "currency": money.currency}


def reservation_body(order_id: str, lines: Sequence[StockRequest]) -> dict[str, object]:
    return {"order_id": order_id, "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines]}


def authorize_body(order_id: str, amount: Money, card_token: str) -> dict[str, object]:
    return {"order_id": order_id, "amount": amount_body(amount), "card_token": card_token}


class HttpCatalog(CatalogPort):
    """svc-a: ``GET /products?sku=...``, ``POST /reservations``, ``POST /reservations/{id}/commit``
    and ``/release``. Reservations are idempotent per order id, so retries are safe."""

    def __init__(
        self, client: ServiceClient, *, service: str = CATALOG, timeout: float | None = None
    ) -> None:
        self.client = client
        self.service = service
        self.timeout = timeout

    async def _get(self, path: str) -> Response:
        return await self.client.get(self.service, path, timeout=self.timeout)

    async def prices(self, skus: Sequence[str]) -> Mapping[str, Money]:
        wanted = list(dict.fromkeys(skus))
        found: dict[str, ProductAnswer] = {}
        for start in range(0, len(wanted), PRICE_BATCH):
            batch = wanted[start : start + PRICE_BATCH]
            query = [*(("sku", sku) for sku in batch), ("limit", str(len(batch)))]
            while True:
                path = "/products?" + urlencode(query)
                try:
                    response = await _call(self.service, "GET /products", partial(self._get, path))
                except ClientError as exc:
                    if exc.status in (400, 404):  # a SKU the catalog refuses or does not know
                        raise UnknownProduct(
                            f"the catalog does not know {', '.join(batch)}: {exc.detail}"
                        ) from exc
                    raise unavailable(self.service, "GET /products", exc) from exc
                page = _decode(response, ProductPage, self.service)
                found.update((item.sku, item) for item in page.items)
                if not page.next_cursor or all(sku in found for sku in batch):
                    break
                query = [
                    *(("sku", sku) for sku in batch),
                    ("limit", str(len(batch))),
                    ("cursor", page.next_cursor),
                ]
        missing = [sku for sku in wanted if sku not in found]
        if missing:
            raise UnknownProduct(f"no product with SKU {', '.join(missing)}", skus=missing)
        inactive = [sku for sku in wanted if not found[sku].active]
        if inactive:
            raise UnknownProduct(f"not for sale: {', '.join(inactive)}", skus=inactive)
        try:
            return {sku: Money(found[sku].price.amount, found[sku].price.currency) for sku in wanted}
        except ValidationError as exc:  # an amount or currency svc-b cannot use
            raise UpstreamUnavailableError(f"{self.service} sent an unusable price: {exc.detail}") from exc

    async def reserve(self, order_id: str, lines: Sequence[StockRequest]) -> None:
        body = reservation_body(order_id, lines)
        try:
            await _call(
                self.service,
                "POST /reservations",
                # idempotent per order id at svc-a: the key lets the client retry it too
                lambda: self.client.post(
                    self.service,
                    "/reservations",
                    json=body,
                    idempotency_key=step_key(order_id, "reserve"),
                    timeout=self.timeout,
                ),
            )
        except ClientError as exc:
            if transient_conflict(exc):
                raise unavailable(self.service, "POST /reservations", exc) from exc
            if exc.status == 409:  # out-of-stock (or a reservation svc-a will not renew)
                raise OutOfStock(exc.detail, reason=problem_type(exc)) from exc
            if exc.status == 404:  # a product vanished between pricing and reserving
                raise OutOfStock(f"cannot supply: {exc.detail}", reason=problem_type(exc)) from exc
            raise unavailable(self.service, "POST /reservations", exc) from exc

    async def _move(self, order_id: str, action: str) -> None:
        path = f"/reservations/{quote(order_id, safe='')}/{action}"
        await _call(
            self.service,
            f"POST {path}",
            lambda: self.client.post(
                self.service, path, idempotency_key=step_key(order_id, action), timeout=self.timeout
            ),
        )

    async def commit(self, order_id: str) -> None:
        try:
            await self._move(order_id, "commit")
        except ClientError as exc:
            if transient_conflict(exc):
                raise unavailable(self.service, "commit", exc) from exc
            if exc.status in (404, 409):  # expired or released before we committed
                raise ReservationLost(exc.detail, reason=problem_type(exc)) from exc
            raise unavailable(self.service, "commit", exc) from exc

    async def release(self, order_id: str) -> None:
        try:
            await self._move(order_id, "release")
        except ClientError as exc:
            if exc.status == 404:
                return  # no reservation for this order: nothing to give back
            raise unavailable(self.service, "release", exc) from exc


class HttpPayments(PaymentsPort):
    """svc-c: ``POST /payments/authorize`` and ``/payments/{id}/capture|void|refund``, each with
    the Idempotency-Key the saga derives from the order and the step (retries reuse it)."""

    def __init__(
        self, client: ServiceClient, *, service: str = PAYMENTS, timeout: float | None = None
    ) -> None:
        self.client = client
        self.service = service
        self.timeout = timeout

    async def authorize(
        self, idempotency_key: str, order_id: str, customer_id: str, amount: Money, card_token: str
    ) -> str:
        body = authorize_body(order_id, amount, card_token)
        try:
            response = await self.client.post(
                self.service,
                "/payments/authorize",
                json=body,
                idempotency_key=idempotency_key,
                timeout=self.timeout,
            )
        except ServerError as exc:
            if problem_type(exc) in NOTHING_AUTHORIZED_TYPES:
                raise NothingAuthorized(f"{self.service}: {exc.detail}", upstream=self.service) from exc
            if isinstance(exc, UpstreamUnavailableError | DeadlineExceededError):
                raise
            raise unavailable(self.service, "authorize", exc) from exc
        except ClientError as exc:
            if exc.status in (400, 422):  # e.g. an unknown card token: refused for good
                raise PaymentDeclined(f"card refused: {exc.detail}", reason=problem_type(exc)) from exc
            # 409: the same key is still being processed at svc-c — try again later
            raise unavailable(self.service, "authorize", exc) from exc
        payment = _decode(response, PaymentAnswer, self.service)
        if payment.status == "declined":
            raise PaymentDeclined(
                f"payment declined{': ' + payment.decline_reason if payment.decline_reason else ''}",
                reason=payment.decline_reason,
            )
        if payment.status != "authorized":
            raise UpstreamUnavailableError(
                f"{self.service} answered an authorisation with status {payment.status!r}",
                upstream=self.service,
            )
        return payment.id

    async def _move(self, idempotency_key: str, payment_id: str, action: str, amount: Money | None) -> None:
        path = f"/payments/{quote(payment_id, safe='')}/{action}"
        await _call(
            self.service,
            f"POST {path}",
            lambda: self.client.post(
                self.service,
                path,
                json=msgspec.UNSET if amount is None else {"amount": amount_body(amount)},
                idempotency_key=idempotency_key,
                timeout=self.timeout,
            ),
        )

    async def capture(self, idempotency_key: str, authorization_id: str, amount: Money) -> None:
        try:
            await self._move(idempotency_key, authorization_id, "capture", amount)
        except ClientError as exc:
            if transient_conflict(exc):
                raise unavailable(self.service, "capture", exc) from exc
            if exc.status in (409, 422):  # the authorisation cannot be captured (voided, expired)
                raise PaymentDeclined(f"capture refused: {exc.detail}", reason=problem_type(exc)) from exc
            raise unavailable(self.service, "capture", exc) from exc

    async def void(self, idempotency_key: str, authorization_id: str) -> None:
        try:
            await self._move(idempotency_key, authorization_id, "void", None)
        except ClientError as exc:
            raise unavailable(self.service, "void", exc) from exc

    async def refund(self, idempotency_key: str, authorization_id: str, amount: Money) -> None:
        try:
            await self._move(idempotency_key, authorization_id, "refund", amount)
        except ClientError as exc:
            raise unavailable(self.service, "refund", exc) from exc
