"""Piccolo tables commons owns in every service's database (applied by the service's migrations).

``caravan_idempotency`` — one row per completed Idempotency-Key request (see
:mod:`caravan_commons.idempotency`). ``key_id`` is the SHA-256 of scope and key, so any key
(up to 255 characters) fits a fixed-width primary key; ``expires_at`` is epoch seconds so the
sweeper's comparison is the same on SQLite and Postgres.
"""

from __future__ import annotations

from piccolo.columns import BigInt, Bytea, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class IdempotencyRecord(Table, tablename="caravan_idempotency"):
    key_id = Varchar(length=64, primary_key=True)
    scope = Varchar(length=200, default="")
    idempotency_key = Varchar(length=255)
    fingerprint = Varchar(length=64)
    status_code = Integer()
    response_headers = Text(default="{}")
    response_body = Bytea()
    created_at = Timestamptz()
    expires_at = BigInt(index=True)
