"""OpenAPI links: a payment's id in the authorisation's answer is the ``payment_id`` of the
operations on that payment, and its amount (in the payment's currency) fits a capture or a refund
of all of it (readers and tools such as schemathesis follow them)."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import Link, OpenAPIResponse

AUTHORIZE = "authorizePayment"
WHOLE_AMOUNT = {"amount": "$response.body#/amount"}
ON_A_PAYMENT: dict[str, tuple[str, dict[str, str] | None]] = {
    "GetPayment": ("getPayment", None),
    "CapturePayment": ("capturePayment", WHOLE_AMOUNT),
    "VoidPayment": ("voidPayment", None),
    "RefundPayment": ("refundPayment", WHOLE_AMOUNT),
}


def link_payment_operations(app: Litestar) -> None:
    for path_item in (app.openapi_schema.paths or {}).values():
        operation = path_item.post
        if operation is None or operation.operation_id != AUTHORIZE or operation.responses is None:
            continue
        created = operation.responses.get("201")
        if isinstance(created, OpenAPIResponse):
            created.links = {
                name: Link(
                    operation_id=operation_id,
                    parameters={"payment_id": "$response.body#/id"},
                    request_body=body,
                    description="the authorised (or declined) payment",
                )
                for name, (operation_id, body) in ON_A_PAYMENT.items()
            }
