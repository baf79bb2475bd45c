"""Controllers of svc-c: one per resource. Paths are the service's own: the gateway routes
``/api/svc-c/...`` (the prefix declared in service.toml) here with the prefix stripped.

Who may call what is not checked here: the security groups (foundation.toml, enforced by commons'
identity middleware) let only svc-b move money; through the gateway payments and the ledger are
read-only. Through the gateway, a payment and the ledger's balances are for operators (the
gateway-asserted ``operator`` scope); services calling directly may read a payment too.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter

from caravan_commons.deadline import current_deadline
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, fingerprint, once, require_key
from caravan_commons.principal import requires_scope
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import strict_decode
from svc_c.api.deps import Payments
from svc_c.api.guards import operators_or_services
from svc_c.api.schemas import (
    AuthorizeRequest,
    BalancesOut,
    CaptureRequest,
    PaymentOut,
    RefundRequest,
)
from svc_c.service_layer import handlers
from svc_c.service_layer.commands import Authorize, Capture, Refund, Void

#: A bare token or an RFC 8941 sf-string (what the commons client sends), of visible ASCII.
KEY_PATTERN = r'^([!#-\[\]-~]{1,255}|"[ !#-\[\]-~]{1,253}")$'
_KEY_DOC = (
    "a unique string per operation: the same key with the same request replays the first answer "
    "(Idempotent-Replayed: true), with another request is a 422, while the first runs a 409"
)
RequiredKey = Annotated[
    str, HeaderParameter(name=IDEMPOTENCY_HEADER, pattern=KEY_PATTERN, description=_KEY_DOC + " (required)")
]
OptionalKey = Annotated[
    str | None,
    HeaderParameter(name=IDEMPOTENCY_HEADER, pattern=KEY_PATTERN, required=False, description=_KEY_DOC),
]
PaymentId = Annotated[str, PathParameter(min_length=1, max_length=64, description="the payment's id")]
PaymentsDep = NamedDependency[Payments]

#: Answers any route may give: identity enforcement and security groups (401, 403), and the
#: caller's deadline (X-Request-Timeout-Ms) passing before the answer is ready (504).
_ANY_ROUTE = (401, 403, 504)


def _answer(outcome: handlers.Outcome, status: int) -> Response[PaymentOut]:
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
    return Response(PaymentOut.of(outcome.payment), status_code=status, headers=headers)


class PaymentController(Controller):
    path = "/payments"
    tags = ["payments"]

    @post(
        "/authorize",
        operation_id="authorizePayment",
        status_code=201,
        summary="Authorise a card payment (a declined card is a 201 with status declined)",
        responses=problem_responses(*_ANY_ROUTE, 409, 422, 502),
    )
    async def authorize(
        self,
        request: Request,
        data: JSONBody[AuthorizeRequest],
        payments: PaymentsDep,
        idempotency_key: RequiredKey,
    ) -> Response[PaymentOut]:
        key = require_key(request.headers)
        assert key is not None
        data = strict_decode(await request.body(), AuthorizeRequest)
        cmd = Authorize(
            order_id=data.order_id,
            amount=data.amount.to_money(),
            card_token=data.card_token,
            key=key,
            request_digest=fingerprint(request.method, request.url.path, await request.body()),
        )
        with once(key, scope="authorize"):  # a twin in this process: 409 (across: the unique key)
            deadline = current_deadline()
            outcome = await handlers.authorize_keyed(
                cmd,
                payments.new_uow(),
                payments.processor,
                timeout=deadline.remaining() if deadline is not None else None,
            )
        return _answer(outcome, 201)

    @get(
        "/{payment_id:str}",
        operation_id="getPayment",
        summary="A payment with its amounts, status and money movements (operators, services)",
        guards=[operators_or_services],
        responses=problem_responses(*_ANY_ROUTE, 404),
    )
    async def get_payment(self, payment_id: PaymentId, payments: PaymentsDep) -> PaymentOut:
        return PaymentOut.of(await handlers.get_payment(payment_id, payments.new_uow(read_only=True)))

    @post(
        "/{payment_id:str}/capture",
        operation_id="capturePayment",
        status_code=200,
        summary="Capture an authorised payment, once, for at most the authorised amount",
        responses=problem_responses(*_ANY_ROUTE, 404, 409, 422),
    )
    async def capture(
        self,
        request: Request,
        payment_id: PaymentId,
        data: JSONBody[CaptureRequest],
        payments: PaymentsDep,
        idempotency_key: OptionalKey = None,
    ) -> Response[PaymentOut]:
        data = strict_decode(await request.body(), CaptureRequest)
        cmd = Capture(payment_id, data.amount.to_money(), require_key(request.headers, required=False))
        return _answer(await handlers.capture_keyed(cmd, payments.new_uow()), 200)

    @post(
        "/{payment_id:str}/void",
        operation_id="voidPayment",
        status_code=200,
        summary="Release the hold of an authorised, not captured payment",
        responses=problem_responses(*_ANY_ROUTE, 404, 409, 422),
    )
    async def void(
        self,
        request: Request,
        payment_id: PaymentId,
        payments: PaymentsDep,
        idempotency_key: OptionalKey = None,
    ) -> Response[PaymentOut]:
        cmd = Void(payment_id, require_key(request.headers, required=False))
        return _answer(await handlers.void_keyed(cmd, payments.new_uow()), 200)

    @post(
        "/{payment_id:str}/refund",
        operation_id="refundPayment",
        status_code=200,
        summary="Refund part or all of what was captured (never more)",
        responses=problem_responses(*_ANY_ROUTE, 404, 409, 422),
    )
    async def refund(
        self,
        request: Request,
        payment_id: PaymentId,
        data: JSONBody[RefundRequest],
        payments: PaymentsDep,
        idempotency_key: OptionalKey = None,
    ) -> Response[PaymentOut]:
        data = strict_decode(await request.body(), RefundRequest)
        cmd = Refund(payment_id, data.amount.to_money(), require_key(request.headers, required=False))
        return _answer(await handlers.refund_keyed(cmd, payments.new_uow()), 200)


class LedgerController(Controller):
    path = "/ledger"
    tags = ["ledger"]

    @get(
        "/balances",
        operation_id="ledgerBalances",
        summary="Every account's balance per currency, and whether the ledger balances (operators)",
        guards=[requires_scope("operator")],
        responses=problem_responses(*_ANY_ROUTE),
    )
    async def balances(self, payments: PaymentsDep) -> BalancesOut:
        return BalancesOut.of(await handlers.ledger_balances(payments.new_uow(read_only=True)))
