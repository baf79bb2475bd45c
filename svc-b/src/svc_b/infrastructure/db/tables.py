"""piccolo tables of Orders. Amounts are integer minor units with their ISO 4217 currency."""

from __future__ import annotations

from piccolo.columns import BigInt, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class OrderRow(Table, tablename="svc_b_orders"):
    id = Varchar(length=64, primary_key=True)
    customer_id = Varchar(length=128, index=True)
    currency = Varchar(length=3)
    total_amount = BigInt()
    status = Varchar(length=32, index=True)
    stock = Varchar(length=16)
    payment = Varchar(length=16)
    authorization_id = Varchar(length=128, null=True, default=None)
    cancel_reason = Varchar(length=64, null=True, default=None)
    card_token = Varchar(length=64, null=True, default=None)
    card_digest = Varchar(length=64, null=True, default=None)  # written once, when placed
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    # the saga's progress (svc_b.service_layer.unit_of_work.SagaProgress), written with the order
    step = Varchar(length=32, default="")
    step_outcome = Varchar(length=16, default="done")
    steps_started = Varchar(length=256, default="")
    step_detail = Text(default="")
    # the runner's lease (svc_b.service_layer.runner): when the order is next due — the holder's
    # lease expiry while a runner drives it, a retry time while it waits — and who holds it
    next_attempt_at = Timestamptz(null=True, default=None)
    lease_owner = Varchar(length=64, null=True, default=None)


class OrderLineRow(Table, tablename="svc_b_order_lines"):
    id = Serial(primary_key=True)
    order_id = ForeignKey(references=OrderRow, on_delete=OnDelete.cascade, index=True)
    position = Integer()
    sku = Varchar(length=64)
    quantity = Integer()
    unit_amount = BigInt()
    currency = Varchar(length=3)


class SagaStepRow(Table, tablename="svc_b_saga_steps"):
    """The saga step log of svc-b before 0.3 (one row per step): no longer written — the progress
    is on the order's row; kept so orders placed before keep their history."""

    id = Serial(primary_key=True)
    order_id = ForeignKey(references=OrderRow, on_delete=OnDelete.cascade, index=True)
    seq = Integer()
    step = Varchar(length=32)
    outcome = Varchar(length=16)
    detail = Text(default="")
    recorded_at = Timestamptz()
