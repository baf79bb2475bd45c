"""svc-c's piccolo tables. Amounts are integer minor units next to their ISO 4217 currency.

- ``payments``: one row per payment; ``version`` guards concurrent updates (optimistic);
  ``authorize_key`` (unique) makes an authorisation replayable by its idempotency key.
- ``ledger_movements``: one row per money movement; ``movement_key`` (payment id + idempotency
  key, unique) means one key moves money at most once per payment, even under concurrency.
- ``ledger_entries``: the balanced entries of each movement (positive = debit, negative = credit).

The payment row is its authorisation key's record (``request_digest``: a digest of the
authorising request, so the same key with another card is refused), the movement row its key's;
commons' ``caravan_idempotency`` table only holds records written before, until they expire.
"""

from __future__ import annotations

from piccolo.columns import BigInt, Integer, Serial, Timestamptz, Varchar
from piccolo.table import Table


class PaymentRow(Table, tablename="payments"):
    id = Varchar(length=36, primary_key=True)
    order_id = Varchar(length=100, index=True)
    currency = Varchar(length=3)
    amount = BigInt()
    captured = BigInt()
    refunded = BigInt()
    status = Varchar(length=24)
    authorize_key = Varchar(length=255, unique=True)
    processor_reference = Varchar(length=64)
    decline_reason = Varchar(length=40, null=True, default=None)
    version = Integer()
    created_at = Timestamptz()
    request_digest = Varchar(length=64, null=True, default=None)


class LedgerMovementRow(Table, tablename="ledger_movements"):
    id = Varchar(length=36, primary_key=True)
    payment_id = Varchar(length=36, index=True)
    position = Integer()
    kind = Varchar(length=16)
    amount = BigInt()
    currency = Varchar(length=3)
    idempotency_key = Varchar(length=255)
    movement_key = Varchar(length=300, unique=True)
    created_at = Timestamptz()


class LedgerEntryRow(Table, tablename="ledger_entries"):
    id = Serial(primary_key=True)
    movement_id = Varchar(length=36, index=True)
    payment_id = Varchar(length=36, index=True)
    position = Integer()
    account = Varchar(length=40, index=True)
    currency = Varchar(length=3)
    amount = BigInt()
